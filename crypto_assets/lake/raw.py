"""Fetch a month's kline archives for many pairs: verified against Binance's CHECKSUM, once, atomically.

For each pair and month: the monthly archive when Binance has published it; otherwise the daily archives of that
month that exist (found with one bucket-listing request); a 404 with no daily files means the pair had no candles
that month ("absent", not an error). A file already on disk whose sha256 equals the current CHECKSUM is kept, not
downloaded again. Failures are recorded per pair and never stop the other pairs.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from crypto_assets.binance.archives import ArchiveError, archive_name, archive_path
from crypto_assets.binance.client import BinanceClient, BinanceHTTPError
from crypto_assets.lake.manifest import read_json, write_json
from crypto_assets.layout import Layout
from crypto_assets.months import DAILY_INTERVALS, Month

OK, ABSENT, FAILED = "ok", "absent", "failed"


@dataclass
class ArchiveFile:
    name: str
    sha256: str
    bytes: int


@dataclass
class PairMonth:
    """What we hold for one pair and month: status, where it came from, and the verified files."""

    symbol: str
    status: str
    source: str | None = None  # "monthly" or "daily"
    files: list[ArchiveFile] = field(default_factory=list)
    error: str | None = None

    @property
    def sha256(self) -> str | None:
        """The archive's sha256 (for daily-sourced months: a digest over the daily files' digests)."""
        if not self.files:
            return None
        if len(self.files) == 1:
            return self.files[0].sha256
        return hashlib.sha256("".join(f.sha256 for f in self.files).encode()).hexdigest()

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)


@dataclass
class FetchStats:
    files_ok: int = 0
    files_absent: int = 0
    files_failed: int = 0
    files_skipped_cached: int = 0
    bytes_downloaded: int = 0
    requests: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def as_metadata(self) -> dict[str, int | float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    @classmethod
    def total(cls, parts: list[FetchStats]) -> FetchStats:
        total = cls()
        for part in parts:
            total.add(**{k: v for k, v in part.as_metadata().items() if k != "seconds"})
        return total


def read_manifest(layout: Layout, month: Month) -> dict[str, PairMonth]:
    payload = read_json(layout.raw_manifest(month), {"pairs": {}})
    return {
        symbol: PairMonth(
            symbol, e["status"], e.get("source"), [ArchiveFile(**f) for f in e.get("files", [])], e.get("error")
        )  # fmt: skip
        for symbol, e in payload["pairs"].items()
    }


def write_manifest(layout: Layout, month: Month, entries: dict[str, PairMonth]) -> None:
    write_json(
        layout.raw_manifest(month),
        {
            "month": str(month),
            "interval": layout.interval,
            "pairs": {s: {k: v for k, v in asdict(e).items() if k != "symbol"} for s, e in sorted(entries.items())},
        },
    )


def fetch_months(
    client: BinanceClient,
    layout: Layout,
    months: list[Month],
    symbols: list[str],
    *,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[Month, dict[str, PairMonth]], dict[Month, FetchStats]]:
    """Fetch every (month, symbol) archive with ``workers`` concurrent connections; write each month's manifest.

    Returns the entries and the figures per month (``FetchStats.total`` adds them up).
    """
    stats = {m: FetchStats() for m in months}
    started = time.perf_counter()
    tasks = [(m, s) for m in months for s in symbols]
    results: dict[Month, dict[str, PairMonth]] = {m: {} for m in months}
    done = 0
    lock = threading.Lock()

    def run(task: tuple[Month, str]) -> None:
        nonlocal done
        month, symbol = task
        entry = _fetch_pair_month(client, layout, month, symbol, stats[month])
        with lock:
            results[month][symbol] = entry
            done += 1
            if progress:
                progress(done, len(tasks))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        list(pool.map(run, tasks))
    seconds = round(time.perf_counter() - started, 3)
    for month in months:
        write_manifest(layout, month, results[month])
        stats[month].seconds = seconds
    return results, stats


def _fetch_pair_month(client: BinanceClient, layout: Layout, month: Month, symbol: str, stats: FetchStats) -> PairMonth:
    interval = layout.interval
    try:
        period = str(month)
        sha = client.fetch_checksum(archive_path(symbol, interval, period))
        stats.add(requests=1)
        if sha is not None:
            file = _ensure_file(client, layout, month, symbol, period, sha, stats)
            _remove_daily_files(layout, month, symbol)
            stats.add(files_ok=1)
            return PairMonth(symbol, OK, "monthly", [file])
        days = _published_days(client, layout, month, symbol, stats) if interval in DAILY_INTERVALS else []
        files = []
        for day in days:
            day_sha = client.fetch_checksum(archive_path(symbol, interval, day))
            stats.add(requests=1)
            if day_sha is not None:
                files.append(_ensure_file(client, layout, month, symbol, day, day_sha, stats))
        if not files:
            stats.add(files_absent=1)
            return PairMonth(symbol, ABSENT)
        stats.add(files_ok=1)
        return PairMonth(symbol, OK, "daily", files)
    except (BinanceHTTPError, ArchiveError, OSError) as exc:
        stats.add(files_failed=1)
        return PairMonth(symbol, FAILED, error=str(exc))


def _ensure_file(client: BinanceClient, layout: Layout, month: Month, symbol: str, period: str, sha: str,
                 stats: FetchStats) -> ArchiveFile:  # fmt: skip
    name = archive_name(symbol, layout.interval, period)
    dest = layout.raw_file(month, name)
    if dest.exists():
        size = dest.stat().st_size
        if _sha256_file(dest) == sha:
            stats.add(files_skipped_cached=1)
            return ArchiveFile(name, sha, size)
    download = client.download_verified(archive_path(symbol, layout.interval, period), dest, sha)
    stats.add(bytes_downloaded=download.bytes, requests=1)
    return ArchiveFile(name, sha, download.bytes)


def _published_days(client: BinanceClient, layout: Layout, month: Month, symbol: str, stats: FetchStats) -> list[str]:
    """Days of ``month`` with a daily archive for the pair, from one listing of ``...-YYYY-MM-`` keys."""
    interval = layout.interval
    prefix = archive_path(symbol, interval, f"{month}-01").rsplit("-", 1)[0] + "-"
    keys = [o.key for o in client.list_objects(prefix)]
    stats.add(requests=1)
    suffix = ".zip"
    days = sorted({k[len(prefix) - 8 : -len(suffix)] for k in keys if k.endswith(suffix)})
    return [d for d in days if d.startswith(str(month))]


def _remove_daily_files(layout: Layout, month: Month, symbol: str) -> None:
    """The monthly archive supersedes daily files fetched before it was published."""
    for path in layout.raw_dir(month).glob(f"{symbol}-{layout.interval}-{month}-??.zip"):
        path.unlink(missing_ok=True)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
