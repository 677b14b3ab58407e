"""Where every file of the lake lives. Paths under CRYPTO_DATA_DIR are built here and nowhere else.

{root}/universe/pair_universe.json            the materialized pair universe
{root}/raw/spot/{interval}/{YYYY-MM}/         verified Binance archives (+ _manifest.json)
{root}/csv/{interval}/{YYYY-MM}/{SYM}.csv.gz  headed gzip CSVs, the archives re-wrapped (+ _manifest.json)
{root}/parquet/{interval}/year=Y/month=M/     Snappy Parquet, one folder per month
{root}/reports/{interval}/                    dataset_report as JSON, Markdown and PNG
{root}/reports/{interval}/months/YYYY-MM.json dataset_report's cached per-month figures
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from crypto_assets.months import Month

MANIFEST = "_manifest.json"
CSV_SUFFIX = ".csv.gz"


@dataclass(frozen=True)
class Layout:
    root: Path
    interval: str

    @classmethod
    def at(cls, root: str | os.PathLike, interval: str) -> Layout:
        return cls(Path(root).resolve(), interval)

    @property
    def universe_file(self) -> Path:
        return self.root / "universe" / "pair_universe.json"

    def raw_dir(self, month: Month) -> Path:
        return self.root / "raw" / "spot" / self.interval / str(month)

    def raw_manifest(self, month: Month) -> Path:
        return self.raw_dir(month) / MANIFEST

    def raw_file(self, month: Month, name: str) -> Path:
        return self.contained(self.raw_dir(month), name)

    def csv_dir(self, month: Month) -> Path:
        return self.root / "csv" / self.interval / str(month)

    def csv_manifest(self, month: Month) -> Path:
        return self.csv_dir(month) / MANIFEST

    def csv_file(self, month: Month, symbol: str) -> Path:
        return self.contained(self.csv_dir(month), f"{symbol}{CSV_SUFFIX}")

    @property
    def parquet_root(self) -> Path:
        return self.root / "parquet" / self.interval

    def parquet_dir(self, month: Month) -> Path:
        return self.parquet_root / f"year={month.year}" / f"month={month.month}"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports" / self.interval

    @property
    def report_months_dir(self) -> Path:
        return self.reports_dir / "months"

    def report_month_file(self, month: Month) -> Path:
        return self.report_months_dir / f"{month}.json"

    @staticmethod
    def contained(folder: Path, name: str) -> Path:
        """``folder/name``, refusing any name that would land outside ``folder`` (path traversal).

        Checked on the text (a separator, NUL, "." or ".."), not with ``resolve()``: that costs a system call per
        path component, thousands of times per run. Files are only ever replaced atomically (``os.replace``), which
        swaps a link in the folder rather than writing through it."""
        if name in ("", ".", "..") or "/" in name or "\0" in name or (os.altsep and os.altsep in name):
            raise ValueError(f"file name {name!r} would escape {folder}; expected a plain file name")
        return folder / name
