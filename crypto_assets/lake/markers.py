"""The marker of a Parquet month: ``_crypto_month.json`` in the month's folder (Spark ignores ``_`` files), written
after the data. It records the fingerprint of the CSV manifest the month was built from and the month's quality
summary, so a later run skips a month whose CSVs did not change (and never starts Spark when every month is skipped)
and still has its figures. A marker vouches for the data beside it: it is removed before the month is rewritten.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from crypto_assets.lake.manifest import read_json, write_json
from crypto_assets.layout import Layout
from crypto_assets.months import Month

MARKER = "_crypto_month.json"
# Bump when the Parquet layout or the summary changes, so every month is rewritten once.
FORMAT_VERSION = 2


def fingerprint(layout: Layout, month: Month, pairs: dict[str, dict]) -> str:
    """What a month's Parquet is built from: the format, interval, month and each pair's source sha256, rows and CSV
    format in its CSV manifest (``pairs``)."""
    basis = {
        "format": FORMAT_VERSION,
        "interval": layout.interval,
        "month": str(month),
        "pairs": {symbol: [p.get("source_sha256"), p["rows"], p.get("format")] for symbol, p in sorted(pairs.items())},
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def read_marker(layout: Layout, month: Month) -> dict[str, Any] | None:
    """The marker of a written month: ``month``, ``interval``, ``fingerprint``, ``rows``, ``symbols``, ``files``,
    ``bytes`` and ``summary`` (``MonthSummary.to_dict``); None if the month was never written (or is empty)."""
    return read_json(marker_path(layout, month))


def write_marker(layout: Layout, month: Month, fingerprint: str, summary: dict[str, Any], rows: int, symbols: int
                 ) -> None:  # fmt: skip
    """Record that the month's Parquet on disk was built from ``fingerprint`` and has ``summary``."""
    files, size = file_stats(layout, month)
    write_json(marker_path(layout, month),
               {"month": str(month), "interval": layout.interval, "fingerprint": fingerprint, "rows": rows,
                "symbols": symbols, "files": files, "bytes": size, "summary": summary})  # fmt: skip


def remove_marker(layout: Layout, month: Month) -> None:
    marker_path(layout, month).unlink(missing_ok=True)


def marker_path(layout: Layout, month: Month) -> Path:
    return layout.parquet_dir(month) / MARKER


def parquet_files(layout: Layout, month: Month) -> list[Path]:
    return sorted(layout.parquet_dir(month).glob("*.parquet"))


def file_stats(layout: Layout, month: Month) -> tuple[int, int]:
    """(number of ``.parquet`` files, their bytes) of the month's folder."""
    files = parquet_files(layout, month)
    return len(files), sum(f.stat().st_size for f in files)
