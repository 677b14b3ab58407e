"""Fetch a month's kline archives for many pairs: verified against Binance's CHECKSUM, once, atomically.

For each pair and month: the monthly archive when Binance has published it; otherwise the daily archives of that
month that exist (found with one bucket-listing request); no monthly archive and no daily files means the pair had no
candles that month ("absent", not an error). A file already on disk whose sha256 equals the current CHECKSUM is kept
(re-hashed, not downloaded again). Failures are recorded per pair and never stop the other pairs.

The manifest records, per monthly archive, the ETag (MD5) of the ``.zip.CHECKSUM`` bytes its sha256 came from. A
run first lists, once, the monthly folder of each pair it has seen before (a manifest entry in one of the run's
months; the run's months only, paged by 1000 keys). A month without keys there has no monthly archive (daily path,
no 404 round trip); a listed CHECKSUM ETag equal to the recorded one means the CHECKSUM on Binance now is the one we
read, so its sha256 is the recorded one: no GET, the file on disk is still re-hashed against it. Another ETag, none
recorded (a manifest written before ETags were recorded), or no usable listing (it failed, or shows no key at all):
the CHECKSUM is fetched. Pairs never seen are not listed: with nothing recorded to compare, a listing would only add
requests to a cold run.

The bucket listing is the record of what exists: an archive it shows that answers 404 is failed, not absent (a wrong
BINANCE_DATA_URL must not give an empty lake). A month in which every pair came back absent is confirmed against the
listing of a few pairs; when the listing shows their archives they fail, and when it cannot be read the month fails.

A futures market's funding dataset (``layout.funding``) is fetched by the same code: its archives are
``{SYM}-fundingRate-YYYY-MM.zip`` under ``data/futures/{um,cm}/monthly/fundingRate/``, monthly only (never a daily
file); ``lake.funding`` decides which contracts and months to ask for.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import suppress
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path

from crypto_assets.binance.archives import (
    FUNDING_RATE,
    ArchiveError,
    archive_name,
    archive_path,
    funding_archive_path,
    funding_prefix,
    monthly_prefix,
)
from crypto_assets.binance.client import BinanceClient, BinanceHTTPError
from crypto_assets.binance.listing import ListedObject
from crypto_assets.lake.leftovers import remove_dead_temp_files
from crypto_assets.lake.manifest import read_json, write_json
from crypto_assets.layout import Layout
from crypto_assets.months import DAILY_INTERVALS, Month, utc_today

OK, ABSENT, FAILED = "ok", "absent", "failed"
# Funding only (lake.funding): the month has not ended, or ended so lately that Binance has not published it yet.
NOT_PUBLISHED = "not_published"
# Days after a month ends during which a month without any archive is taken as not yet published (Binance: monthly
# files "the first Monday of the month", in practice "before mid of the new month"; daily files the next day).
PUBLICATION_GRACE_DAYS = 20
_MD5 = re.compile(r"[0-9a-f]{32}")
_HASH_CHUNK = 1 << 22  # bytes read at a time when hashing an archive on disk


def archive_stem(layout: Layout) -> str:
    """The middle of the dataset's archive names: the interval (``BTCUSDT-4h-2025-01.zip``), or ``fundingRate``
    for a futures market's funding dataset (``BTCUSDT-fundingRate-2025-01.zip``)."""
    return FUNDING_RATE if layout.is_funding else layout.interval


def dataset_archive_path(layout: Layout, symbol: str, period: str) -> str:
    """Path below the data host of the dataset's archive of ``symbol`` for ``period`` (a month, or a day for klines)."""
    if layout.is_funding:
        return funding_archive_path(symbol, period, layout.market)
    return archive_path(symbol, layout.interval, period, layout.market)


def _has_daily(layout: Layout) -> bool:
    """Whether the dataset has daily archives: klines up to 1d; funding rates never (monthly only)."""
    return not layout.is_funding and layout.interval in DAILY_INTERVALS


def _monthly_folder(layout: Layout, symbol: str) -> str:
    """The listing folder of the symbol's monthly archives of this dataset."""
    if layout.is_funding:
        return funding_prefix(layout.market, symbol)
    return monthly_prefix(symbol, layout.interval, layout.market)


@dataclass
class ArchiveFile:
    name: str
    sha256: str
    bytes: int
    # ETag (MD5) of the ``.CHECKSUM`` file that named ``sha256`` (monthly archives; None in older manifests)
    checksum_etag: str | None = None
    # The member's data lines, counted when these bytes were verified (None in older manifests: normalize counts)
    data_lines: int | None = None


@dataclass
class PairMonth:
    """What we hold for one pair and month: status, where it came from, and the verified files."""

    symbol: str
    status: str
    source: str | None = None  # "monthly" or "daily"
    files: list[ArchiveFile] = field(default_factory=list)
    error: str | None = None
    # absent for good: when it was recorded, Binance had published a later month's archive of the pair, or the
    # month had ended PUBLICATION_GRACE_DAYS before, so that month was over and its daily files complete. Later
    # runs only look for a monthly archive (in the pair's listing), not for daily files again.
    final: bool = False

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
    checksums_unchanged: int = 0  # CHECKSUM GETs saved: the listed ETag is the recorded one
    listings_failed: int = 0  # pairs whose monthly listing failed (their CHECKSUMs were fetched one by one)
    absences_known: int = 0  # final absences confirmed by the pair's listing alone (no daily listing)
    bytes_downloaded: int = 0
    requests: int = 0  # the pair listings of a run count in its first month
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def as_metadata(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    @classmethod
    def total(cls, parts: list[FetchStats]) -> FetchStats:
        total = cls()
        for part in parts:
            total.add(**part.as_metadata())
        return total


def read_manifest(layout: Layout, month: Month) -> dict[str, PairMonth]:
    payload = read_json(layout.raw_manifest(month), {"pairs": {}})
    return {
        symbol: PairMonth(
            symbol,
            e["status"],
            e.get("source"),
            [ArchiveFile(**f) for f in e.get("files", [])],
            e.get("error"),
            e.get("final", False),
        )  # fmt: skip
        for symbol, e in payload["pairs"].items()
    }


def write_manifest(layout: Layout, month: Month, entries: dict[str, PairMonth]) -> None:
    write_json(
        layout.raw_manifest(month),
        {
            "month": str(month),
            "interval": layout.stage,
            "pairs": {
                s: {k: v for k, v in asdict(e).items() if k != "symbol" and (k != "final" or v)}
                for s, e in sorted(entries.items())
            },  # fmt: skip
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
    today: date | None = None,
) -> tuple[dict[Month, dict[str, PairMonth]], dict[Month, FetchStats]]:
    """Fetch every (month, symbol) archive with ``workers`` concurrent connections; write each month's manifest.

    Pairs whose answer is known from their listing and the disk (a final absence; a CHECKSUM unchanged since the
    archive on disk was verified, which is re-hashed here) are settled in this thread, without a task or a
    request; everything that needs the network goes to the connection pool meanwhile. ``progress(done, total)``
    is called from this thread only. ``today`` (default: the UTC date) decides which months must have archives.

    Returns the entries and the figures per month (``FetchStats.total`` adds them up).
    """
    stats = {m: FetchStats() for m in months}
    total = len(months) * len(symbols)
    results: dict[Month, dict[str, PairMonth]] = {m: {} for m in months}
    previous = {m: read_manifest(layout, m) for m in months}
    listings: dict[str, dict[str, _Listed] | None] = {}
    lock = threading.Lock()
    done = 0

    def list_symbol(symbol: str) -> None:
        listing = _list_monthly(client, layout, symbol, months, stats[min(months)])
        with lock:
            listings[symbol] = listing

    def fetch(month: Month, symbol: str) -> None:
        nonlocal done
        entry = _fetch_pair_month(
            client, layout, month, symbol, stats[month], listings.get(symbol), previous[month].get(symbol),
            has_daily=symbol in daily_on_disk[month],
        )  # fmt: skip
        with lock:
            results[month][symbol] = entry
            done += 1

    for month in months:  # a killed run's partial downloads
        remove_dead_temp_files(layout.raw_dir(month))
    # Which pairs have daily files on disk, from one directory listing per month (not a glob per pair and month).
    daily_on_disk = {m: _pairs_with_daily_files(layout, m) for m in months}
    known = [s for s in symbols if any(s in previous[m] for m in months)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        # Pairs seen before are listed first; a pair new to every month needs no listing (its CHECKSUMs are asked).
        listed = {pool.submit(list_symbol, symbol): symbol for symbol in known}
        unknown = set(symbols).difference(known)
        pending = [pool.submit(fetch, month, symbol) for symbol in symbols if symbol in unknown for month in months]
        reported = -1  # the count ``progress`` last heard of: it hears of each count once (the caller throttles)

        def report() -> None:
            nonlocal reported
            if progress and done != reported:
                reported = done
                progress(done, total)

        # Each pair is settled as its listing lands, while the other listings are still on the network.
        for listing_done in as_completed(listed):
            listing_done.result()
            symbol = listed[listing_done]
            for month in months:
                entry = None
                if _known_from_listing(layout, month, symbol, listings[symbol], previous[month].get(symbol)):
                    entry = _settle_locally(
                        layout, month, symbol, stats[month], listings[symbol], previous[month][symbol],
                        has_daily=symbol in daily_on_disk[month],
                    )  # fmt: skip
                if entry is None:  # not settled by the listing, or the file on disk no longer matches: ask
                    pending.append(pool.submit(fetch, month, symbol))
                    continue
                with lock:
                    results[month][symbol] = entry
                    done += 1
            report()
        for future in as_completed(pending):
            future.result()
            report()
        report()
    for month in months:
        _confirm_all_absent(client, layout, month, results[month], stats[month], today or utc_today())
    _mark_final_absences(results, previous, today or utc_today())
    for month in months:
        if results[month] != previous[month]:  # an unchanged month's manifest is not even re-encoded
            write_manifest(layout, month, results[month])
    return results, stats


# How many pairs of an all-absent month are looked up in the listing, and how many archive URLs an error quotes.
_CONFIRM_PAIRS, _QUOTED = 5, 3


def _confirm_all_absent(client: BinanceClient, layout: Layout, month: Month, entries: dict[str, PairMonth],
                        stats: FetchStats, today: date) -> None:  # fmt: skip
    """A month whose every pair came back absent, though its archives are due (it began two days ago: daily files
    are published the next day), is checked against the bucket listing of a few pairs: pairs whose archives the
    listing shows are failed (the archive host answered 404 for what exists); when the listing cannot be read, every
    pair fails. Absent for good only when the listing agrees."""
    if not entries or any(e.status != ABSENT for e in entries.values()) or month.first_day + timedelta(2) > today:
        return
    symbols = sorted(entries)[:_CONFIRM_PAIRS]
    listed, unreadable = [], None
    for symbol in symbols:
        try:
            key = _listed_key(client, layout, symbol, month)
        except (BinanceHTTPError, ValueError, OSError) as exc:
            unreadable = unreadable or str(exc)
            continue
        finally:
            stats.add(requests=1)
        if key is not None:
            listed.append((symbol, key))
    urls = ", ".join(client.url(dataset_archive_path(layout, s, str(month))) for s in symbols[:_QUOTED])
    if listed:
        for symbol, key in listed:
            entries[symbol] = PairMonth(symbol, FAILED, error=(
                f"{key} is in the bucket listing ({client.listing_url}) but {client.url(key)} answered 404, like "
                f"every archive of {month} asked from {client.data_url}; check BINANCE_DATA_URL "
                f"(expected the host serving {layout.market.data_path}/...)"))  # fmt: skip
            stats.add(files_failed=1, files_absent=-1)
    elif unreadable is not None:
        for symbol in entries:
            entries[symbol] = PairMonth(symbol, FAILED, error=(
                f"every one of the {len(entries)} pairs came back absent (404) for {month} from {client.data_url}, "
                f"and the bucket listing that could confirm it failed ({unreadable}); archives such as {urls} should "
                "exist: check BINANCE_DATA_URL and BINANCE_LISTING_URL, then re-run the month"))  # fmt: skip
        stats.add(files_failed=len(entries), files_absent=-len(entries))


def _listed_key(client: BinanceClient, layout: Layout, symbol: str, month: Month) -> str | None:
    """The key of the pair's monthly archive of ``month`` in the bucket listing, else of its first daily archive,
    else None (the listing shows none)."""
    prefixes = [dataset_archive_path(layout, symbol, str(month))]
    if _has_daily(layout):
        prefixes.append(dataset_archive_path(layout, symbol, f"{month}-01").rsplit("-", 1)[0] + "-")
    for prefix in prefixes:
        for objects, _ in client.list_pages(prefix):
            keys = sorted(o.key for o in objects if o.key.endswith(".zip"))
            if keys:
                return keys[0]
    return None


def _mark_final_absences(results: dict[Month, dict[str, PairMonth]], previous: dict[Month, dict[str, PairMonth]],
                         today: date) -> None:  # fmt: skip
    """An absence is final when it was final before, when this run found a monthly archive of the pair for a later
    month (Binance publishes a month's archive after the month: the earlier month was over), or when the month
    ended more than PUBLICATION_GRACE_DAYS ago (a pair delisted before it: its daily files would have been out the
    next day, its monthly archive by mid-month). A final absence costs no request: later runs read the pair's
    monthly listing, which they fetch anyway, and look again only if it shows an archive for the month."""
    latest_monthly: dict[str, Month] = {}  # per pair: the last month of this run with a monthly archive
    for month in sorted(results):
        for symbol, entry in results[month].items():
            if entry.status == OK and entry.source == "monthly":
                latest_monthly[symbol] = month
    for month, entries in results.items():
        long_over = month.next().first_day + timedelta(PUBLICATION_GRACE_DAYS) <= today
        for symbol, entry in entries.items():
            if entry.status == ABSENT:
                before = previous.get(month, {}).get(symbol)
                was_final = before is not None and before.status == ABSENT and before.final
                entry.final = was_final or long_over or latest_monthly.get(symbol, month) > month


@dataclass
class _Listed:
    """A month listed in the pair's monthly folder (any key: the month has a monthly archive), with its CHECKSUM."""

    checksum: ListedObject | None = None


def _list_monthly(client: BinanceClient, layout: Layout, symbol: str, months: list[Month],
                  stats: FetchStats) -> dict[str, _Listed] | None:  # fmt: skip
    """{"YYYY-MM": keys} of ``months`` from one listing of the pair's monthly folder (from the first month's keys
    on, stopping after the last month's); None when there is no usable listing (failed, or no key at all), so
    that the pair's CHECKSUMs are fetched one by one and a failure is never taken for "no archive"."""
    stem = archive_stem(layout)
    folder = _monthly_folder(layout, symbol)
    first, last = archive_name(symbol, stem, str(min(months))), archive_name(symbol, stem, str(max(months)))
    prefix = folder + os.path.commonprefix([first, last])
    end = folder + last + ".CHECKSUM"
    found: dict[str, _Listed] = {}
    seen_any = False
    try:
        for objects, _ in client.list_pages(prefix, start_after=folder + first.removesuffix(".zip")):
            stats.add(requests=1)
            for obj in objects:
                seen_any = True
                name = obj.key.removeprefix(folder)
                if obj.key == name:
                    continue
                is_checksum = name.endswith(".zip.CHECKSUM")
                period = name.removesuffix(".CHECKSUM").removesuffix(".zip").removeprefix(f"{symbol}-{stem}-")
                keys = found.setdefault(period, _Listed())
                if is_checksum:
                    keys.checksum = obj
            if any(o.key >= end for o in objects):
                break
    except (BinanceHTTPError, ValueError, OSError):  # a bad page, an odd listing: ask per file instead
        stats.add(listings_failed=1)
        return None
    return found if seen_any else None


def _recorded_monthly(layout: Layout, month: Month, symbol: str, previous: PairMonth | None) -> ArchiveFile | None:
    """The monthly archive the last run verified for the pair and month, if that is what it holds."""
    if previous is None or previous.status != OK or previous.source != "monthly" or len(previous.files) != 1:
        return None
    recorded = previous.files[0]
    return recorded if recorded.name == archive_name(symbol, archive_stem(layout), str(month)) else None


def _known_from_listing(layout: Layout, month: Month, symbol: str, listing: dict[str, _Listed] | None,
                        previous: PairMonth | None) -> bool:  # fmt: skip
    """Whether the pair's listing and the last manifest settle the month without a request: a final absence that
    the listing still shows no monthly archive for, or a monthly archive whose listed CHECKSUM ETag is the one
    recorded when the file on disk was verified."""
    if listing is None or previous is None:
        return False
    keys = listing.get(str(month))
    if keys is None:
        return previous.status == ABSENT and previous.final
    recorded = _recorded_monthly(layout, month, symbol, previous)
    listed_etag = keys.checksum.etag if keys.checksum is not None else None
    return bool(listed_etag) and recorded is not None and recorded.checksum_etag == listed_etag


def _settle_locally(layout: Layout, month: Month, symbol: str, stats: FetchStats, listing: dict[str, _Listed],
                    previous: PairMonth, has_daily: bool) -> PairMonth | None:  # fmt: skip
    """The entry of a month ``_known_from_listing`` vouches for, checked against the disk (the archive re-hashed);
    None when the file is missing or no longer has the recorded sha256 (it must be downloaded again)."""
    if listing.get(str(month)) is None:
        stats.add(files_absent=1, absences_known=1)  # still no monthly archive, and no daily files can appear
        return PairMonth(symbol, ABSENT, final=True)
    recorded = _recorded_monthly(layout, month, symbol, previous)
    dest = layout.raw_file(month, recorded.name)
    try:
        sha, size = _sha256_file(dest)
    except OSError:
        return None
    if sha != recorded.sha256:
        return None
    if has_daily:
        _remove_daily_files(layout, month, symbol)
    stats.add(checksums_unchanged=1, files_skipped_cached=1, files_ok=1)
    return PairMonth(symbol, OK, "monthly",
                     [ArchiveFile(recorded.name, recorded.sha256, size, recorded.checksum_etag, recorded.data_lines)])


def _fetch_pair_month(client: BinanceClient, layout: Layout, month: Month, symbol: str, stats: FetchStats,
                      listing: dict[str, _Listed] | None = None,
                      previous: PairMonth | None = None, has_daily: bool = True) -> PairMonth:  # fmt: skip
    """One pair and month. ``listing``: the pair's monthly keys (None: none, ask for the CHECKSUM); ``previous``:
    the pair's manifest entry from the last run (its CHECKSUM ETag spares the GET when the listing shows the same)."""
    interval = layout.interval
    try:
        period = str(month)
        keys = listing.get(period) if listing is not None else None
        if listing is None or keys is not None:
            file = _monthly_file(client, layout, month, symbol, stats, keys, previous)
            if file is None and keys is not None:
                raise _listed_but_missing(client, dataset_archive_path(layout, symbol, period))
            if file is not None:
                if has_daily:
                    _remove_daily_files(layout, month, symbol)
                stats.add(files_ok=1)
                return PairMonth(symbol, OK, "monthly", [file])
        final = previous is not None and previous.status == ABSENT and previous.final
        # A final absence is only looked for as a monthly archive (just asked for: none), never in the daily folder.
        days = _published_days(client, layout, month, symbol, stats) if _has_daily(layout) and not final else []
        known = {f.name: f for f in previous.files} if previous is not None else {}
        files = []
        for day in days:
            day_sha = client.fetch_checksum(archive_path(symbol, interval, day, layout.market))
            stats.add(requests=1)
            if day_sha is None:  # the listing showed it
                raise _listed_but_missing(client, archive_path(symbol, interval, day, layout.market))
            files.append(_ensure_file(client, layout, month, symbol, day, day_sha, stats, known=known))
        if not files:
            stats.add(files_absent=1)
            return PairMonth(symbol, ABSENT)
        stats.add(files_ok=1)
        return PairMonth(symbol, OK, "daily", files)
    except (BinanceHTTPError, ArchiveError, OSError) as exc:
        stats.add(files_failed=1)
        return PairMonth(symbol, FAILED, error=str(exc))


def _listed_but_missing(client: BinanceClient, path: str) -> BinanceHTTPError:
    return BinanceHTTPError(
        f"{path.rsplit('/', 1)[-1]} is in the bucket listing ({client.listing_url}) but GET "
        f"{client.url(path)}.CHECKSUM answered 404; check BINANCE_DATA_URL (expected the host serving "
        f"{path.split('/monthly/')[0].split('/daily/')[0]}/...)"
    )


def _monthly_file(client: BinanceClient, layout: Layout, month: Month, symbol: str, stats: FetchStats,
                  keys: _Listed | None, previous: PairMonth | None) -> ArchiveFile | None:  # fmt: skip
    """The verified monthly archive on disk, or None when Binance has none (its CHECKSUM answers 404)."""
    period = str(month)
    listed_etag = keys.checksum.etag if keys is not None and keys.checksum is not None else None
    recorded = _recorded_monthly(layout, month, symbol, previous)
    if listed_etag and recorded is not None and recorded.checksum_etag == listed_etag:
        # The CHECKSUM on Binance now is the one we read: its sha256 is the recorded one.
        stats.add(checksums_unchanged=1)
        sha, etag = recorded.sha256, listed_etag
    else:
        checksum = client.checksum(dataset_archive_path(layout, symbol, period))
        stats.add(requests=1)
        if checksum is None:
            return None
        sha = checksum.sha256
        # The ETag of the bytes we read: their MD5 when the listing's ETags are MD5s (a listed one that differs
        # changed between listing and GET), else the listed one (e.g. a multipart ETag), else the MD5.
        etag = checksum.md5 if listed_etag is None or _MD5.fullmatch(listed_etag) else listed_etag
    known = {recorded.name: recorded} if recorded is not None else {}
    return _ensure_file(client, layout, month, symbol, period, sha, stats, checksum_etag=etag, known=known)


def _ensure_file(client: BinanceClient, layout: Layout, month: Month, symbol: str, period: str, sha: str,
                 stats: FetchStats, checksum_etag: str | None = None,
                 known: dict[str, ArchiveFile] | None = None) -> ArchiveFile:  # fmt: skip
    """The archive on disk with ``sha``: kept when the file there has it, else downloaded and verified. ``known``:
    the last manifest's files by name, whose counted data lines a kept file with the same sha256 keeps."""
    name = archive_name(symbol, archive_stem(layout), period)
    dest = layout.raw_file(month, name)
    with suppress(FileNotFoundError):
        on_disk, size = _sha256_file(dest)
        if on_disk == sha:
            stats.add(files_skipped_cached=1)
            before = (known or {}).get(name)
            lines = before.data_lines if before is not None and before.sha256 == sha else None
            return ArchiveFile(name, sha, size, checksum_etag, lines)
    download = client.download_verified(dataset_archive_path(layout, symbol, period), dest, sha)
    stats.add(bytes_downloaded=download.bytes, requests=1)
    return ArchiveFile(name, sha, download.bytes, checksum_etag, download.data_lines)


def _published_days(client: BinanceClient, layout: Layout, month: Month, symbol: str, stats: FetchStats) -> list[str]:
    """Days of ``month`` with a daily archive for the pair, from one listing of ``...-YYYY-MM-`` keys."""
    interval = layout.interval
    prefix = archive_path(symbol, interval, f"{month}-01", layout.market).rsplit("-", 1)[0] + "-"
    keys = [o.key for o in client.list_objects(prefix)]
    stats.add(requests=1)
    suffix = ".zip"
    days = sorted({k[len(prefix) - 8 : -len(suffix)] for k in keys if k.endswith(suffix)})
    return [d for d in days if d.startswith(str(month))]


def _pairs_with_daily_files(layout: Layout, month: Month) -> set[str]:
    folder, suffix = layout.raw_dir(month), f"-{layout.interval}-{month}-"
    if layout.is_funding or not folder.is_dir():
        return set()
    return {name.split(suffix)[0] for name in os.listdir(folder) if suffix in name and name.endswith(".zip")}


def _remove_daily_files(layout: Layout, month: Month, symbol: str) -> None:
    """The monthly archive supersedes daily files fetched before it was published."""
    for path in layout.raw_dir(month).glob(f"{symbol}-{layout.interval}-{month}-??.zip"):
        path.unlink(missing_ok=True)


def _sha256_file(path: Path) -> tuple[str, int]:
    """The file's sha256 (hex) and size. A re-run hashes every archive on disk while its listings are on the
    network: four system calls per file (open, fstat, one read, close), as each one lets the download threads take
    the GIL and a busy one makes this thread wait to get it back."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        digest, chunk = hashlib.sha256(), min(size + 1, _HASH_CHUNK)  # small archives: one read, short = the end
        while data := os.read(fd, chunk):
            digest.update(data)
            if len(data) < chunk:
                break
        return digest.hexdigest(), size
    finally:
        os.close(fd)
