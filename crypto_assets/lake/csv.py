"""Normalize a month's verified archives into one headed UTC CSV per pair, incrementally.

A pair's CSV is rebuilt only when its source archives changed (their sha256 differs from the one recorded in the
CSV manifest); CSVs of pairs that no longer have data that month are removed, so the folder mirrors the month.
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from dataclasses import dataclass

from crypto_assets.binance.archives import open_member
from crypto_assets.binance.klines import normalize_pair_month
from crypto_assets.lake.leftovers import remove_dead_temp_files
from crypto_assets.lake.manifest import read_json, write_json
from crypto_assets.lake.raw import OK, PairMonth, read_manifest
from crypto_assets.layout import MANIFEST, Layout
from crypto_assets.months import Month

_DATA_LINE = re.compile(rb"\n(?=\d)")


@dataclass
class NormalizeResult:
    month: Month
    rows: int
    symbols: int
    duplicates_dropped: int
    off_grid: int
    rebuilt: int
    daily_sourced: int
    seconds: float
    per_symbol: dict[str, dict]


def read_csv_manifest(layout: Layout, month: Month) -> dict[str, dict]:
    return read_json(layout.csv_manifest(month), {"pairs": {}})["pairs"]


def normalize_month(layout: Layout, month: Month) -> NormalizeResult:
    """Bring ``csv/{interval}/{month}/`` in line with the raw manifest of ``month``.

    Raises MalformedKlineError (file, line, text) on the first malformed row; CSVs already written stay valid.
    """
    started = time.perf_counter()
    remove_dead_temp_files(layout.csv_dir(month))  # a killed run's half-written files
    raw = {s: e for s, e in read_manifest(layout, month).items() if e.status == OK}
    previous = read_csv_manifest(layout, month)
    pairs: dict[str, dict] = {}
    rebuilt = 0
    try:
        for symbol, entry in sorted(raw.items()):
            known = previous.get(symbol)
            reusable = known and known.get("source_sha256") == entry.sha256 and "csv_rows" in known  # current format
            if reusable and layout.csv_file(month, symbol).exists():
                pairs[symbol] = known
                continue
            pairs[symbol] = _normalize_pair(layout, month, entry)
            rebuilt += 1
    finally:
        # Record what is done even when a later pair fails, so the next run resumes instead of redoing.
        kept = {s: p for s, p in previous.items() if s in raw}
        write_json(
            layout.csv_manifest(month), {"month": str(month), "interval": layout.interval, "pairs": {**kept, **pairs}}
        )
    for path in layout.csv_dir(month).glob("*.csv"):
        if path.stem not in pairs and path.name != MANIFEST:
            path.unlink()
    return NormalizeResult(
        month=month,
        rows=sum(p["rows"] for p in pairs.values()),
        symbols=sum(1 for p in pairs.values() if p["rows"] > 0),
        duplicates_dropped=sum(p["duplicates_dropped"] for p in pairs.values()),
        off_grid=sum(p["off_grid"] for p in pairs.values()),
        rebuilt=rebuilt,
        daily_sourced=sum(1 for e in raw.values() if e.source == "daily"),
        seconds=round(time.perf_counter() - started, 3),
        per_symbol=pairs,
    )


def _count_data_lines(archive_path) -> int:
    """Lines starting with a digit in the archive's CSV member (a header and blank lines do not count), streamed."""
    count, previous = 0, b"\n"
    archive, stream = open_member(archive_path)
    with archive, stream:
        while chunk := stream.read(1 << 20):
            count += len(_DATA_LINE.findall(chunk)) + (previous == b"\n" and chunk[:1].isdigit())
            previous = chunk[-1:]
    return count


def _count_lines(path) -> int:
    count = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _normalize_pair(layout: Layout, month: Month, entry: PairMonth) -> dict:
    with ExitStack() as stack:
        sources = []
        for file in entry.files:
            archive, stream = open_member(layout.raw_file(month, file.name))
            stack.enter_context(archive)
            sources.append((file.name, stack.enter_context(stream)))
        out = layout.csv_file(month, entry.symbol)
        stats = normalize_pair_month(entry.symbol, layout.interval, month, sources, out)
    # The check "rows = archive rows - duplicates" compares two counts taken apart from the normalizer's own: data
    # lines in the archives, and lines in the CSV it wrote.
    archive_rows = sum(_count_data_lines(layout.raw_file(month, f.name)) for f in entry.files)
    return {
        "rows": stats.rows,
        "csv_rows": _count_lines(out) - 1,  # minus the header
        "archive_rows": archive_rows,
        "duplicates_dropped": stats.duplicates_dropped,
        "off_grid": stats.off_grid,
        "first_open_time": stats.first_open_time,
        "last_open_time": stats.last_open_time,
        "source": entry.source,
        "source_sha256": entry.sha256,
    }
