"""Where every file of the lake lives. Paths under CRYPTO_DATA_DIR are built here and nowhere else.

One dataset per market and data: ``{dataset}`` is ``{market}/klines/{interval}`` (market ``spot``, ``um`` or ``cm``)
or ``{market}/funding`` (``um`` and ``cm`` only); ``{stage}`` is the interval for klines, ``funding`` for funding.

{root}/universe/pair_universe.json                 the materialized spot pair universe
{root}/universe/{market}_contract_universe.json    a futures market's contract universe
{root}/raw/{market}/{stage}/{YYYY-MM}/             verified Binance archives (+ _manifest.json)
{root}/csv/{market}/{interval}/{YYYY-MM}/{SYM}.csv.gz  headed gzip CSVs, the archives re-wrapped (+ _manifest.json)
{root}/parquet/{dataset}/year=Y/month=M/           Snappy Parquet, one folder per month
{root}/reports/{dataset}/                          dataset_report's files for the dataset (JSON, Markdown, PNG)
{root}/reports/{dataset}/months/YYYY-MM.json       its cached per-month figures
{root}/reports/dataset_report.{json,md}            dataset_report over every dataset

Before futures, spot had no market level: ``csv/{interval}``, ``parquet/{interval}`` and ``reports/{interval}``.
``lake.relocate`` moves such a lake to its place above by renames (nothing is rewritten or downloaded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from crypto_assets.binance.archives import MarketType
from crypto_assets.months import Month

MANIFEST = "_manifest.json"
CSV_SUFFIX = ".csv.gz"
KLINES, FUNDING = "klines", "funding"


@dataclass(frozen=True)
class Layout:
    root: Path
    interval: str
    market: MarketType = MarketType.SPOT
    data: str = KLINES  # KLINES or FUNDING

    @classmethod
    def at(cls, root: str | os.PathLike, interval: str, market: MarketType | str = MarketType.SPOT) -> Layout:
        return cls(Path(root).resolve(), interval, MarketType(market))

    def for_market(self, market: MarketType | str) -> Layout:
        """This lake's kline dataset of ``market``."""
        return replace(self, market=MarketType(market), data=KLINES)

    @property
    def funding(self) -> Layout:
        """This lake's funding-rate dataset of this (futures) market."""
        if not self.market.is_futures:
            raise ValueError(f"market {self.market.value!r} has no funding rates; expected um or cm")
        return replace(self, data=FUNDING)

    @property
    def is_funding(self) -> bool:
        return self.data == FUNDING

    @property
    def stage(self) -> str:
        """The dataset's folder below its market in the raw and CSV layers: the interval, or ``funding``."""
        return FUNDING if self.is_funding else self.interval

    @property
    def dataset(self) -> str:
        """``spot/klines/4h``, ``um/funding``: the dataset's folder below ``parquet/`` and ``reports/``."""
        return f"{self.market.value}/{FUNDING}" if self.is_funding else f"{self.market.value}/{KLINES}/{self.interval}"

    @property
    def universe_file(self) -> Path:
        if self.market is MarketType.SPOT:
            return self.root / "universe" / "pair_universe.json"
        return self.root / "universe" / f"{self.market.value}_contract_universe.json"

    def raw_dir(self, month: Month) -> Path:
        return self.root.joinpath("raw", self.market.value, self.stage, str(month))  # one Path built, not four

    def raw_manifest(self, month: Month) -> Path:
        return self.raw_dir(month) / MANIFEST

    def raw_file(self, month: Month, name: str) -> Path:
        return self.contained(self.raw_dir(month), name)

    def csv_dir(self, month: Month) -> Path:
        return self.root.joinpath("csv", self.market.value, self.stage, str(month))

    def csv_manifest(self, month: Month) -> Path:
        return self.csv_dir(month) / MANIFEST

    def csv_file(self, month: Month, symbol: str) -> Path:
        return self.contained(self.csv_dir(month), f"{symbol}{CSV_SUFFIX}")

    @property
    def parquet_root(self) -> Path:
        return self.root / "parquet" / self.dataset

    def parquet_dir(self, month: Month) -> Path:
        return self.parquet_root / f"year={month.year}" / f"month={month.month}"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports" / self.dataset

    @property
    def lake_reports_dir(self) -> Path:
        """dataset_report's files over every dataset."""
        return self.root / "reports"

    @property
    def report_months_dir(self) -> Path:
        return self.reports_dir / "months"

    def report_month_file(self, month: Month) -> Path:
        return self.report_months_dir / f"{month}.json"

    def legacy_spot_dirs(self) -> list[tuple[Path, Path]]:
        """(where spot's dataset was before the market level, where it is now), per layer that moved."""
        spot = self.for_market(MarketType.SPOT)
        return [
            (self.root / "csv" / self.interval, self.root / "csv" / "spot" / self.interval),
            (self.root / "parquet" / self.interval, spot.parquet_root),
            (self.root / "reports" / self.interval, spot.reports_dir),
        ]

    @staticmethod
    def contained(folder: Path, name: str) -> Path:
        """``folder/name``, refusing any name that would land outside ``folder`` (path traversal).

        Checked on the text (a separator, NUL, "." or ".."), not with ``resolve()``: that costs a system call per
        path component, thousands of times per run. Files are only ever replaced atomically (``os.replace``), which
        swaps a link in the folder rather than writing through it."""
        if name in ("", ".", "..") or "/" in name or "\0" in name or (os.altsep and os.altsep in name):
            raise ValueError(f"file name {name!r} would escape {folder}; expected a plain file name")
        return folder / name
