"""raw_monthly_klines + normalized_csv against the stand-in: ground truth, faults, incrementality, daily months."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.universe import pair_universe
from crypto_assets.binance.client import BinanceClient
from crypto_assets.lake.raw import fetch_months
from crypto_assets.layout import Layout
from crypto_assets.months import Month, format_utc
from crypto_assets.resources import BinanceResource
from crypto_assets_tests.conftest import make_resources, run_assets

ROOT = Path(__file__).parent.parent
INGEST = [raw_monthly_klines, normalized_csv]


@pytest.fixture
def lake(standin, tmp_path):
    resources = make_resources(standin, tmp_path)
    run_assets([pair_universe], resources)
    return resources


def manifest(tmp_path, month: str) -> dict:
    return json.loads(Layout.at(tmp_path, "4h").raw_manifest(Month.parse(month)).read_text())["pairs"]


def csv_rows(tmp_path, month: str, symbol: str) -> list[dict]:
    """The rows of a pair's normalized gzip CSV, as a gzip reader sees them (its members read as one CSV)."""
    with gzip.open(Layout.at(tmp_path, "4h").csv_file(Month.parse(month), symbol), "rt", newline="") as f:
        return list(csv.DictReader(f))


def ms(open_time: str) -> int:
    """An archive's open time in milliseconds: Binance writes microseconds (16 digits) from 2025 on."""
    return int(open_time) // 1000 if len(open_time) == 16 else int(open_time)


def assert_matches_ground_truth(market, tmp_path, months, universe_symbols):
    for month in months:
        pairs = manifest(tmp_path, month)
        for symbol in universe_symbols:
            truth = market.expected(symbol, "4h", month)
            if truth["rows"] == 0:
                assert pairs[symbol]["status"] == "absent", (month, symbol)
                assert not Layout.at(tmp_path, "4h").csv_file(Month.parse(month), symbol).exists()
                continue
            assert pairs[symbol]["status"] == "ok", (month, symbol, pairs[symbol])
            rows = csv_rows(tmp_path, month, symbol)
            times = [ms(r["open_time"]) for r in rows]
            assert len(rows) == truth["rows"] + truth["duplicates"] + truth["malformed"], (month, symbol)
            # counted once, when the download was verified; what parquet_candles must account for
            assert sum(f["data_lines"] for f in pairs[symbol]["files"]) == len(rows), (month, symbol)
            assert set(times) >= set(truth["open_times"]), (month, symbol)
            assert (times[0], times[-1]) == (truth["first_open_time"], truth["last_open_time"]), (month, symbol)
            assert times == sorted(times)


def universe_symbols(tmp_path) -> list[str]:
    return [p["symbol"] for p in json.loads(Layout.at(tmp_path, "4h").universe_file.read_text())["pairs"]]


def test_months_with_listings_delistings_gaps_and_both_units(standin, market, lake, tmp_path):
    months = ["2024-12", "2025-01", "2025-02", "2025-03"]  # ms -> µs switch, ETH gap, a delisting mid-March
    result = run_assets(INGEST, lake, months)
    assert result.success
    symbols = universe_symbols(tmp_path)
    assert_matches_ground_truth(market, tmp_path, months, symbols)
    # Binance's rows as published: microseconds from 2025 on, milliseconds before (parquet_candles unifies them).
    assert csv_rows(tmp_path, "2025-01", "BTCUSDT")[0]["open_time"] == "1735689600000000"
    assert csv_rows(tmp_path, "2024-12", "BTCUSDT")[0]["open_time"] == "1733011200000"
    statuses = {p["status"] for p in manifest(tmp_path, "2025-03").values()}
    assert statuses == {"ok", "absent"}
    # per-month metadata, as ints the UI can plot
    mats = {m.partition: m.metadata for m in result.asset_materializations_for_node("normalized_csv")}
    assert set(mats) == set(months)
    truth = sum(market.expected(s, "4h", "2025-02")["rows"] for s in symbols)
    assert mats["2025-02"]["rows"].value == truth


def test_listed_mid_month_pair_starts_at_its_first_candle(standin, market, lake, tmp_path):
    run_assets(INGEST, lake, ["2025-04", "2025-05"])
    rows = csv_rows(tmp_path, "2025-05", "SYRUPUSDT")
    listed = market.expected("SYRUPUSDT", "4h", "2025-05")["first_open_time"]
    assert ms(rows[0]["open_time"]) == listed
    assert format_utc(listed) == market.pair("SYRUPUSDT").listed + " 00:00:00"
    assert manifest(tmp_path, "2025-04")["SYRUPUSDT"]["status"] == "absent"


def test_faults_lose_nothing_and_bad_archives_fail_by_name(standin, market, lake, tmp_path):
    standin.faults.fail_once(0.2, status=503)
    standin.faults.rate_limit_once(0.1, retry_after=1)
    standin.faults.reset_once(0.3)  # of ~15 zips: 5% picked none
    standin.faults.checksum_mismatch("ETHUSDT", "4h", "2025-02")
    standin.faults.corrupt_zip("SOLUSDT", "4h", "2025-02")
    result = run_assets(INGEST, lake, ["2025-02"], raise_on_error=False)
    by_path = standin.stats()["by_path"]
    fired = standin.faults.fired()
    assert [(action, status) for action, status, _ in fired] == [("fail", 503), ("rate_limit", 429), ("reset", 503)]
    for action, _, paths in fired:  # each fault fired, and each path it hit was asked again and answered
        assert paths, f"the {action} fault never fired"
        for target in paths:
            assert by_path[target] >= 2, (action, target, by_path.get(target))
    assert not result.success
    message = result.failure_data_for_node("raw_monthly_klines").error.message
    assert "archives_verified [2025-02]" in message and "ETHUSDT" in message and "SOLUSDT" in message
    pairs = manifest(tmp_path, "2025-02")
    assert pairs["ETHUSDT"]["status"] == pairs["SOLUSDT"]["status"] == "failed"
    assert "CHECKSUM" in pairs["ETHUSDT"]["error"] and "SOLUSDT-4h-2025-02.zip" in pairs["SOLUSDT"]["error"]
    good = [s for s in universe_symbols(tmp_path) if s not in ("ETHUSDT", "SOLUSDT")]
    for symbol in good:
        assert pairs[symbol]["status"] == ("ok" if market.expected(symbol, "4h", "2025-02")["rows"] else "absent")
    raw_dir = Layout.at(tmp_path, "4h").raw_dir(Month.parse("2025-02"))
    assert not list(raw_dir.glob(".*part")) and not (raw_dir / "ETHUSDT-4h-2025-02.zip").exists()
    checks = {(c.check_name, c.partition): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("archives_verified", "2025-02")] is False
    # Once Binance fixes the files, a re-run fetches only what is missing.
    standin.faults.clear()
    standin.reset_stats()
    assert run_assets(INGEST, lake, ["2025-02"]).success
    stats = standin.stats()
    assert stats["by_kind"]["zip"] == 2  # ETHUSDT and SOLUSDT, nothing else
    assert_matches_ground_truth(market, tmp_path, ["2025-02"], universe_symbols(tmp_path))


def test_second_run_downloads_zero_archive_bytes(standin, lake, tmp_path):
    run_assets(INGEST, lake, ["2025-01", "2025-02"])
    csv_before = {p: p.stat().st_mtime_ns for p in (tmp_path / "csv").rglob("*.csv.gz")}
    standin.reset_stats()
    result = run_assets(INGEST, lake, ["2025-01", "2025-02"])
    assert standin.stats()["zip_bytes"] == 0 and standin.stats()["by_kind"]["zip"] == 0
    meta = {m.partition: m.metadata for m in result.asset_materializations_for_node("raw_monthly_klines")}
    assert meta["2025-01"]["bytes_downloaded"].value == 0 and meta["2025-01"]["files_skipped_cached"].value > 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "csv").rglob("*.csv.gz")} == csv_before  # nothing rebuilt
    assert len(csv_before) > 2  # ... of what the first run wrote


def test_a_republished_archive_is_downloaded_again(standin, market, lake, tmp_path):
    run_assets(INGEST, lake, ["2025-02"])
    before = manifest(tmp_path, "2025-02")["BTCUSDT"]["files"][0]["sha256"]
    standin.replace_archive("BTCUSDT", "4h", "2025-02")
    standin.reset_stats()
    run_assets(INGEST, lake, ["2025-02"])
    assert standin.stats()["by_kind"]["zip"] == 1  # only the replaced archive
    after = manifest(tmp_path, "2025-02")["BTCUSDT"]["files"][0]["sha256"]
    assert after != before and csv_rows(tmp_path, "2025-02", "BTCUSDT")


def test_current_month_from_daily_archives_then_replaced_by_the_monthly(standin, market, lake, tmp_path):
    standin.publish_monthly("2025-11")
    standin.set_today("2025-12-20")
    run_assets(INGEST, lake, ["2025-12"])
    pairs = manifest(tmp_path, "2025-12")
    btc = pairs["BTCUSDT"]
    assert btc["status"] == "ok" and btc["source"] == "daily" and len(btc["files"]) == 19
    rows = csv_rows(tmp_path, "2025-12", "BTCUSDT")
    assert len(rows) == 19 * 6 and format_utc(ms(rows[-1]["open_time"])) == "2025-12-19 20:00:00"
    standin.publish_monthly("2025-12")
    standin.set_today("2026-01-10")
    run_assets(INGEST, lake, ["2025-12"])
    btc = manifest(tmp_path, "2025-12")["BTCUSDT"]
    assert btc["source"] == "monthly" and len(btc["files"]) == 1
    assert len(csv_rows(tmp_path, "2025-12", "BTCUSDT")) == market.expected("BTCUSDT", "4h", "2025-12")["rows"]
    raw_dir = Layout.at(tmp_path, "4h").raw_dir(Month.parse("2025-12"))
    assert not list(raw_dir.glob("BTCUSDT-4h-2025-12-*.zip"))  # the daily files were superseded


def test_single_run_backfill_of_three_months_is_one_run(standin, lake, tmp_path):
    from dagster import DagsterInstance

    instance = DagsterInstance.ephemeral()
    result = run_assets(INGEST, lake, ["2025-01", "2025-02", "2025-03"], instance=instance)
    assert result.success and len(instance.get_run_records()) == 1
    parts = {m.partition for m in result.asset_materializations_for_node("raw_monthly_klines")}
    assert parts == {"2025-01", "2025-02", "2025-03"}
    checks = {(c.check_name, c.partition) for c in result.get_asset_check_evaluations()}
    assert {("archives_verified", m) for m in parts} <= checks  # one check result per month


ZONES = ("UTC", "America/New_York", "Asia/Kolkata")  # no offset; DST (-5/-4); +5:30, a half-hour offset


def test_output_is_identical_in_every_time_zone(standin, tmp_path, spark):
    """The whole pipeline (dagster CLI, one process per zone, TZ set for it and its Spark JVM) gives the same CSV
    bytes and the same Parquet rows in UTC, New York and Kolkata; 2025-01 is µs in the archives and starts at
    local 2024-12-31 evening in New York, so a local-time slip moves rows across the month boundary."""
    symbols = "BTCUSDT,ETHUSDT,KMDUSDT"
    cli = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "crypto_assets.definitions"]
    for zone in ZONES:
        env = {**os.environ, **standin.env(), "TZ": zone, "CRYPTO_DATA_DIR": str(tmp_path / zone),
               "CRYPTO_SYMBOLS": symbols, "CRYPTO_PAIR_MODE": "symbols", "SPARK_MASTER": "local[1]",
               "CRYPTO_START_MONTH": "2024-12", "CRYPTO_END_MONTH": "2025-02"}  # fmt: skip
        env.pop("DAGSTER_HOME", None)
        steps = [["--select", "raw_monthly_klines,normalized_csv,parquet_candles", "--partition", "2025-01"]]
        if zone == ZONES[0]:
            steps.insert(0, ["--select", "pair_universe"])
        else:  # the universe holds no time (but when it was written): one process less per zone
            shutil.copytree(tmp_path / ZONES[0] / "universe", tmp_path / zone / "universe")
        for select in steps:
            done = subprocess.run([*cli, *select], env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
            assert done.returncode == 0, (zone, select, done.stderr[-3000:])
    csvs = {z: {p.name: p.read_bytes() for p in (tmp_path / z / "csv/spot/4h/2025-01").glob("*.csv.gz")} for z in ZONES}
    assert sorted(csvs["UTC"]) == ["BTCUSDT.csv.gz", "ETHUSDT.csv.gz", "KMDUSDT.csv.gz"]
    assert csvs["America/New_York"] == csvs["UTC"] and csvs["Asia/Kolkata"] == csvs["UTC"]
    first = gzip.decompress(csvs["UTC"]["BTCUSDT.csv.gz"]).splitlines()[1].split(b",")[0]
    assert first == b"1735689600000000"  # as Binance publishes it: µs

    from pyspark.sql import functions as F

    def rows(zone: str) -> list[tuple]:
        frame = spark.read.parquet(str(tmp_path / zone / "parquet/spot/klines/4h"))
        frame = frame.withColumn("timestamp", F.unix_millis("timestamp"))  # an instant, whatever the session zone
        return sorted(tuple(r) for r in frame.collect())

    utc = rows("UTC")
    assert len(utc) == sum(len(gzip.decompress(c).splitlines()) - 1 for c in csvs["UTC"].values())
    assert min(r[0] for r in utc) == 1735689600000 and {(r[-2], r[-1]) for r in utc} == {(2025, 1)}
    assert rows("America/New_York") == utc and rows("Asia/Kolkata") == utc


def test_a_hostile_listing_never_writes_outside_the_data_dir(standin, tmp_path):
    hostile = {"../../etc", "btcusdt", "BTC-USDT", "x", "..%2F..%2Fetc"}
    standin.faults.evil_listing(sorted(hostile))
    lake = tmp_path / "a" / "b" / "c" / "d" / "lake"  # a name climbing up to five folders still lands in tmp_path
    resources = make_resources(standin, lake)
    run_assets([pair_universe], resources)
    payload = json.loads(Layout.at(lake, "4h").universe_file.read_text())
    symbols = {p["symbol"] for p in payload["pairs"]}
    assert not symbols & hostile and "BTCUSDT" in symbols
    assert {"../../etc", "btcusdt", "BTC-USDT", "x"} <= set(payload["rejected"])
    run_assets(INGEST, resources, ["2025-01"])
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()}
    outside = [p for p in written if not p.is_relative_to(lake.resolve())]
    assert outside == [] and len(written) > 10  # the month was written, all of it inside the lake
    assert not set(json.loads(Layout.at(lake, "4h").raw_manifest(Month(2025, 1)).read_text())["pairs"]) & hostile


RAW = [raw_monthly_klines]
TWO_MONTHS = ["2025-02", "2025-03"]  # ETH gap, KMD delisted mid-March, SYRUP not listed yet (daily path, absent)


def raw_manifests(tmp_path, months) -> dict[str, str]:
    return {m: Layout.at(tmp_path, "4h").raw_manifest(Month.parse(m)).read_text() for m in months}


def archive_requests(standin) -> dict[str, int]:
    """Requests per archive or CHECKSUM path since the last reset (listings left out)."""
    return {p: n for p, n in standin.stats()["by_path"].items() if p.startswith("/data/")}


def test_warm_raw_run_lists_each_pair_once_and_fetches_no_checksum(standin, market, lake, tmp_path):
    symbols = universe_symbols(tmp_path)
    present = [(s, m) for s in symbols for m in TWO_MONTHS if market.is_published(s, "4h", m)]
    absent = len(symbols) * len(TWO_MONTHS) - len(present)
    assert present and absent  # both paths are exercised
    standin.reset_stats()
    assert run_assets(RAW, lake, TWO_MONTHS).success
    cold = standin.stats()["by_kind"]
    # Cold: pairs never seen are not listed; one CHECKSUM per pair-month and one daily listing per absent one.
    assert (cold["checksum"], cold["zip"], cold["listing"]) == (len(symbols) * len(TWO_MONTHS), len(present), absent)
    before = raw_manifests(tmp_path, TWO_MONTHS)
    assert all(f["checksum_etag"] for e in manifest(tmp_path, "2025-02").values() for f in e["files"])

    standin.reset_stats()
    result = run_assets(RAW, lake, TWO_MONTHS)
    warm = standin.stats()["by_kind"]
    # Warm: one listing per pair (one page: 2 months = 4 keys). The absent pair-months ended long ago: final since
    # the cold run, they are not looked for in the daily folder again.
    assert all(e["final"] for m in TWO_MONTHS for e in manifest(tmp_path, m).values() if e["status"] == "absent")
    assert (warm["checksum"], warm["zip"], warm["listing"]) == (0, 0, len(symbols))
    assert standin.stats()["requests"] == len(symbols)
    assert raw_manifests(tmp_path, TWO_MONTHS) == before
    meta = {m.partition: m.metadata for m in result.asset_materializations_for_node("raw_monthly_klines")}
    assert sum(meta[m]["checksums_unchanged"].value for m in TWO_MONTHS) == len(present)
    assert sum(meta[m]["absences_known"].value for m in TWO_MONTHS) == absent
    assert sum(meta[m]["requests"].value for m in TWO_MONTHS) == len(symbols)

    # Binance republishes one archive: its CHECKSUM's ETag changes; only that CHECKSUM and that zip are fetched.
    standin.replace_archive("BTCUSDT", "4h", "2025-03")
    standin.reset_stats()
    assert run_assets(RAW, lake, TWO_MONTHS).success
    path = "/data/spot/monthly/klines/BTCUSDT/4h/BTCUSDT-4h-2025-03.zip"
    assert archive_requests(standin) == {path: 1, path + ".CHECKSUM": 1}
    assert standin.stats()["by_kind"]["listing"] == len(symbols)
    after = manifest(tmp_path, "2025-03")
    old = json.loads(before["2025-03"])["pairs"]
    assert after["BTCUSDT"]["files"][0]["sha256"] != old["BTCUSDT"]["files"][0]["sha256"]
    assert after["BTCUSDT"]["files"][0]["sha256"] == market.archive_digest("BTCUSDT", "4h", "2025-03")[0]
    assert {s: e for s, e in after.items() if s != "BTCUSDT"} == {s: e for s, e in old.items() if s != "BTCUSDT"}
    assert raw_manifests(tmp_path, ["2025-02"]) == {"2025-02": before["2025-02"]}
    standin.reset_stats()
    run_assets(RAW, lake, TWO_MONTHS)
    assert archive_requests(standin) == {}  # the new ETag is recorded


def test_manifests_without_checksum_etags_fetch_each_checksum_once_then_not(standin, market, lake, tmp_path):
    assert run_assets(RAW, lake, TWO_MONTHS).success
    for month in TWO_MONTHS:  # as older code wrote them
        path = Layout.at(tmp_path, "4h").raw_manifest(Month.parse(month))
        payload = json.loads(path.read_text())
        for entry in payload["pairs"].values():
            for file in entry["files"]:
                del file["checksum_etag"]
        path.write_text(json.dumps(payload))
    present = sum(e["status"] == "ok" for m in TWO_MONTHS for e in manifest(tmp_path, m).values())
    standin.reset_stats()
    assert run_assets(RAW, lake, TWO_MONTHS).success
    assert (standin.stats()["by_kind"]["checksum"], standin.stats()["by_kind"]["zip"]) == (present, 0)
    standin.reset_stats()
    assert run_assets(RAW, lake, TWO_MONTHS).success
    assert (standin.stats()["by_kind"]["checksum"], standin.stats()["by_kind"]["zip"]) == (0, 0)


def test_a_failed_pair_listing_is_not_taken_for_absent_archives(standin, market, lake, tmp_path):
    assert run_assets(RAW, lake, TWO_MONTHS).success
    before = raw_manifests(tmp_path, TWO_MONTHS)
    layout = Layout.at(tmp_path, "4h")
    layout.raw_file(Month.parse("2025-02"), "ETHUSDT-4h-2025-02.zip").unlink()  # lost locally, listing fails
    layout.raw_file(Month.parse("2025-03"), "SOLUSDT-4h-2025-03.zip").unlink()  # lost locally, listing works
    standin.faults.always("prefix=data%2Fspot%2Fmonthly%2Fklines%2FBTCUSDT", status=403)  # no retry: fails at once
    standin.faults.always("prefix=data%2Fspot%2Fmonthly%2Fklines%2FETHUSDT", status=403)
    standin.reset_stats()
    result = run_assets(RAW, lake, TWO_MONTHS)
    assert result.success
    assert raw_manifests(tmp_path, TWO_MONTHS) == before  # still "ok", nothing called absent
    eth = "/data/spot/monthly/klines/ETHUSDT/4h/ETHUSDT-4h-2025-0"
    btc = "/data/spot/monthly/klines/BTCUSDT/4h/BTCUSDT-4h-2025-0"
    assert archive_requests(standin) == {
        btc + "2.zip.CHECKSUM": 1, btc + "3.zip.CHECKSUM": 1,  # per-file path for the pairs whose listing failed
        eth + "2.zip.CHECKSUM": 1, eth + "3.zip.CHECKSUM": 1, eth + "2.zip": 1,
        "/data/spot/monthly/klines/SOLUSDT/4h/SOLUSDT-4h-2025-03.zip": 1,  # its CHECKSUM is unchanged: no GET
    }  # fmt: skip
    meta = {m.partition: m.metadata for m in result.asset_materializations_for_node("raw_monthly_klines")}
    assert sum(meta[m]["listings_failed"].value for m in TWO_MONTHS) == 2


def test_an_absence_is_final_once_a_later_month_is_published_or_the_month_is_long_over(standin, market, lake,
                                                                                       tmp_path):  # fmt: skip
    """SYRUPUSDT is listed on 2025-05-14: April has no archive, and once a run has seen May's monthly archive, April
    was over. The pairs absent in both months (delisted long ago) are final once April ended PUBLICATION_GRACE_DAYS
    ago (a pair's daily files are out the next day, its monthly archive by mid-month). A final absence is not looked
    for in the daily folder again, only in the pair's monthly listing (fetched anyway) - until Binance does publish
    an April archive."""
    months = ["2025-04", "2025-05"]
    layout, client = Layout.at(tmp_path, "4h"), BinanceClient(standin.data_url, standin.listing_url, standin.api_url)
    symbols = universe_symbols(tmp_path)

    def daily_listings() -> dict[str, int]:
        return {p: n for p, n in standin.stats()["listing_prefixes"].items() if "/daily/" in p and "-2025-04-" in p}

    def fetch_on(day: date) -> None:
        standin.reset_stats()
        fetch_months(client, layout, [Month.parse(m) for m in months], symbols, workers=8, today=day)

    fetch_on(date(2025, 5, 10))  # April ended 9 days ago
    april = manifest(tmp_path, "2025-04")
    assert any("SYRUPUSDT-4h-2025-04-" in p for p in daily_listings())  # cold: looked for days
    assert april["SYRUPUSDT"] == {"status": "absent", "source": None, "files": [], "error": None, "final": True}
    never = [s for s, e in april.items() if e["status"] == "absent" and not e.get("final")]
    assert never and "SYRUPUSDT" not in never  # absent in both months, April ended lately: not final yet

    fetch_on(date(2025, 5, 20))  # April ended 19 days ago: the others are looked for again, and still not final
    listed = daily_listings()
    assert not any("SYRUPUSDT" in p for p in listed)  # final: no daily listing
    assert len(listed) == len(never) and all(n == 1 for n in listed.values())
    assert manifest(tmp_path, "2025-04") == april

    fetch_on(date(2025, 5, 21))  # 20 days: looked for one last time, then final
    assert len(daily_listings()) == len(never)
    april = manifest(tmp_path, "2025-04")
    assert all(april[s]["final"] for s in never)

    standin.reset_stats()
    result = run_assets(RAW, lake, months)  # a run of the assets (today: the real date)
    assert daily_listings() == {}
    meta = {m.partition: m.metadata for m in result.asset_materializations_for_node("raw_monthly_klines")}
    # KMDUSDT, delisted in March, is in ``never``: its listing shows no key of these months (taken as no usable
    # listing), so it is asked for its monthly CHECKSUM: a 404, still absent, and no daily listing.
    assert "KMDUSDT" in never and meta["2025-04"]["absences_known"].value == len(never)
    assert archive_requests(standin)["/data/spot/monthly/klines/KMDUSDT/4h/KMDUSDT-4h-2025-04.zip.CHECKSUM"] == 1
    assert manifest(tmp_path, "2025-04") == april

    # Binance publishes an April archive after all (the pair turns out listed earlier): the listing shows it.
    market.pair("SYRUPUSDT").listed = "2025-04-20"
    standin.reset_stats()
    assert run_assets(RAW, lake, months).success
    assert manifest(tmp_path, "2025-04")["SYRUPUSDT"]["status"] == "ok"
    assert manifest(tmp_path, "2025-04")["SYRUPUSDT"]["source"] == "monthly"


def test_a_cached_archive_damaged_or_deleted_on_disk_is_downloaded_again(standin, market, lake, tmp_path):
    assert run_assets(RAW, lake, ["2025-02"]).success
    layout = Layout.at(tmp_path, "4h")
    damaged, deleted = (layout.raw_file(Month(2025, 2), f"{s}-4h-2025-02.zip") for s in ("BTCUSDT", "ETHUSDT"))
    damaged.write_bytes(b"\0" * damaged.stat().st_size)  # same size, other bytes
    deleted.unlink()
    standin.reset_stats()
    assert run_assets(RAW, lake, ["2025-02"]).success
    # The listing still shows both CHECKSUMs unchanged (no CHECKSUM GET); the re-hash finds the files wrong.
    requests = archive_requests(standin)
    wanted = {f"/data/spot/monthly/klines/{s}/4h/{s}-4h-2025-02.zip" for s in ("BTCUSDT", "ETHUSDT")}
    assert {p for p in requests if p.endswith(".zip")} == wanted
    assert not {p + ".CHECKSUM" for p in wanted} & set(requests)
    for symbol, path in (("BTCUSDT", damaged), ("ETHUSDT", deleted)):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == market.archive_digest(symbol, "4h", "2025-02")[0]


def test_warm_fetch_reports_progress_from_one_thread_and_rewrites_no_manifest(standin, lake, tmp_path):
    layout, months = Layout.at(tmp_path, "4h"), [Month(2025, 1), Month(2025, 2)]
    client = BinanceClient(standin.data_url, standin.listing_url, standin.api_url, pool_size=8)
    symbols = universe_symbols(tmp_path)
    entries, _ = fetch_months(client, layout, months, symbols, workers=8)
    assert sum(e.status == "ok" for m in months for e in entries[m].values()) > 1
    manifests = {m: layout.raw_manifest(m).stat().st_mtime_ns for m in months}
    progress, threads = [], set()

    def record(done, total):
        threads.add(threading.get_ident())
        progress.append((done, total))

    fetch_months(client, layout, months, symbols, workers=8, progress=record)
    total = len(symbols) * len(months)
    assert progress[-1] == (total, total) and len(set(progress)) == len(progress)  # ends at total, no repeats
    assert threads == {threading.get_ident()}  # the caller's thread (where Dagster's logger is safe to use)
    assert {m: layout.raw_manifest(m).stat().st_mtime_ns for m in months} == manifests  # unchanged: not rewritten


def _failure(result, node="raw_monthly_klines") -> str:
    assert not result.success
    return result.failure_data_for_node(node).error.message


def test_a_wrong_archive_url_fails_every_month_naming_the_url_and_archives_that_exist(standin, market, tmp_path):
    """BINANCE_DATA_URL points where every archive answers 404 (a typo), the listing URL is right: the listing shows
    the archives, so they failed - cold (the daily listing shows the days) and warm (the pair listing shows them;
    a month verified on disk whose CHECKSUMs the listing shows unchanged needs the archive host not at all)."""
    good = make_resources(standin, tmp_path / "good")
    run_assets([pair_universe], good)
    shutil.copytree(tmp_path / "good" / "universe", tmp_path / "cold" / "universe")
    assert run_assets(INGEST, good, TWO_MONTHS[:1]).success
    csvs_before = {p: p.read_bytes() for p in (tmp_path / "good" / "csv").rglob("*.csv.gz")}
    runs = (
        ("cold", tmp_path / "cold", TWO_MONTHS, "daily", "-01"),
        ("warm", tmp_path / "good", TWO_MONTHS[1:], "monthly", ""),
    )
    for name, lake, failing, frequency, day in runs:
        bad = {**make_resources(standin, lake), "binance": _typo_binance(standin)}
        message = _failure(run_assets(INGEST, bad, TWO_MONTHS, raise_on_error=False))
        assert [m for m in TWO_MONTHS if f"archives_verified [{m}]" in message] == failing, (name, message)
        assert f"ALPACAUSDT-4h-{failing[0]}{day}.zip is in the bucket listing ({standin.listing_url})" in message
        url = f"{standin.data_url}/typo/data/spot/{frequency}/klines/ALPACAUSDT/4h/ALPACAUSDT-4h-{failing[0]}{day}.zip"
        assert f"GET {url}.CHECKSUM answered 404; check BINANCE_DATA_URL" in message
        for month in failing:
            for symbol, entry in manifest(lake, month).items():
                traded = market.expected(symbol, "4h", month)["rows"] > 0
                assert entry["status"] == ("failed" if traded else "absent"), (name, month, symbol, entry)
    assert not (tmp_path / "cold" / "csv").exists()  # normalized_csv never ran on the empty months
    assert {p: p.read_bytes() for p in (tmp_path / "good" / "csv").rglob("*.csv.gz")} == csvs_before and csvs_before
    assert {e["status"] for e in manifest(tmp_path / "good", TWO_MONTHS[0]).values()} == {"ok", "absent"}


def _typo_binance(standin) -> BinanceResource:
    """The archive host URL with a typo (every archive answers 404); the listing and API URLs are right."""
    return BinanceResource(data_url=standin.data_url + "/typo", listing_url=standin.listing_url,
                           api_url=standin.api_url, download_workers=8)  # fmt: skip


def _weekly(standin, market, tmp_path, symbols):
    market.listing_intervals = (*market.listing_intervals, "1w")
    lake = make_resources(standin, tmp_path, interval="1w", pair_mode="symbols", symbols=symbols)
    run_assets([pair_universe], lake)
    return lake


def test_a_month_all_absent_is_confirmed_by_the_listing_or_fails(standin, market, tmp_path):
    """1w has no daily archives: a wrong URL makes every pair absent. The listing of a few pairs shows their
    archives: they failed. When that listing cannot be read the whole month fails; when it agrees, absent stays."""
    lake = _weekly(standin, market, tmp_path / "a", ["BTCUSDT", "ETHUSDT"])
    lake["binance"] = _typo_binance(standin)
    message = _failure(run_assets(RAW, lake, ["2025-01"], raise_on_error=False))
    assert "BTCUSDT-1w-2025-01.zip is in the bucket listing" in message and "check BINANCE_DATA_URL" in message
    assert {e["status"] for e in json.loads((tmp_path / "a/raw/spot/1w/2025-01/_manifest.json").read_text())[
        "pairs"].values()} == {"failed"}  # fmt: skip

    standin.faults.always("/bucket", 403)  # the listing is unavailable too
    message = _failure(run_assets(RAW, lake, ["2025-02"], raise_on_error=False))
    assert "every one of the 2 pairs came back absent (404) for 2025-02" in message
    assert "bucket listing that could confirm it failed" in message and "HTTP 403" in message
    assert f"{standin.data_url}/typo/data/spot/monthly/klines/BTCUSDT/1w/BTCUSDT-1w-2025-02.zip" in message
    standin.faults.clear()

    lake = _weekly(standin, market, tmp_path / "b", ["SYRUPUSDT"])  # listed 2025-05-14: nothing in April
    standin.reset_stats()
    assert run_assets(RAW, lake, ["2025-04"]).success
    assert json.loads((tmp_path / "b/raw/spot/1w/2025-04/_manifest.json").read_text())["pairs"]["SYRUPUSDT"][
        "status"] == "absent"  # fmt: skip
    assert any("SYRUPUSDT-1w-2025-04" in p for p in standin.stats()["listing_prefixes"])  # it was confirmed


def _quick_binance(standin, **kw) -> BinanceResource:
    """The stand-in with two retries, short backoff and a 1 s read timeout, so persistent failures end quickly."""
    return BinanceResource(data_url=standin.data_url, listing_url=standin.listing_url, api_url=standin.api_url,
                           download_workers=8, retries=2, backoff=0.01, read_timeout=1.0, **kw)  # fmt: skip


# (symbol, what is wrong with its 2025-02 archive, what the month's error must say about it)
HOSTILE_RAW = [
    ("BTCUSDT", "zip:no_member", "BTCUSDT-4h-2025-02.zip holds []; expected exactly one member"),
    ("ETHUSDT", "zip:two_members", "BTCUSDT-4h-2025-02.zip holds [".replace("BTC", "ETH")),
    ("BNBUSDT", "zip:other_name", "BNBUSDT-4h-2025-02.zip holds ['klines.csv']; expected exactly one member named"),
    ("SOLUSDT", "zip:bomb", "SOLUSDT-4h-2025-02.zip: member SOLUSDT-4h-2025-02.csv claims 67108864 bytes"),
    ("XRPUSDT", "zip:empty_csv", "XRPUSDT-4h-2025-02.zip holds an empty CSV; expected at least one kline row"),
    ("DOGEUSDT", "checksum:malformed", "CHECKSUM of DOGEUSDT-4h-2025-02.zip reads"),
    ("USDCUSDT", "checksum:other_name", "CHECKSUM of USDCUSDT-4h-2025-02.zip names 'USDCUSDT-4h-2025-03.zip'"),
    ("PAXGUSDT", "http:503", "PAXGUSDT/4h/PAXGUSDT-4h-2025-02.zip answered HTTP 503 after retries"),
    ("FETUSDT", "http:418", "FETUSDT/4h/FETUSDT-4h-2025-02.zip answered HTTP 418 after retries"),
    ("AXSUSDT", "stall", "AXSUSDT/4h/AXSUSDT-4h-2025-02.zip failed after its retries"),
]


def test_hostile_archives_and_persistent_failures_fail_their_month_by_name_the_rest_lands(standin, market, tmp_path):
    lake = {**make_resources(standin, tmp_path), "binance": _quick_binance(standin)}
    run_assets([pair_universe], lake)
    for symbol, fault, _ in HOSTILE_RAW:
        kind, _, what = fault.partition(":")
        if kind == "zip":
            standin.faults.hostile_zip(symbol, "4h", "2025-02", what)
        elif kind == "checksum":
            standin.faults.hostile_checksum(symbol, "4h", "2025-02", what)
        elif kind == "http":
            standin.faults.always(f"{symbol}-4h-2025-02.zip", int(what), kinds=("zip",))  # its CHECKSUM answers
        else:
            standin.faults.stall(f"{symbol}-4h-2025-02.zip", 2.5, kinds=("zip",))  # past the 1 s read timeout
    months = ["2025-02", "2025-03"]
    message = _failure(run_assets(INGEST, lake, months, raise_on_error=False))
    assert "archives_verified [2025-02]" in message and "archives_verified [2025-03]" not in message, message
    pairs = manifest(tmp_path, "2025-02")
    for symbol, fault, said in HOSTILE_RAW:
        assert pairs[symbol]["status"] == "failed", (symbol, pairs[symbol])
        assert said in pairs[symbol]["error"], (fault, pairs[symbol]["error"])
        assert not Layout.at(tmp_path, "4h").raw_file(Month(2025, 2), f"{symbol}-4h-2025-02.zip").exists()
    assert f"{HOSTILE_RAW[0][0]}: " in message  # the run's error quotes the first errors themselves
    # every fault fired: the stand-in answered each hostile archive, the persistent ones on every retry
    by_path = standin.stats()["by_path"]
    zip_path = "/data/spot/monthly/klines/{0}/4h/{0}-4h-2025-02.zip"
    for symbol in ("PAXGUSDT", "FETUSDT"):
        assert by_path[zip_path.format(symbol)] == 3, symbol  # first try + 2 retries
    for symbol in ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"):
        assert by_path[zip_path.format(symbol)] == 1, symbol  # refused after one download, not retried
    for symbol in ("DOGEUSDT", "USDCUSDT"):
        assert zip_path.format(symbol) not in by_path and by_path[zip_path.format(symbol) + ".CHECKSUM"] == 1
    # the rest of the run landed and stays: every other archive of both months, verified
    hostile = {s for s, _, _ in HOSTILE_RAW}
    for month in months:
        for symbol, entry in manifest(tmp_path, month).items():
            if month == "2025-02" and symbol in hostile:
                continue
            truth = market.archive_digest(symbol, "4h", month)
            assert entry["status"] == ("ok" if truth else "absent"), (month, symbol, entry)
            if truth:
                path = Layout.at(tmp_path, "4h").raw_file(Month.parse(month), f"{symbol}-4h-{month}.zip")
                assert hashlib.sha256(path.read_bytes()).hexdigest() == truth[0]


def test_unreadable_csvs_fail_their_month_with_file_and_row_and_other_months_are_written(standin, market, tmp_path,
                                                                                       spark_resource):
    lake = {**make_resources(standin, tmp_path), "binance": _quick_binance(standin)}
    run_assets([pair_universe], lake)
    standin.faults.hostile_zip("UNIUSDT", "4h", "2025-04", "non_ascii")
    standin.faults.hostile_zip("JUPUSDT", "4h", "2025-05", "wrong_fields")
    months = ["2025-04", "2025-05", "2025-06"]
    result = run_assets([*INGEST, parquet_candles], {**lake, "spark": spark_resource}, months, raise_on_error=False)
    message = _failure(result, "parquet_candles")
    assert "counts_match_csv [2025-04]" in message and "counts_match_csv [2025-05]" in message, message
    assert "[2025-06]" not in message
    assert "2025-04/UNIUSDT.csv.gz: row '" in message and "from UNIUSDT-4h-2025-04.zip" in message, message
    assert ",\u00e9" in message  # the row quoted as it is: an é where a number belongs
    assert "2025-05/JUPUSDT.csv.gz: row '" in message and "does not fit Binance's kline columns" in message, message
    for month in months:
        assert {e["status"] for e in manifest(tmp_path, month).values()} <= {"ok", "absent"}  # the archives stay
    written = {s for s in universe_symbols(tmp_path) if market.expected(s, "4h", "2025-06")["rows"]}
    layout = Layout.at(tmp_path, "4h")
    assert layout.parquet_dir(Month.parse("2025-06")).exists()  # the clean month is written
    assert not any(layout.parquet_dir(Month.parse(m)).exists() for m in ("2025-04", "2025-05"))
    mats = {m.partition: m.metadata for m in result.asset_materializations_for_node("parquet_candles")}
    assert mats["2025-06"]["symbols"].value == len(written)


def test_an_archive_on_disk_is_hashed_whole_whatever_its_size(tmp_path):
    """The re-hash of archives on disk reads a small one in one call and a large one (1s klines: hundreds of MB) in
    chunks: every size hashes to hashlib's digest of the whole file, and the size is the file's."""
    from crypto_assets.lake.raw import _HASH_CHUNK, _sha256_file

    for size in (0, 1, _HASH_CHUNK - 1, _HASH_CHUNK, _HASH_CHUNK + 1, 2 * _HASH_CHUNK + 3):
        path = tmp_path / f"{size}.zip"
        path.write_bytes(os.urandom(size))
        assert _sha256_file(path) == (hashlib.sha256(path.read_bytes()).hexdigest(), size)
