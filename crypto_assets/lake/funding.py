"""A futures market's funding rates: Binance's monthly archives, verified, once -> Parquet under
``parquet/{market}/funding/year=Y/month=M/``, with each month's quality figures in a marker beside its files.

Fetching (``fetch_funding_months``) is ``lake.raw.fetch_months`` on the funding dataset (``layout.funding``):
CHECKSUM-verified, a file on disk whose sha256 is the current CHECKSUM's is kept, ok / absent / failed per contract and
month in ``raw/{market}/funding/YYYY-MM/_manifest.json``, a 404 for an archive the bucket listing shows is failed.
What is particular to funding is decided here:

- only perpetual contracts have funding: quarterly contracts of the universe are never asked for;
- there are monthly archives only, published after the month ends. A month that has not ended (UTC, by ``today``)
  is ``not_published`` for every contract without a request; a month that ended less than
  ``PUBLICATION_GRACE_DAYS`` ago and for which no contract has an archive yet is ``not_published`` too (Binance
  publishes "before mid of the new month"). Neither is a failure; a later run asks again and fills the month.

Writing (``write_funding_months``): the archives are parsed in Python (``binance.funding``: errors name the file and
the line), each month's rows are checked to fall inside it, exact copies of a row are dropped and counted, and every
month to write goes through one SparkSession (a job per month, reading the month's rows from a file the parse
wrote) into a staging root (``lake/swap.py``); each month's marker (figures read back from the staged Parquet) is
written into its staged folder, and the folder with its marker is then swapped in by renames: a killed run leaves
every month old or new, data and figures together. A month whose inputs (each contract's status and archive sha256)
did not change is skipped without Spark; a month with a failed contract is held back, its Parquet left as it was
(nothing already stored is lost); a month without any ok archive has no Parquet folder.

Columns: ``funding_time`` (the settlement instant: calc_time rounded to the hour, UTC TIMESTAMP), ``calc_time`` (as
published, UTC TIMESTAMP), ``symbol``, ``funding_interval_hours`` (int), ``funding_rate`` (double), ``year`` and
``month`` (partition columns, the archive's month). Times are epoch milliseconds until Spark's ``timestamp_millis``
makes them instants: no local time is involved anywhere (the machine's zone, the session's zone).

The figures (``FundingMonthSummary``: rows, contracts, first and last settlement, settlements missing between a
contract's first and last one given its declared intervals, duplicates, settlements off their interval's grid, rates
out of bounds) are what the checks in ``lake/quality.py`` judge and what a report reads (``funding_report_figures``,
no Spark).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from crypto_assets.binance.archives import ArchiveError
from crypto_assets.binance.client import BinanceClient
from crypto_assets.binance.funding import HOUR_MS, FundingFormatError, FundingRow, read_funding_archive
from crypto_assets.binance.futures import PERPETUAL, contract_kind
from crypto_assets.lake import markers, swap
from crypto_assets.lake.manifest import read_json, write_json
from crypto_assets.lake.raw import (
    ABSENT,
    FAILED,
    NOT_PUBLISHED,
    OK,
    PUBLICATION_GRACE_DAYS,
    FetchStats,
    PairMonth,
    fetch_months,
    read_manifest,
    write_manifest,
)
from crypto_assets.layout import Layout
from crypto_assets.months import Month, format_utc, utc_today

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import DataFrame, SparkSession

# |funding rate| per settlement above which a rate is out of bounds (rates_within_bounds, a WARN). Binance caps a
# contract's rate per settlement at a few percent at most (typically 0.3% .. 3%, the default being 0.01% per 8 h);
# 5% per settlement is beyond any cap: a unit or parsing error, or a file that is not Binance's.
MAX_ABS_RATE = 0.05
MAX_GAPS_PER_SYMBOL = 20
# Bump when the Parquet layout or the summary changes, so every month is rewritten once.
FORMAT_VERSION = 1
# Under the staging root: each month's parsed rows, as a CSV file Spark reads (gone with the staging root).
_ROWS = "_rows"

PARQUET_COLUMNS: list[tuple[str, str]] = [
    ("funding_time", "timestamp"),  # the settlement instant, UTC (Parquet TIMESTAMP_MICROS, adjusted to UTC)
    ("calc_time", "timestamp"),  # as published (often a few ms after funding_time), UTC
    ("symbol", "string"),
    ("funding_interval_hours", "int"),  # the contract's funding interval at this settlement: 8, 4 or 1
    ("funding_rate", "double"),  # paid at this settlement (0.0001 = 0.01%)
    ("year", "int"),  # partition column: the archive's (UTC) year
    ("month", "int"),  # partition column: the archive's (UTC) month, 1-12
]


# --- fetching --------------------------------------------------------------------------------------------------------
@dataclass
class FundingFetch:
    """What ``fetch_funding_months`` did: per month the contracts' entries (as in the raw manifest) and the fetch
    figures; the quarterly contracts left out (they have no funding)."""

    entries: dict[Month, dict[str, PairMonth]]
    stats: dict[Month, FetchStats]
    delivery_skipped: list[str] = field(default_factory=list)

    def counts(self, month: Month) -> dict[str, int]:
        """Contracts per status in ``month``: ok, absent, not_published, failed."""
        return status_counts(self.entries[month])


def status_counts(entries: dict[str, PairMonth]) -> dict[str, int]:
    found = Counter(e.status for e in entries.values())
    return {status: found.get(status, 0) for status in (OK, ABSENT, NOT_PUBLISHED, FAILED)}


def perpetuals(symbols: Iterable[str]) -> tuple[list[str], list[str]]:
    """(perpetual contracts, quarterly contracts) of ``symbols``, by name (``BTCUSDT``, ``BTCUSD_PERP`` are perpetual;
    ``BTCUSDT_250328`` quarterly); ValueError naming a symbol that is no contract name."""
    kinds = {s: contract_kind(s) for s in dict.fromkeys(symbols)}
    return [s for s, k in kinds.items() if k == PERPETUAL], [s for s, k in kinds.items() if k != PERPETUAL]


def month_has_ended(month: Month, today: date) -> bool:
    return month.next().first_day <= today


def in_publication_grace(month: Month, today: date) -> bool:
    """The month has ended, less than PUBLICATION_GRACE_DAYS ago: its archives may not be out yet."""
    return month_has_ended(month, today) and today < month.next().first_day + timedelta(PUBLICATION_GRACE_DAYS)


def fetch_funding_months(
    client: BinanceClient,
    layout: Layout,
    months: Iterable[Month],
    symbols: Iterable[str],
    *,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
    today: date | None = None,
) -> FundingFetch:
    """Fetch the funding archive of every perpetual of ``symbols`` for every month of ``months`` into
    ``raw/{market}/funding/YYYY-MM/`` (``layout``: a futures market's funding dataset, ``Layout.funding``) and write
    each month's manifest.

    Quarterly contracts are left out (no request). Months that have not ended by ``today`` (default: the UTC date)
    are recorded ``not_published`` for every contract without a request; a month in its publication grace without a
    single archive is recorded ``not_published`` too. Everything else is ``lake.raw.fetch_months``'s (verified, once,
    atomically; ok / absent / failed per contract)."""
    if not layout.is_funding:
        raise ValueError(f"fetch_funding_months needs a funding dataset (Layout.funding); got {layout.dataset}")
    today = today or utc_today()
    months = sorted(dict.fromkeys(months))
    contracts, quarterly = perpetuals(symbols)
    due = [m for m in months if month_has_ended(m, today)]
    entries: dict[Month, dict[str, PairMonth]] = {}
    stats: dict[Month, FetchStats] = {}
    if due:
        entries, stats = fetch_months(client, layout, due, contracts, workers=workers, progress=progress, today=today)
    for month in due:  # ended lately, nothing out yet: not published (a listing that failed has made them failed)
        found = entries[month]
        if found and in_publication_grace(month, today) and all(e.status == ABSENT for e in found.values()):
            entries[month] = {s: PairMonth(s, NOT_PUBLISHED) for s in found}
            stats[month].add(files_absent=-len(found))
            write_manifest(layout, month, entries[month])
    for month in months:
        if month not in entries:  # not ended: Binance cannot have it
            entries[month] = {s: PairMonth(s, NOT_PUBLISHED) for s in contracts}
            stats[month] = FetchStats()
            write_manifest(layout, month, entries[month])
    return FundingFetch({m: entries[m] for m in months}, {m: stats[m] for m in months}, quarterly)


def archives_on_disk(layout: Layout, entries: dict[str, PairMonth], month: Month) -> dict[str, bool]:
    """Per ok contract: its verified archive is on disk at the recorded size."""
    verified = {}
    for symbol, entry in entries.items():
        if entry.status == OK:
            try:
                verified[symbol] = all(layout.raw_file(month, f.name).stat().st_size == f.bytes for f in entry.files)
            except OSError:
                verified[symbol] = False
    return verified


# --- quality figures -------------------------------------------------------------------------------------------------
@dataclass
class FundingSymbolSummary:
    """Figures of one contract in one month (times are epoch milliseconds, UTC)."""

    rows: int  # rows written: the archive's rows less exact copies
    distinct_times: int  # distinct funding_time
    first_funding_time: int
    last_funding_time: int
    intervals: list[int]  # the declared intervals (hours) seen, ascending
    off_cadence: int  # rows whose funding_time is not on their declared interval's grid (hours since 00:00 UTC)
    missing_settlements: int  # settlements missing between the first and the last one, given the declared intervals
    # (first missing funding_time, last missing funding_time, settlements) of the largest gaps, largest then earliest
    gaps: list[tuple[int, int, int]]
    rates_out_of_bounds: int  # rows with |funding_rate| > the month's rate bound
    max_abs_rate: float
    duplicates_dropped: int = 0  # exact copies of a row in the archive, not written
    parquet_rows: int | None = None  # rows of the contract read back from the Parquet written (None: not read)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FundingSymbolSummary:
        return cls(**{**data, "gaps": [tuple(g) for g in data["gaps"]]})


@dataclass
class FundingMonthSummary:
    """Figures of one month of a funding dataset, per contract, and the month's contracts per raw status."""

    month: Month
    per_symbol: dict[str, FundingSymbolSummary]
    contracts_ok: int = 0
    contracts_absent: int = 0
    contracts_not_published: int = 0
    contracts_failed: int = 0
    rate_bound: float = MAX_ABS_RATE

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.per_symbol.values())

    @property
    def symbols(self) -> int:
        return sum(1 for s in self.per_symbol.values() if s.rows)

    @property
    def published(self) -> bool:
        """False when no contract has an archive because Binance has not published the month yet."""
        return not (self.contracts_not_published and not self.contracts_ok)

    @property
    def duplicates(self) -> int:
        """Rows beyond the first for a repeated (symbol, funding_time) that differ (exact copies are dropped)."""
        return sum(s.rows - s.distinct_times for s in self.per_symbol.values())

    @property
    def duplicates_dropped(self) -> int:
        return sum(s.duplicates_dropped for s in self.per_symbol.values())

    @property
    def off_cadence(self) -> int:
        return sum(s.off_cadence for s in self.per_symbol.values())

    @property
    def missing_settlements(self) -> int:
        return sum(s.missing_settlements for s in self.per_symbol.values())

    @property
    def rates_out_of_bounds(self) -> int:
        return sum(s.rates_out_of_bounds for s in self.per_symbol.values())

    @property
    def first_funding_time(self) -> int | None:
        return min((s.first_funding_time for s in self.per_symbol.values() if s.rows), default=None)

    @property
    def last_funding_time(self) -> int | None:
        return max((s.last_funding_time for s in self.per_symbol.values() if s.rows), default=None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {**data, "month": str(self.month), "per_symbol": dict(sorted(data["per_symbol"].items()))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FundingMonthSummary:
        per_symbol = {k: FundingSymbolSummary.from_dict(v) for k, v in data["per_symbol"].items()}
        return cls(**{**data, "month": Month.parse(data["month"]), "per_symbol": per_symbol})

    def figures(self) -> dict[str, Any]:
        """The month's figures for a report: totals, first and last settlement (ms and UTC text)."""
        first, last = self.first_funding_time, self.last_funding_time
        return {
            "month": str(self.month), "published": self.published, "rows": self.rows, "contracts": self.symbols,
            "first_funding_time": first, "last_funding_time": last,
            "first_funding_utc": format_utc(first) if first is not None else None,
            "last_funding_utc": format_utc(last) if last is not None else None,
            "missing_settlements": self.missing_settlements, "duplicates": self.duplicates,
            "duplicates_dropped": self.duplicates_dropped, "off_cadence": self.off_cadence,
            "rates_out_of_bounds": self.rates_out_of_bounds, "contracts_ok": self.contracts_ok,
            "contracts_absent": self.contracts_absent, "contracts_not_published": self.contracts_not_published,
            "contracts_failed": self.contracts_failed,
        }  # fmt: skip


def without_exact_copies(rows: list[FundingRow]) -> tuple[list[FundingRow], int]:
    """``rows`` with exact copies of an earlier row left out (file order kept), and how many were."""
    seen: set[FundingRow] = set()
    kept = []
    for row in rows:
        if row not in seen:
            seen.add(row)
            kept.append(row)
    return kept, len(rows) - len(kept)


def summarize_symbol(rows: list[FundingRow], *, duplicates_dropped: int = 0,
                     rate_bound: float = MAX_ABS_RATE) -> FundingSymbolSummary:  # fmt: skip
    """The figures of one contract's month from its rows (exact copies already dropped; ``rows`` not empty).

    Completeness: between two consecutive settlements ``a`` and ``b`` (intervals ``ha`` and ``hb`` as declared),
    the settlements expected are the instants strictly between them on the grid of the coarser of ``ha`` and ``hb``
    (multiples of that many hours since 00:00 UTC): an interval that changes between two settlements never reads as a
    gap (8 h -> 4 h at 16:00: 08:00, 16:00, 20:00 ...; 4 h -> 8 h at 04:00: 00:00, 08:00 ...), while a settlement
    missing at an unchanged interval always does."""
    ordered = sorted(rows, key=lambda r: (r.funding_time, r.calc_time))
    times = [r.funding_time for r in ordered]
    distinct = len(set(times))
    gaps, missing = [], 0
    previous: FundingRow | None = None
    for row in ordered:
        if previous is not None and row.funding_time > previous.funding_time:
            step = max(previous.interval_hours, row.interval_hours) * HOUR_MS
            first = (previous.funding_time // step + 1) * step
            last = (row.funding_time - 1) // step * step
            if last >= first:
                count = (last - first) // step + 1
                missing += count
                gaps.append((first, last, count))
        previous = row
    gaps.sort(key=lambda g: (-g[2], g[0]))
    return FundingSymbolSummary(
        rows=len(ordered), distinct_times=distinct, first_funding_time=times[0], last_funding_time=times[-1],
        intervals=sorted({r.interval_hours for r in ordered}),
        off_cadence=sum(1 for r in ordered if r.funding_time % (r.interval_hours * HOUR_MS)),
        missing_settlements=missing, gaps=gaps[:MAX_GAPS_PER_SYMBOL],
        rates_out_of_bounds=sum(1 for r in ordered if abs(r.rate) > rate_bound),
        max_abs_rate=max(abs(r.rate) for r in ordered), duplicates_dropped=duplicates_dropped,
    )  # fmt: skip


def empty_summary(month: Month, entries: dict[str, PairMonth], rate_bound: float = MAX_ABS_RATE
                  ) -> FundingMonthSummary:  # fmt: skip
    """A month without rows: only its contracts per raw status."""
    counts = status_counts(entries)
    return FundingMonthSummary(month, {}, counts[OK], counts[ABSENT], counts[NOT_PUBLISHED], counts[FAILED],
                               rate_bound)  # fmt: skip


# --- writing ---------------------------------------------------------------------------------------------------------
@dataclass
class FundingMonthWrite:
    """What ``write_funding_months`` did for one month. ``files``/``bytes``: its ``.parquet`` files on disk after the
    call. ``skipped``: left as it was (up to date, or held back: then ``error`` says why). ``error``: the month was
    not written (a contract failed in the raw layer, or an archive did not parse: the file and line are named)."""

    month: Month
    files: int
    bytes: int
    skipped: bool
    summary: FundingMonthSummary
    error: str | None = None

    @property
    def rows(self) -> int:
        return self.summary.rows

    @property
    def symbols(self) -> int:
        return self.summary.symbols


# The columns of a month's rows file (``_stage_month``), as Spark reads them.
ROWS_SCHEMA = "symbol STRING, funding_ms BIGINT, calc_ms BIGINT, funding_interval_hours INT, funding_rate DOUBLE"


def fingerprint(layout: Layout, month: Month, entries: dict[str, PairMonth], rate_bound: float) -> str:
    """What a month's Parquet and figures are built from: the format, dataset, month, rate bound, and each
    contract's raw status and archive sha256."""
    basis = {
        "format": FORMAT_VERSION, "dataset": layout.dataset, "month": str(month), "rate_bound": rate_bound,
        "contracts": {s: [e.status, e.sha256] for s, e in sorted(entries.items())},
    }  # fmt: skip
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def read_month_marker(layout: Layout, month: Month) -> dict[str, Any] | None:
    """The marker of a written month: ``dataset``, ``month``, ``fingerprint``, ``rows``, ``symbols``, ``files``,
    ``bytes`` and ``summary`` (``FundingMonthSummary.to_dict``); None if the month has no Parquet."""
    return read_json(markers.marker_path(layout, month))


def read_month_summary(layout: Layout, month: Month) -> FundingMonthSummary | None:
    marker = read_month_marker(layout, month)
    return FundingMonthSummary.from_dict(marker["summary"]) if marker else None


def write_funding_months(
    spark: Callable[[], SparkSession],
    layout: Layout,
    months: Iterable[Month],
    *,
    force: bool = False,
    rate_bound: float = MAX_ABS_RATE,
) -> dict[Month, FundingMonthWrite]:
    """Bring ``parquet/{market}/funding/year=Y/month=M/`` in line with each month's raw funding archives.

    ``spark`` is called for a session only if some month needs writing; all months written share it and one job.
    Per month: a contract failed in the raw layer holds the month back (its Parquet stays as it was; ``error`` says
    why); no ok archive removes the month's folder (not published yet, or no contract had funding); an unchanged
    month (its marker's fingerprint) is skipped unless ``force``; an archive that does not parse, or holds a
    settlement outside its month, fails its month (``error`` names the file and the line or row), the others are
    written. Never raises for a month's data: each month's outcome is in the result."""
    if not layout.is_funding:
        raise ValueError(f"write_funding_months needs a funding dataset (Layout.funding); got {layout.dataset}")
    months = list(dict.fromkeys(months))
    results: dict[Month, FundingMonthWrite] = {}
    to_write: dict[Month, tuple[str, dict[str, PairMonth], dict[str, PairMonth]]] = {}
    swap.recover(layout.parquet_root)  # a run killed mid-swap: put back the months it had moved aside
    for month in months:
        entries = read_manifest(layout, month)
        failed = sorted(s for s, e in entries.items() if e.status == FAILED)
        ok = {s: e for s, e in entries.items() if e.status == OK}
        marker = read_month_marker(layout, month)
        files, size = markers.file_stats(layout, month)
        if failed:
            summary = FundingMonthSummary.from_dict(marker["summary"]) if marker else empty_summary(month, entries)
            error = (f"{month}: {len(failed)} contract(s) failed in the raw layer ({', '.join(failed[:10])}); the "
                     "month's Parquet is left as it was until they are fetched")  # fmt: skip
            results[month] = FundingMonthWrite(month, files, size, True, summary, error)
            continue
        if not ok:
            _remove_month(layout, month)
            results[month] = FundingMonthWrite(month, 0, 0, False, empty_summary(month, entries, rate_bound))
            continue
        wanted = fingerprint(layout, month, entries, rate_bound)
        if not force and marker and marker.get("fingerprint") == wanted and files:
            summary = FundingMonthSummary.from_dict(marker["summary"])
            results[month] = FundingMonthWrite(month, files, size, True, summary)
            continue
        to_write[month] = (wanted, entries, ok)
    if to_write:
        results |= _write(spark, layout, to_write, rate_bound)
    return {m: results[m] for m in months}


def _read_symbol(layout: Layout, month: Month, entry: PairMonth) -> tuple[list[FundingRow], int]:
    """One ok contract's rows of ``month`` (exact copies dropped) and the copies dropped; FundingFormatError naming
    the file and row for a settlement outside the month."""
    parsed = []
    for archive in entry.files:
        parsed += read_funding_archive(layout.raw_file(month, archive.name), name=archive.name)
    for number, row in enumerate(parsed, start=1):
        if not month.start_ms <= row.funding_time < month.end_ms:
            csv_name = entry.files[0].name.removesuffix(".zip") + ".csv"
            raise FundingFormatError(
                f"{csv_name} row {number}: calc_time {row.calc_time} settles at {format_utc(row.funding_time)} "
                f"UTC, outside the archive's month {month}; expected every settlement inside the month"
            )
    return without_exact_copies(parsed)


def _stage_month(layout: Layout, month: Month, entries: dict[str, PairMonth], ok: dict[str, PairMonth],
                 rate_bound: float, rows_file: Path) -> FundingMonthSummary | str:  # fmt: skip
    """Write a month's rows from its ok archives into ``rows_file`` (CSV of ``ROWS_SCHEMA``'s columns, no header) and
    return its figures; the error for ``_write`` to report when an archive does not parse.

    Contract by contract: a contract's rows are summarized and written, then dropped, so the run process holds one
    contract's ~100 rows, not a month's ~60,000 (600 contracts): U's 15 months took the process 52 MB over its Spark
    session's footprint as Arrow tables sent to Spark, 21 MB this way. A rate is written as ``repr`` gives it (the
    shortest text that parses back to the same double, in Python and in Java alike)."""
    summary = empty_summary(month, entries, rate_bound)
    rows_file.parent.mkdir(parents=True, exist_ok=True)
    with open(rows_file, "w", encoding="utf-8", newline="\n") as out:
        for symbol, entry in sorted(ok.items()):
            try:
                rows, dropped = _read_symbol(layout, month, entry)
            except (FundingFormatError, ArchiveError, OSError) as exc:
                return f"{month}: {exc}"
            summary.per_symbol[symbol] = summarize_symbol(rows, duplicates_dropped=dropped, rate_bound=rate_bound)
            out.writelines(f"{symbol},{r.funding_time},{r.calc_time},{r.interval_hours},{r.rate!r}\n" for r in rows)
    return summary


def _write(spark: Callable[[], SparkSession], layout: Layout, months: dict,
           rate_bound: float) -> dict[Month, FundingMonthWrite]:  # fmt: skip
    """Each month of ``months`` staged as a rows file and written by Spark into the staging root, one month at a time,
    the next month's rows file written in a thread while Spark writes this one; an archive that does not parse fails
    its month, the others are written. Then each month's figures (with the rows read back from the staged files) go
    into its staged folder's marker, and each folder is swapped in.

    The rows reach Spark as a file under the staging root (``_ROWS``, removed with it), not inside the query:
    sent as a local relation (``createDataFrame``), a month's ~3 MB of rows held ~40-80 MB of the server's heap
    through its young collections (the old generation after each full collection 110-168 MB, ~90 MB before), and
    U's 15 months took a freshly warmed server JVM from 559 to 708 MB; read from the file, 520 -> 560 MB, in 5-8 s
    instead of 11-12."""
    from pyspark.sql import functions as F

    staging = swap.staging_root(layout.parquet_root)
    session, failed, written = None, {}, {}
    queue = list(months.items())
    with ThreadPoolExecutor(1, thread_name_prefix="funding-parse") as parser:

        def prepare(i: int) -> tuple[Path, Future] | None:
            if i >= len(queue):
                return None
            month, (_, entries, ok) = queue[i]
            rows_file = staging / _ROWS / f"{month}.csv"
            return rows_file, parser.submit(_stage_month, layout, month, entries, ok, rate_bound, rows_file)

        ahead = prepare(0)
        for i, (month, (wanted, _, _)) in enumerate(queue):
            (rows_file, staged), ahead = ahead, prepare(i + 1)
            summary = staged.result()
            if isinstance(summary, str):
                failed[month] = summary
                continue
            if session is None:
                session = spark()
                # The lake's file format must not depend on the session: standard UTC timestamps, not legacy INT96.
                session.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
            frame = session.read.schema(ROWS_SCHEMA).option("mode", "FAILFAST").csv(str(rows_file)).select(
                F.timestamp_millis("funding_ms").alias("funding_time"),
                F.timestamp_millis("calc_ms").alias("calc_time"),
                "symbol", "funding_interval_hours", "funding_rate",
            )  # fmt: skip
            # One file per month, contracts in time order.
            frame = frame.coalesce(1).sortWithinPartitions("symbol", "funding_time")
            target = str(staging / _relative(layout, month))
            frame.write.mode("overwrite").option("compression", "snappy").parquet(target)
            written[month] = (wanted, summary)
    read_back = _read_back(session, layout, list(written)) if written else {}
    for month, (wanted, summary) in written.items():
        for symbol, figures in summary.per_symbol.items():
            figures.parquet_rows = read_back.get((month, symbol), 0)
        for (m, symbol), count in read_back.items():  # a contract in the Parquet that no archive holds
            if m == month and symbol not in summary.per_symbol:
                summary.per_symbol[symbol] = FundingSymbolSummary(0, 0, 0, 0, [], 0, 0, [], 0, 0.0, 0, count)
        folder = staging / _relative(layout, month)
        staged = sorted(folder.glob("*.parquet"))
        write_json(folder / markers.MARKER, {
            "dataset": layout.dataset, "month": str(month), "fingerprint": wanted, "rows": summary.rows,
            "symbols": summary.symbols, "files": len(staged), "bytes": sum(f.stat().st_size for f in staged),
            "summary": summary.to_dict(),
        })  # fmt: skip
    swap.swap_in(layout.parquet_root, [_relative(layout, m) for m in written])
    out = {}
    for month, (_, summary) in written.items():
        files, size = markers.file_stats(layout, month)
        out[month] = FundingMonthWrite(month, files, size, False, summary)
    for month, error in failed.items():
        marker = read_month_marker(layout, month)
        entries = months[month][1]
        summary = FundingMonthSummary.from_dict(marker["summary"]) if marker else empty_summary(month, entries)
        files, size = markers.file_stats(layout, month)
        out[month] = FundingMonthWrite(month, files, size, True, summary, error)
    return out


def _read_back(session: SparkSession, layout: Layout, months: list[Month]) -> dict[tuple[Month, str], int]:
    """Rows per (month, contract) in the staged Parquet of ``months``, as Spark reads them."""
    from pyspark.sql import functions as F

    staging = swap.staging_root(layout.parquet_root)
    folders = [str(staging / _relative(layout, m)) for m in months if (staging / _relative(layout, m)).is_dir()]
    if not folders:
        return {}
    frame: DataFrame = session.read.option("basePath", str(staging)).parquet(*folders)
    counted = frame.groupBy("year", "month", "symbol").agg(F.count(F.lit(1)).alias("rows")).collect()
    return {(Month(r["year"], r["month"]), r["symbol"]): r["rows"] for r in counted}


def _relative(layout: Layout, month: Month) -> str:
    return str(layout.parquet_dir(month).relative_to(layout.parquet_root))


def _remove_month(layout: Layout, month: Month) -> None:
    swap.remove(layout.parquet_root, _relative(layout, month))


# --- for a report ----------------------------------------------------------------------------------------------------
def funding_report_figures(layout: Layout, months: Iterable[Month] | None = None) -> dict[Month, dict[str, Any]]:
    """Per month, the funding dataset's figures for a report, without Spark: from the month's marker when it has
    Parquet, else from its raw manifest (a month not published yet, or without any funding: 0 rows). ``months``
    defaults to every month with a marker or a raw manifest. Each: ``FundingMonthSummary.figures()`` plus ``files``,
    ``bytes`` and ``per_symbol`` (contract -> rows, first/last funding_time, missing settlements, gaps...)."""
    if months is None:
        found = {Month(int(p.parent.parent.name[5:]), int(p.parent.name[6:]))
                 for p in layout.parquet_root.glob(f"year=*/month=*/{markers.MARKER}")}  # fmt: skip
        raw = layout.raw_dir(Month(2000, 1)).parent
        found |= {Month.parse(p.parent.name) for p in raw.glob("*/_manifest.json")} if raw.is_dir() else set()
        months = sorted(found)
    figures = {}
    for month in months:
        marker = read_month_marker(layout, month)
        if marker:
            summary = FundingMonthSummary.from_dict(marker["summary"])
            files, size = marker["files"], marker["bytes"]
        else:
            summary, files, size = empty_summary(month, read_manifest(layout, month)), 0, 0
        figures[month] = {**summary.figures(), "files": files, "bytes": size,
                          "per_symbol": {s: asdict(f) for s, f in sorted(summary.per_symbol.items())}}  # fmt: skip
    return figures
