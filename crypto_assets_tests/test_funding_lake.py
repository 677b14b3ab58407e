"""The funding datasets (USD-M and COIN-M) against the stand-in over real HTTP, with local Spark: the Parquet equals
the ground truth, the current month is "not yet published" and filled once it is, faults fail their archive and lose
nothing already stored, a re-run downloads nothing, interval changes keep to the cadence, a hand-made gap is reported,
and the machine's time zone changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest

from crypto_assets.binance.archives import MarketType
from crypto_assets.binance.client import BinanceClient
from crypto_assets.binance.funding import FundingRow
from crypto_assets.binance.futures import discover_futures
from crypto_assets.lake import quality
from crypto_assets.lake.funding import (
    FundingMonthSummary,
    fetch_funding_months,
    funding_report_figures,
    read_month_marker,
    summarize_symbol,
    without_exact_copies,
    write_funding_months,
)
from crypto_assets.lake.raw import read_manifest
from crypto_assets.lake.universe import read_contract_universe, write_contract_universe
from crypto_assets.layout import Layout
from crypto_assets.months import Month
from crypto_assets_tests.binance_standin import FUNDING

ROOT = Path(__file__).parent.parent
UM, CM = MarketType.UM, MarketType.CM
TODAY = date(2026, 1, 15)  # the stand-in's today: monthly archives through 2025-12
HOUR = 3_600_000
JUDGES = [quality.funding_counts_match, quality.funding_no_duplicates, quality.funding_on_cadence,
          quality.funding_complete, quality.funding_rates_within_bounds]  # fmt: skip


def client(standin) -> BinanceClient:
    return BinanceClient(standin.data_url, standin.listing_url, standin.api_url, backoff=0.01, retries=2)


def funding_layout(standin, root, market: MarketType) -> Layout:
    """The funding dataset of ``market`` under ``root``, with the market's contract universe (quarterlies too)
    discovered from the stand-in's bucket listing and written as the universe asset writes it."""
    layout = Layout.at(root, "4h", market).funding
    api = standin.fapi_url if market is UM else standin.dapi_url
    write_contract_universe(layout, discover_futures(client(standin), market, api_url=api, include_delivery=True))
    return layout


def fetch(standin, layout, months, today=TODAY):
    symbols = read_contract_universe(layout).symbols
    return fetch_funding_months(client(standin), layout, [Month.parse(m) for m in months], symbols, workers=4,
                                today=today)  # fmt: skip


def write(spark, layout, months, **kw):
    return write_funding_months(lambda: spark, layout, [Month.parse(m) for m in months], **kw)


def no_spark():
    raise AssertionError("Spark was asked for, though nothing needed writing")


def parquet(spark, layout) -> dict[tuple[str, str], list[tuple]]:
    """{(YYYY-MM, symbol): [(funding_time ms, calc_time ms, interval, rate), ...] in time order} of the dataset."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(layout.parquet_root))
    rows = frame.select(F.unix_millis("funding_time").alias("f"), F.unix_millis("calc_time").alias("c"), "symbol",
                        "funding_interval_hours", "funding_rate", "year", "month").collect()  # fmt: skip
    out: dict[tuple[str, str], list[tuple]] = {}
    for r in rows:
        out.setdefault((f"{r['year']:04d}-{r['month']:02d}", r["symbol"]), []).append(
            (r["f"], r["c"], r["funding_interval_hours"], r["funding_rate"]))  # fmt: skip
    return {k: sorted(v) for k, v in out.items()}


def truth_rows(market, symbol, month, futures) -> list[tuple]:
    t = market.funding_expected(symbol, month, futures)
    return list(zip(t["funding_times"], t["calc_times"], t["interval_hours"], t["rates"]))


def outcomes(summary) -> dict[str, quality.Outcome]:
    return {o.name: o for o in (judge(summary) for judge in JUDGES)}


@pytest.mark.parametrize(
    "market_type, months, changed",
    [(UM, ["2025-02", "2025-03"], "1000PEPEUSDT"),  # 8 h -> 4 h on 2025-03-14 16:00
     (CM, ["2025-10", "2025-11"], "SOLUSD_PERP")],  # 8 h -> 4 h on 2025-11-03 00:00
)  # fmt: skip
def test_the_parquet_is_the_ground_truth_and_a_rerun_downloads_nothing(standin, market, tmp_path, spark,
                                                                       market_type, months, changed):  # fmt: skip
    futures = market_type.value
    layout = funding_layout(standin, tmp_path, market_type)
    sets = market.contract_sets(futures)
    fetched = fetch(standin, layout, months)
    assert sorted(fetched.delivery_skipped) == sorted(sets["delivery"] & sets["listed"])
    requested = " ".join([*standin.stats()["by_path"], *standin.stats()["listing_prefixes"]])
    assert not [q for q in sets["delivery"] if f"fundingRate/{q}/" in requested]  # quarterlies: never asked for
    written = write(spark, layout, months)

    lake = parquet(spark, layout)
    perpetuals = sorted(s for s in read_contract_universe(layout).symbols if s in sets["perpetual"])
    assert len(perpetuals) >= 4
    for month in months:
        entries = read_manifest(layout, Month.parse(month))
        assert sorted(entries) == perpetuals
        for symbol in perpetuals:
            truth = truth_rows(market, symbol, month, futures)
            if not truth:  # listed later, or delisted before: absent, not failed
                assert entries[symbol].status == "absent" and (month, symbol) not in lake, (month, symbol)
                continue
            assert entries[symbol].status == "ok", (month, symbol, entries[symbol])
            assert lake[(month, symbol)] == truth, (month, symbol)  # settlement instants, calc times, intervals, rates
        w = written[Month.parse(month)]
        assert not w.skipped and w.error is None and w.files == 1
        judged = outcomes(w.summary)
        assert all(o.passed for o in judged.values()), {n: o.description for n, o in judged.items() if not o.passed}
        assert w.rows == sum(len(v) for (m, _), v in lake.items() if m == month) > 0
    assert any(r[1] != r[0] for rows in lake.values() for r in rows)  # calc_time as published, a few ms late
    late_month = months[1]
    assert set(r[2] for r in lake[(late_month, changed)]) == {8, 4}  # the interval changed within the month ...
    cadence = outcomes(written[Month.parse(late_month)].summary)["on_declared_cadence"]
    assert cadence.passed and changed in cadence.description  # ... and every settlement is on its declared grid

    frame = spark.read.parquet(str(layout.parquet_root))
    assert dict(frame.dtypes) == {"funding_time": "timestamp", "calc_time": "timestamp", "symbol": "string",
                                  "funding_interval_hours": "int", "funding_rate": "double", "year": "int",
                                  "month": "int"}  # fmt: skip
    assert [p.name for p in layout.parquet_root.iterdir()] == ["year=2025"]  # no staging or swap leftovers

    # The report's figures, without Spark, from the markers.
    figures = funding_report_figures(layout)
    for month in months:
        truth = market.funding_ground_truth([month], futures, symbols=perpetuals)
        f = figures[Month.parse(month)]
        assert (f["rows"], f["contracts"], f["missing_settlements"], f["duplicates"]) == (
            truth["rows"], truth["symbols"], 0, 0)  # fmt: skip
        assert f["first_funding_time"] == min(s["first_funding_time"] for s in truth["per_symbol"].values())
        assert f["last_funding_time"] == max(s["last_funding_time"] for s in truth["per_symbol"].values())

    # A re-run downloads nothing and rewrites nothing (no Spark).
    markers_before = {m: read_month_marker(layout, Month.parse(m)) for m in months}
    standin.reset_stats()
    again = fetch(standin, layout, months)
    stats = standin.stats()
    assert stats["by_kind"]["zip"] == 0 and stats["zip_bytes"] == 0
    assert sum(s.bytes_downloaded for s in again.stats.values()) == 0
    rewritten = write_funding_months(no_spark, layout, [Month.parse(m) for m in months])
    assert all(w.skipped and w.error is None for w in rewritten.values())
    assert {m: read_month_marker(layout, Month.parse(m)) for m in months} == markers_before


def test_the_current_month_is_not_yet_published_and_is_filled_once_it_is(standin, market, tmp_path, spark):
    layout = funding_layout(standin, tmp_path, UM)
    perpetuals = sum(1 for s in read_contract_universe(layout).symbols if s in market.contract_sets("um")["perpetual"])
    january = Month(2026, 1)

    # Today 2026-01-15: January has not ended. Nothing is asked for it; not a failure.
    fetched = fetch(standin, layout, ["2026-01"])
    assert fetched.counts(january) == {"ok": 0, "absent": 0, "not_published": perpetuals, "failed": 0}
    assert not [p for p in standin.stats()["by_path"] if "2026-01" in p]
    entries = read_manifest(layout, january)
    raw_check = quality.funding_archives_verified(entries, {})
    assert raw_check.passed and raw_check.description.startswith("not yet published")
    assert raw_check.metadata["published"] is False
    written = write_funding_months(no_spark, layout, [january])[january]
    assert written.rows == 0 and not written.summary.published and not layout.parquet_dir(january).exists()
    for outcome in outcomes(written.summary).values():
        assert outcome.passed and "not yet published" in outcome.description, outcome

    # 2026-02-03: January has ended, its archives are not out yet (Binance: "before mid of the new month").
    standin.set_today("2026-02-03")
    fetched = fetch(standin, layout, ["2026-01"], today=date(2026, 2, 3))
    assert fetched.counts(january)["not_published"] == perpetuals

    # 2026-02-10: published. A later run fetches and writes it.
    standin.publish_monthly("2026-01")
    standin.set_today("2026-02-10")
    fetched = fetch(standin, layout, ["2026-01"], today=date(2026, 2, 10))
    assert fetched.counts(january)["ok"] > 0 and fetched.counts(january)["not_published"] == 0
    written = write(spark, layout, ["2026-01"])[january]
    lake = parquet(spark, layout)
    assert written.rows > 0 and written.summary.published
    for symbol in read_manifest(layout, january):
        assert lake.get(("2026-01", symbol), []) == truth_rows(market, symbol, "2026-01", "um"), symbol
    assert all(o.passed for o in outcomes(written.summary).values())


def test_a_month_without_any_funding_passes_saying_so_and_an_empty_lake_never_passes(standin, tmp_path):
    layout = funding_layout(standin, tmp_path, UM)
    before = Month(2019, 1)  # before any USD-M perpetual: every contract absent, as the bucket listing confirms
    fetched = fetch(standin, layout, [str(before)])
    assert fetched.counts(before)["absent"] == len(fetched.entries[before]) > 0
    assert quality.funding_archives_verified(fetched.entries[before], {}).passed
    summary = write_funding_months(no_spark, layout, [before])[before].summary
    for outcome in outcomes(summary).values():
        assert outcome.passed and "no funding rows expected" in outcome.description

    # Ok archives but no rows in the Parquet: every check fails (an empty dataset when data was expected).
    empty = FundingMonthSummary(Month(2025, 2), {}, contracts_ok=3)
    for outcome in outcomes(empty).values():
        assert not outcome.passed and "no funding rows in the Parquet although 3 archives are ok" in outcome.description
    # No contract at all (an empty universe): the raw check fails too.
    assert not quality.funding_archives_verified({}, {}).passed
    assert not quality.funding_counts_match(FundingMonthSummary(Month(2025, 2), {})).passed


def test_a_checksum_mismatch_or_corrupt_zip_fails_by_name_and_loses_nothing_stored(standin, market, tmp_path, spark):
    layout = funding_layout(standin, tmp_path, UM)
    feb, mar = Month(2025, 2), Month(2025, 3)
    fetch(standin, layout, ["2025-02"])
    write(spark, layout, ["2025-02"])
    stored = {p.name: p.read_bytes() for p in layout.raw_dir(feb).glob("*.zip")}
    lake_before, marker_before = parquet(spark, layout), read_month_marker(layout, feb)

    # Binance republishes two archives badly: a CHECKSUM that names another hash, a zip truncated at origin.
    standin.replace_archive("BTCUSDT", FUNDING, "2025-02", futures="um")
    standin.faults.checksum_mismatch("BTCUSDT", FUNDING, "2025-02", futures="um")
    standin.replace_archive("ETHUSDT", FUNDING, "2025-02", futures="um")
    standin.faults.corrupt_zip("ETHUSDT", FUNDING, "2025-02", futures="um")
    standin.faults.corrupt_zip("SOLUSDT", FUNDING, "2025-03", futures="um")  # and a month never fetched before
    fetched = fetch(standin, layout, ["2025-02", "2025-03"])
    for month, bad in ((feb, ["BTCUSDT", "ETHUSDT"]), (mar, ["SOLUSDT"])):
        entries = fetched.entries[month]
        assert sorted(s for s, e in entries.items() if e.status == "failed") == bad
        check = quality.funding_archives_verified(entries, {})
        assert not check.passed and all(s in check.description for s in bad)
    assert "CHECKSUM" in fetched.entries[feb]["BTCUSDT"].error
    assert "ETHUSDT-fundingRate-2025-02.zip" in fetched.entries[feb]["ETHUSDT"].error
    assert {p.name: p.read_bytes() for p in layout.raw_dir(feb).glob("*.zip")} == stored  # the verified files stay
    assert not list(layout.raw_dir(feb).glob(".*part")) and not list(layout.raw_dir(mar).glob(".*part"))

    written = write_funding_months(no_spark, layout, [feb, mar])  # both held back: nothing to write, no Spark
    assert "2 contract(s) failed in the raw layer (BTCUSDT, ETHUSDT)" in written[feb].error
    assert written[mar].error and not layout.parquet_dir(mar).exists()
    assert parquet(spark, layout) == lake_before and read_month_marker(layout, feb) == marker_before
    assert not quality.funding_not_written("counts_match_archives", written[feb].error).passed

    # Once Binance fixes them: the files on disk match again (nothing downloaded), SOLUSDT's March is fetched.
    standin.faults.clear()
    standin.market.revisions.clear()
    standin.reset_stats()
    fetched = fetch(standin, layout, ["2025-02", "2025-03"])
    assert standin.stats()["by_kind"]["zip"] == 1
    assert fetched.counts(feb)["failed"] == fetched.counts(mar)["failed"] == 0
    written = write(spark, layout, ["2025-02", "2025-03"])
    assert written[feb].skipped and not written[mar].skipped and written[mar].error is None
    assert parquet(spark, layout)[("2025-03", "SOLUSDT")] == truth_rows(market, "SOLUSDT", "2025-03", "um")


def test_a_hand_made_gap_is_reported_and_an_interval_change_is_not_a_gap(standin, market, tmp_path, spark):
    layout = funding_layout(standin, tmp_path, UM)
    march = Month(2025, 3)
    fetch(standin, layout, ["2025-03"])
    # Cut two settlements out of 1000PEPEUSDT's March (2025-03-20 04:00 and 08:00, at 4 h) by hand, on disk.
    entries = read_manifest(layout, march)
    archive = layout.raw_file(march, entries["1000PEPEUSDT"].files[0].name)
    with zipfile.ZipFile(archive) as z:
        (name,) = z.namelist()
        lines = z.read(name).decode().splitlines()
    cut = {1_742_443_200_000, 1_742_457_600_000}  # 2025-03-20 04:00, 08:00 UTC
    kept = [ln for ln in lines if not ln[:1].isdigit() or settles(int(ln.split(",")[0])) not in cut]
    assert len(kept) == len(lines) - 2
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, "\n".join(kept) + "\n")

    summary = write(spark, layout, ["2025-03"])[march].summary
    pepe = summary.per_symbol["1000PEPEUSDT"]
    assert pepe.missing_settlements == 2 and pepe.gaps == [(1_742_443_200_000, 1_742_457_600_000, 2)]
    assert pepe.intervals == [4, 8] and pepe.off_cadence == 0
    judged = outcomes(summary)
    complete = judged["complete_between_first_and_last"]
    assert not complete.passed and complete.severity == "WARN"
    assert complete.description == "1000PEPEUSDT: 2 missing (2025-03-20 04:00:00..2025-03-20 08:00:00)"
    assert judged["on_declared_cadence"].passed and judged["no_duplicate_funding"].passed
    assert judged["counts_match_archives"].passed  # the Parquet holds what the (hand-made) archive holds
    assert funding_report_figures(layout, [march])[march]["missing_settlements"] == 2


def settles(calc_time: int) -> int:
    return (calc_time + HOUR // 2) // HOUR * HOUR


def rows_at(times_hours: list[tuple[int, int]], rate: float = 0.0001) -> list[FundingRow]:
    """Rows at (hour since 2025-03-01 00:00 UTC, declared interval)."""
    start = Month(2025, 3).start_ms
    return [FundingRow(start + h * HOUR, start + h * HOUR + 3, i, rate) for h, i in times_hours]


def test_cadence_duplicates_gaps_and_bounds_are_judged_per_row():
    # 8 h, then 4 h from 16:00; then back to 8 h from 04:00 the next day (04:00 is off the 8 h grid): no gap.
    changes = rows_at([(0, 8), (8, 8), (16, 4), (20, 4), (24, 8), (32, 8)])
    s = summarize_symbol(changes)
    assert (s.missing_settlements, s.off_cadence, s.intervals) == (0, 0, [4, 8])
    # A missing 8 h settlement, a missing 1 h run.
    eight = Month(2025, 3).start_ms + 8 * HOUR
    assert summarize_symbol(rows_at([(0, 8), (16, 8)])).gaps == [(eight, eight, 1)]
    assert summarize_symbol(rows_at([(0, 1), (1, 1), (5, 1)])).missing_settlements == 3
    # Off its declared grid: 02:00 at 8 h.
    off = summarize_symbol(rows_at([(0, 8), (2, 8), (8, 8)]))
    assert off.off_cadence == 1
    # Exact copies are dropped and counted; a repeat that differs is kept and fails.
    copied = rows_at([(0, 8), (8, 8)]) + rows_at([(8, 8)])
    kept, dropped = without_exact_copies(copied)
    assert (len(kept), dropped) == (2, 1)
    differing = summarize_symbol(rows_at([(0, 8), (8, 8)]) + rows_at([(8, 8)], rate=0.0002))
    assert (differing.rows, differing.distinct_times) == (3, 2)
    wild = summarize_symbol(rows_at([(0, 8)], rate=0.2) + rows_at([(8, 8)], rate=-0.06) + rows_at([(16, 8)]))
    assert wild.rates_out_of_bounds == 2 and wild.max_abs_rate == 0.2

    month = Month(2025, 3)
    summary = FundingMonthSummary(month, {"A": off, "B": differing, "C": wild}, contracts_ok=3)
    for figures in summary.per_symbol.values():
        figures.parquet_rows = figures.rows
    judged = outcomes(summary)
    assert not judged["on_declared_cadence"].passed and "{'A': 1}" in judged["on_declared_cadence"].description
    assert not judged["no_duplicate_funding"].passed and "['B']" in judged["no_duplicate_funding"].description
    assert not judged["rates_within_bounds"].passed and judged["rates_within_bounds"].severity == "WARN"
    assert judged["counts_match_archives"].passed
    assert FundingMonthSummary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary


ZONES = ("UTC", "Asia/Kolkata")  # this process runs in America/New_York (conftest): three zones in all

_ZONE_RUN = """
import sys
from datetime import date
from crypto_assets.binance.archives import MarketType
from crypto_assets.binance.client import BinanceClient
from crypto_assets.lake.funding import fetch_funding_months, write_funding_months
from crypto_assets.lake.spark import build_session, spark_conf
from crypto_assets.lake.universe import read_contract_universe
from crypto_assets.layout import Layout
from crypto_assets.months import Month

data_url, listing_url, api_url, root = sys.argv[1:5]
client = BinanceClient(data_url, listing_url, api_url, backoff=0.01)
session = None
for market, months in (("um", ["2025-02", "2025-03"]), ("cm", ["2025-11"])):
    layout = Layout.at(root, "4h", market).funding
    months = [Month.parse(m) for m in months]
    symbols = read_contract_universe(layout).symbols
    fetch_funding_months(client, layout, months, symbols, workers=4, today=date(2026, 1, 15))
    if session is None:
        session = build_session(spark_conf("local[1]"))
    assert all(w.error is None for w in write_funding_months(lambda: session, layout, months).values())
session.stop()
"""


def test_every_time_zone_gives_the_same_parquet(standin, tmp_path, spark):
    """2025-03 starts at local 2025-02-28 19:00 in New York and at 05:30 in Kolkata: a local-time slip moves
    settlements across the month boundary or off their grid."""
    for zone in ("America/New_York", *ZONES):
        root = tmp_path / zone.replace("/", "_")
        for market in (UM, CM):
            funding_layout(standin, root, market)
        if zone == "America/New_York":  # this process (conftest's zone), its JVM too
            for market, months in ((UM, ["2025-02", "2025-03"]), (CM, ["2025-11"])):
                layout = Layout.at(root, "4h", market).funding
                fetch(standin, layout, months)
                write(spark, layout, months)
            continue
        env = {**os.environ, "TZ": zone, "SPARK_LOCAL_IP": "127.0.0.1"}
        done = subprocess.run([sys.executable, "-c", _ZONE_RUN, standin.data_url, standin.listing_url,
                               standin.api_url, str(root)], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, (zone, done.stderr[-3000:])

    def lake(zone: str) -> dict:
        root = tmp_path / zone.replace("/", "_")
        return {m: parquet(spark, Layout.at(root, "4h", m).funding) for m in (UM, CM)}

    here = lake("America/New_York")
    march_first = Month(2025, 3).start_ms
    assert min(r[0] for rows in (v for (m, _), v in here[UM].items() if m == "2025-03") for r in rows) == march_first
    for zone in ZONES:
        assert lake(zone) == here, zone


_CONNECT_RUN = """
import sys
from datetime import date
from crypto_assets.binance.client import BinanceClient
from crypto_assets.lake.funding import fetch_funding_months, write_funding_months
from crypto_assets.lake.spark import connect_session, spark_conf
from crypto_assets.lake.universe import read_contract_universe
from crypto_assets.layout import Layout
from crypto_assets.months import Month

data_url, listing_url, api_url, root, remote = sys.argv[1:6]
client = BinanceClient(data_url, listing_url, api_url, backoff=0.01)
layout = Layout.at(root, "4h", "um").funding
months = [Month(2025, 2), Month(2025, 3)]
fetch_funding_months(client, layout, months, read_contract_universe(layout).symbols, workers=4, today=date(2026, 1, 15))
session = connect_session(remote, spark_conf("local[1]"))
written = write_funding_months(lambda: session, layout, months)
assert all(w.error is None and w.rows and w.summary.per_symbol for w in written.values()), written
assert all(s.parquet_rows == s.rows for w in written.values() for s in w.summary.per_symbol.values())
session.stop()
"""


@pytest.mark.slow
def test_a_spark_connect_session_writes_the_same_parquet(standin, tmp_path, spark, spark_connect_server):
    """The same write through a Spark Connect client (its own process: pyspark switches a process to Connect)."""
    local, remote = (funding_layout(standin, tmp_path / name, UM) for name in ("local", "connect"))
    fetch(standin, local, ["2025-02", "2025-03"])
    write(spark, local, ["2025-02", "2025-03"])
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("SPARK_REMOTE", None)
    done = subprocess.run([sys.executable, "-c", _CONNECT_RUN, standin.data_url, standin.listing_url, standin.api_url,
                           str(tmp_path / "connect"), spark_connect_server.url], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert parquet(spark, remote) == parquet(spark, local)
    assert len(parquet(spark, local)) >= 10


def test_an_archive_that_does_not_parse_fails_its_month_naming_file_and_line(standin, tmp_path, spark):
    layout = funding_layout(standin, tmp_path, UM)
    feb, mar = Month(2025, 2), Month(2025, 3)
    standin.faults.hostile_zip("ETHUSDT", FUNDING, "2025-02", "wrong_fields", futures="um")  # its CHECKSUM matches
    fetched = fetch(standin, layout, ["2025-02", "2025-03"])
    assert fetched.counts(feb)["failed"] == 0  # a readable zip, verified: only parsing tells
    written = write(spark, layout, ["2025-02", "2025-03"])
    assert written[feb].error.startswith("2025-02: ETHUSDT-fundingRate-2025-02.csv line 3: 2 fields in ")
    assert not layout.parquet_dir(feb).exists()  # left as it was (nothing), the other month written
    assert written[mar].error is None and written[mar].rows > 0 and layout.parquet_dir(mar).is_dir()
    assert not quality.funding_not_written("counts_match_archives", written[feb].error).passed
