"""End to end through the real `dagster dev` (webserver + daemon), driven over GraphQL like the UI does.

The stand-in serves the market; the pipeline picks six pairs (a gap in ETHUSDT on 2025-02-12, KMDUSDT delisted on
2025-03-10, SYRUPUSDT not listed before 2025-05) for 2025-01..2025-03. pair_universe is materialized first, then one
asset backfill of the three monthly assets and dataset_report - which must run the months as ONE run - and every
figure is compared with the stand-in's ground truth: the Parquet files themselves (read back with Spark), the
report JSON, the per-month check results. Then two Spark runs are launched at once (the repo's dagster.yaml must
queue the second) and dagster dev is stopped with SIGINT in the middle of the first: nothing may be left running.
The tests run in file order and share one server. The last test runs `make demo`'s program and stops it with SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from crypto_assets.assets.klines import CSV_CHECKS, RAW_CHECKS
from crypto_assets.assets.parquet import PARQUET_CHECKS
from crypto_assets_tests.binance_standin import Market, StandIn
from crypto_assets_tests.dagster_dev import (
    BACKFILL_OK,
    REPO_ROOT,
    DagsterDev,
    DagsterGraphQL,
    _describe,
    alive,
    free_port,
    has_marker,
    pipeline_env,
    processes_with_env,
)

pytestmark = pytest.mark.e2e

MONTHS = ["2025-01", "2025-02", "2025-03"]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "KMDUSDT", "SYRUPUSDT"]
INTERVAL, INTERVAL_MS = "4h", 4 * 3_600_000
MONTHLY = ["raw_monthly_klines", "normalized_csv", "parquet_candles"]
GRAPH = {  # asset -> (group, upstream assets, checks, kinds it must have, pools)
    "pair_universe": ("ingestion", [], {"discovered_live"}, {"python"}, []),
    "raw_monthly_klines": ("ingestion", ["pair_universe"], set(RAW_CHECKS), {"python"}, []),
    "normalized_csv": ("ingestion", ["raw_monthly_klines"], set(CSV_CHECKS), {"python"}, []),
    "parquet_candles": ("warehouse", ["normalized_csv"], set(PARQUET_CHECKS), {"spark", "parquet"}, ["spark"]),
    "dataset_report": ("reporting", ["parquet_candles"], {"totals_match_months"}, {"spark"}, ["spark"]),
}
BLOCKING = {name for checks in (RAW_CHECKS, CSV_CHECKS, PARQUET_CHECKS) for name, (_, b) in checks.items() if b}
ACTIVE_RUN = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}


@dataclass
class UI:
    dev: DagsterDev
    market: Market
    data_dir: Path
    backfill_id: str = ""


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ui_e2e")
    market = Market.default()
    with StandIn(market, page_size=5) as standin:
        env = pipeline_env(standin.env(), workdir / "data", MONTHS, SYMBOLS)
        with DagsterDev(workdir, env) as dev:
            yield UI(dev, market, workdir / "data")


@pytest.fixture(scope="module")
def backfilled(ui: UI) -> UI:
    """pair_universe, then one backfill of the three monthly assets for MONTHS plus dataset_report."""
    run_id = ui.dev.launch_run(["pair_universe"])
    assert ui.dev.wait_run(run_id, timeout=180) == "SUCCESS", ui.dev.run_errors(run_id)
    ui.backfill_id = ui.dev.launch_backfill([*MONTHLY, "dataset_report"], MONTHS)
    status = ui.dev.wait_backfill(ui.backfill_id, timeout=480)
    if status not in BACKFILL_OK:
        errors = "\n".join(ui.dev.run_errors(r["runId"]) for r in backfill_runs(ui))
        pytest.fail(f"backfill {ui.backfill_id} ended {status}:\n{errors}\nlog tail:\n{ui.dev.log_tail()}")
    return ui


@pytest.fixture(scope="module")
def lake_spark(spark_resource):
    """The suite's SparkSession (shared with the other Spark tests, stopped by conftest at the end) to read back."""
    from crypto_assets.lake.spark import build_session, spark_conf

    return build_session(spark_conf("local[2]"))


def backfill_runs(ui: UI) -> list[dict]:
    return ui.dev.graphql(
        """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results {
             runId status startTime endTime tags { key value } assetSelection { path } } } } }""",
        {"tags": [{"key": "dagster/backfill", "value": ui.backfill_id}]},
    )["runsOrError"]["results"]


def materializations(ui: UI, asset: str) -> dict[str, dict]:
    """Latest materialization per month of ``asset``: partition -> {label: value} (int and bool entries)."""
    events = ui.dev.graphql(
        """query($key: AssetKeyInput!, $months: [String!]) { assetOrError(assetKey: $key) { ... on Asset {
             assetMaterializations(partitions: $months) { partition timestamp runId metadataEntries { label
               ... on IntMetadataEntry { intRepr } ... on BoolMetadataEntry { boolValue } } } } } }""",
        {"key": {"path": [asset]}, "months": MONTHS},
    )["assetOrError"]["assetMaterializations"]
    latest = {}
    for event in sorted(events, key=lambda e: int(e["timestamp"])):
        latest[event["partition"]] = {
            e["label"]: int(e["intRepr"]) if "intRepr" in e else e.get("boolValue") for e in event["metadataEntries"]
        } | {"__run": event["runId"]}
    return latest


def check_executions(ui: UI, asset: str, check: str, partition: str | None) -> list[dict]:
    return ui.dev.graphql(
        """query($key: AssetKeyInput!, $check: String!, $partition: String) {
             assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 10) {
               runId status partition evaluation { success partition severity description } } }""",
        {"key": {"path": [asset]}, "check": check, "partition": partition},
    )["assetCheckExecutions"]


def gaps(open_times: list[int]) -> list[tuple[int, int]]:
    """(first missing open time, missing candles) of every hole in a sorted series of open times."""
    return [(a + INTERVAL_MS, (b - a) // INTERVAL_MS - 1) for a, b in zip(open_times, open_times[1:])
            if b - a > INTERVAL_MS]  # fmt: skip


def truth_open_times(market: Market, months: list[str]) -> dict[str, list[int]]:
    """symbol -> every open time the stand-in serves for ``months`` (symbols without a candle left out)."""
    times = {s: [t for m in months for t in market.expected(s, INTERVAL, m)["open_times"]] for s in SYMBOLS}
    return {s: t for s, t in times.items() if t}


def utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))


# ---- the asset graph as the UI reads it -------------------------------------------------------------------------


def test_asset_graph_groups_checks_and_month_partitions(ui: UI):
    nodes = ui.dev.graphql(
        """{ assetNodes { assetKey { path } groupName description kinds pools isPartitioned partitionKeys
             dependencyKeys { path } backfillPolicy { policyType }
             metadataEntries { label __typename ... on CodeReferencesMetadataEntry {
               codeReferences { ... on LocalFileCodeReference { filePath lineNumber } } } }
             assetChecksOrError { ... on AssetChecks { checks { name blocking description partitionDefinition {
               name } } } } } }"""
    )["assetNodes"]
    graph = {n["assetKey"]["path"][-1]: n for n in nodes}
    assert sorted(graph) == sorted(GRAPH)
    for asset, (group, upstream, checks, kinds, pools) in GRAPH.items():
        node = graph[asset]
        assert node["groupName"] == group, asset
        assert [k["path"][-1] for k in node["dependencyKeys"]] == upstream, asset
        assert kinds <= set(node["kinds"]), (asset, node["kinds"])
        assert node["pools"] == pools, asset
        assert len(node["description"] or "") > 60, f"{asset} has no description a user can read"
        # with_source_code_references: the asset links to the file that defines it
        refs = [r for e in node["metadataEntries"] if e["__typename"] == "CodeReferencesMetadataEntry"
                for r in e["codeReferences"]]  # fmt: skip
        assert any(r.get("filePath", "").startswith(str(REPO_ROOT / "crypto_assets" / "assets")) for r in refs), asset
        attached = {c["name"]: c for c in node["assetChecksOrError"]["checks"]}
        assert set(attached) == checks, asset
        for name, check in attached.items():
            assert check["blocking"] == (name in BLOCKING), (asset, name)
            assert check["description"], (asset, name)
            # per-month checks are partitioned like their asset: one result per month, not one per asset
            assert (check["partitionDefinition"] is not None) == (asset in MONTHLY), (asset, name)
        assert node["isPartitioned"] == (asset in MONTHLY), asset
        if asset in MONTHLY:
            assert node["partitionKeys"] == MONTHS, asset  # CRYPTO_START_MONTH..CRYPTO_END_MONTH
            assert node["backfillPolicy"]["policyType"] == "SINGLE_RUN", asset
        else:
            assert node["partitionKeys"] == [], asset


def test_instance_runs_one_spark_run_at_a_time(ui: UI):
    """The repo's dagster.yaml, copied into DAGSTER_HOME as `make ui` does: pool limit 1, applied per run."""
    instance = ui.dev.graphql(
        """{ instance { poolConfig { poolGranularity defaultPoolLimit }
             runQueueConfig { maxConcurrentRuns } } }"""
    )["instance"]
    assert instance["poolConfig"] == {"poolGranularity": "run", "defaultPoolLimit": 1}
    assert instance["runQueueConfig"]["maxConcurrentRuns"] >= 2  # non-Spark runs may still run side by side


# ---- one backfill of the whole chain ----------------------------------------------------------------------------


def test_backfill_runs_the_months_as_one_run(backfilled: UI):
    runs = backfill_runs(backfilled)
    assert {r["status"] for r in runs} == {"SUCCESS"}
    monthly = [r for r in runs if {a["path"][-1] for a in r["assetSelection"]} & set(MONTHLY)]
    assert len(monthly) == 1, f"expected ONE run for the monthly assets, got {[r['runId'] for r in monthly]}"
    run = monthly[0]
    assert {a["path"][-1] for a in run["assetSelection"]} == set(MONTHLY)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        MONTHS[0], MONTHS[-1])  # fmt: skip
    # dataset_report is unpartitioned: the backfill runs it after the months, in its own run.
    assert len(runs) == 2, [r["assetSelection"] for r in runs]
    report = next(r for r in runs if r is not run)
    assert [a["path"][-1] for a in report["assetSelection"]] == ["dataset_report"]
    assert report["startTime"] >= run["endTime"]
    # every month of every monthly asset was materialized by that one run
    for asset in MONTHLY:
        latest = materializations(backfilled, asset)
        assert sorted(latest) == MONTHS, asset
        assert {m["__run"] for m in latest.values()} == {run["runId"]}, asset


def test_parquet_equals_the_ground_truth(backfilled: UI, lake_spark):
    """The Parquet files themselves, read back with Spark: exactly the stand-in's (symbol, open time) per month."""
    from pyspark.sql import functions as F

    market = backfilled.market
    root = backfilled.data_dir / "parquet" / "spot" / "klines" / INTERVAL
    assert sorted(p.name for p in (root / "year=2025").iterdir()) == ["month=1", "month=2", "month=3"]
    rows = lake_spark.read.parquet(str(root)).select(
        "symbol", F.unix_millis("timestamp").alias("t"), "year", "month"
    ).collect()  # fmt: skip
    csv, parquet = materializations(backfilled, "normalized_csv"), materializations(backfilled, "parquet_candles")
    for month in MONTHS:
        year, mon = int(month[:4]), int(month[5:])
        got = [(r["symbol"], r["t"]) for r in rows if (r["year"], r["month"]) == (year, mon)]
        truth = market.ground_truth(INTERVAL, [month], SYMBOLS)
        expected = {(s, t) for s, times in truth_open_times(market, [month]).items() for t in times}
        assert truth["rows"] > 0, month
        assert len(got) == len(set(got)), f"{month}: duplicate candles in the Parquet"
        assert set(got) == expected, (month, sorted(set(got) ^ expected)[:10])
        assert all(utc(t).startswith(f"{month}-") for _, t in got), month  # timestamps are UTC and in their month
        # what the UI shows per partition matches the files
        assert csv[month]["rows"] == parquet[month]["rows"] == parquet[month]["dagster/row_count"] == truth["rows"]
        assert parquet[month]["symbols"] == truth["symbols"], month


def test_report_equals_the_ground_truth(backfilled: UI):
    market = backfilled.market
    everything = market.ground_truth(INTERVAL, MONTHS, SYMBOLS)
    series = truth_open_times(market, MONTHS)
    folder = backfilled.data_dir / "reports" / "spot" / "klines" / INTERVAL
    report = json.loads((folder / "dataset_report.json").read_text())
    assert (folder / "dataset_report.md").stat().st_size > 0 and (folder / "coverage.png").stat().st_size > 0
    assert report["interval"] == INTERVAL
    assert report["total_rows"] == everything["rows"]
    assert report["symbols"] == everything["symbols"] == len(series)
    assert report["months"] == [
        {"month": m, "rows": t["rows"], "symbols": t["symbols"]}
        for m, t in ((m, market.ground_truth(INTERVAL, [m], SYMBOLS)) for m in MONTHS)
    ]
    assert report["duplicates"] == 0
    assert report["first_candle"] == utc(min(t[0] for t in series.values()))
    assert report["last_candle"] == utc(max(t[-1] for t in series.values()))
    assert sorted(report["per_symbol"]) == sorted(series)
    for symbol, times in series.items():
        figures = report["per_symbol"][symbol]
        truth = everything["per_symbol"][symbol]
        assert (figures["rows"], figures["first_open_time"], figures["last_open_time"]) == (
            truth["rows"], truth["first_open_time"], truth["last_open_time"]), symbol  # fmt: skip
        assert figures["months_present"] == len(truth["months"]), symbol
        assert figures["missing_candles"] == sum(n for _, n in gaps(times)), symbol
    expected_gaps = sorted((s, start, n) for s, times in series.items() for start, n in gaps(times))
    assert expected_gaps, "the stand-in's ETHUSDT maintenance gap should be in range"
    assert report["missing_candles"] == sum(n for *_, n in expected_gaps)
    assert sorted((g["symbol"], g["from_open_time"], g["missing_candles"]) for g in report["largest_gaps"]) == (
        expected_gaps)  # fmt: skip
    for g in report["largest_gaps"]:
        last_missing = g["from_open_time"] + (g["missing_candles"] - 1) * INTERVAL_MS
        assert (g["from"], g["to"]) == (utc(g["from_open_time"]), utc(last_missing)), g


def test_every_month_has_its_own_check_results(backfilled: UI):
    market = backfilled.market
    [run] = [r["runId"] for r in backfill_runs(backfilled) if {a["path"][-1] for a in r["assetSelection"]} != {
        "dataset_report"}]  # fmt: skip
    for asset, checks in [("raw_monthly_klines", RAW_CHECKS), ("normalized_csv", CSV_CHECKS),
                          ("parquet_candles", PARQUET_CHECKS)]:  # fmt: skip
        for check in checks:
            for month in MONTHS:
                executions = check_executions(backfilled, asset, check, month)
                # one result per month, all from the single backfill run
                assert [e["runId"] for e in executions] == [run], f"{asset}.{check} {month}: {executions}"
                latest = executions[0]
                assert latest["partition"] == latest["evaluation"]["partition"] == month
                has_gap = any(gaps(t) for t in truth_open_times(market, [month]).values())
                expect_pass = not (check == "complete_between_first_and_last" and has_gap)
                assert latest["evaluation"]["success"] is expect_pass, (asset, check, month, latest)
                assert latest["status"] == ("SUCCEEDED" if expect_pass else "FAILED"), (asset, check, month)
                if not expect_pass:  # a warning that names the pair, not a blocking error
                    assert latest["evaluation"]["severity"] == "WARN", (check, month)
                    assert "ETHUSDT" in latest["evaluation"]["description"], latest
    assert any(gaps(t) for t in truth_open_times(market, ["2025-02"]).values()), "the test needs one failing month"
    report_check = check_executions(backfilled, "dataset_report", "totals_match_months", None)
    assert [e["status"] for e in report_check] == ["SUCCEEDED"], report_check


def test_finished_runs_leave_no_spark_jvm(backfilled: UI):
    """Each run stops its SparkSession: once the runs are over no JVM or run worker of this server is left."""
    server = processes_with_env(backfilled.dev.marker)
    assert any("dagster_webserver" in p.cmdline for p in server), _describe(server)  # the lookup finds this server
    deadline = time.monotonic() + 60
    while True:
        workers = [p for p in processes_with_env(backfilled.dev.marker)
                   if "java" in p.cmdline.split(" ")[0] or "multiprocessing.spawn" in p.cmdline]  # fmt: skip
        if not workers or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert workers == [], _describe(workers)


# ---- stopping -------------------------------------------------------------------------------------------------


def test_sigint_mid_spark_run_leaves_nothing_behind(ui: UI):
    """Two Spark runs at once: the pool queues the second. Then Ctrl-C (SIGINT to the process group) while the
    first one's JVM is working: every process goes, the run is marked ended, no concurrency slot stays claimed."""
    dev = ui.dev

    def status(run: str) -> str:
        return dev.graphql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                           {"id": run})["runOrError"]["status"]  # fmt: skip

    # A read-back of this small lake can end within seconds of its JVM's start, before Ctrl-C: then the pair of
    # runs is let finish and tried again, so that the stop below always lands while a run's JVM is working.
    for _attempt in range(4):
        # dataset_report only starts Spark for months it has not summarized yet: forget them so both runs need it.
        shutil.rmtree(ui.data_dir / "reports" / "spot" / "klines" / INTERVAL / "months", ignore_errors=True)
        first, second = dev.launch_run(["dataset_report"]), dev.launch_run(["dataset_report"])
        deadline = time.monotonic() + 180
        while not (jvms := [p for p in processes_with_env(dev.marker) if "java" in p.cmdline.split(" ")[0]]):
            assert time.monotonic() < deadline, f"no Spark JVM within 180 s; log tail:\n{dev.log_tail()}"
            time.sleep(0.5)
        # The run queue is looked at every few seconds: watch for up to 8 s. Stop watching once one run has been
        # seen going with the other queued three times running, but not before the JVM has had 3 s to start
        # (pyspark's gateway JVM ignores SIGINT and goes when its Python does; one killed while starting can outlive
        # it).
        jvm_seen = time.monotonic()
        observed_until, held = jvm_seen + 8, 0
        while time.monotonic() < observed_until and (held < 3 or time.monotonic() < jvm_seen + 3):
            statuses = {r: status(r) for r in (first, second)}
            going = list(statuses.values()).count("STARTED") + list(statuses.values()).count("STARTING")
            assert going <= 1, statuses
            held = held + 1 if going == 1 and "QUEUED" in statuses.values() else 0
            time.sleep(0.5)
        assert "QUEUED" in statuses.values(), f"the second Spark run was not held in the queue: {statuses}"
        if alive(jvms) and "STARTED" in {status(r) for r in (first, second)}:
            break
        deadline = time.monotonic() + 180  # too late: both runs end on their own, then again
        while {status(r) for r in (first, second)} & ACTIVE_RUN:
            assert time.monotonic() < deadline, f"the runs did not end within 180 s; log tail:\n{dev.log_tail()}"
            time.sleep(1)
    else:
        pytest.fail("the first run's Spark work ended before Ctrl-C could reach it in 4 attempts")

    report = dev.stop()
    started = " ".join(p.cmdline for p in report.processes)
    # The run's JVM may have finished its read-back by now (the run itself is still going): it is checked by pid.
    for name in ("dagster_webserver", "dagster._daemon", "code-server", "api grpc"):
        assert name in started, f"{name} was not running before the stop: the process tree was not recorded"
    assert report.survivors == [], _describe(report.survivors)
    assert alive(report.processes) == [] and alive(jvms) == [], _describe(alive(jvms))
    assert processes_with_env(dev.marker) == []
    assert report.seconds < 30, f"stopping took {report.seconds:.1f} s"

    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dev.home))) as instance:
        runs = {r.run_id: r.status.value for r in instance.get_runs()}
        # The run that was going at Ctrl-C ended without success; the one held in the queue never ran to success.
        going = next((r for r, status in statuses.items() if status != "QUEUED"), None)
        assert going is not None, f"neither run was going at Ctrl-C: {statuses}"
        queued = second if going == first else first
        assert runs[going] in ("FAILURE", "CANCELED"), (going, runs)
        assert runs[queued] in ("QUEUED", "CANCELED", "FAILURE"), (queued, runs)
        assert not {s for s in runs.values() if s in ACTIVE_RUN - {"QUEUED"}}, f"runs left as if still going: {runs}"
        assert instance.event_log_storage.get_concurrency_info("spark").claimed_slots == []


def test_demo_is_synthetic_runs_offline_and_stops_on_sigterm(tmp_path):
    """`make demo`'s program: the stand-in + dagster dev on it, labelled SYNTHETIC; a month materializes; a plain
    SIGTERM to the demo (what a script's `kill` sends) stops the UI, the daemon, the code server and the stand-in."""
    from crypto_assets_tests import demo

    port, home, data = free_port(), tmp_path / "home", tmp_path / "data"
    log_path = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "CRYPTO_", "DAGSTER_"))}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "crypto_assets_tests.demo", "--port", str(port), "--pairs", "24", "--start-month",
             "2025-01", "--end-month", "2025-02", "--data-dir", str(data), "--dagster-home", str(home)],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    mine = f"DAGSTER_HOME={home}"
    try:
        deadline = time.monotonic() + 180
        while demo.READY.encode() not in log_path.read_bytes():
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        text = log_path.read_text(errors="replace")
        assert demo.BANNER in text and "SYNTHETIC" in text
        client = DagsterGraphQL(f"http://127.0.0.1:{port}")
        client.wait_ready(timeout=60)
        run_id = client.launch_run(["pair_universe"])
        assert client.wait_run(run_id, timeout=180) == "SUCCESS", client.run_errors(run_id)
        # the UI says the data is made up: pair_universe's metadata on its asset page
        events = client.graphql(
            """{ assetOrError(assetKey: {path: ["pair_universe"]}) { ... on Asset { assetMaterializations(limit: 1) {
                 metadataEntries { label ... on TextMetadataEntry { text } } } } } }"""
        )["assetOrError"]["assetMaterializations"]
        source = {e["label"]: e.get("text") for e in events[0]["metadataEntries"]}["data_source"]
        assert source.startswith("SYNTHETIC"), source
        run_id = client.launch_run(["raw_monthly_klines", "normalized_csv"], partition="2025-02")
        assert client.wait_run(run_id, timeout=180) == "SUCCESS", client.run_errors(run_id)
        market = Market.synthetic(24, "2025-01", "2025-02")  # the demo's market (fixed seed)
        universe = json.loads((data / "universe" / "pair_universe.json").read_text())
        assert sorted(p["symbol"] for p in universe["pairs"]) == sorted(p.symbol for p in market.pairs)
        csv = json.loads((data / "csv" / "spot" / INTERVAL / "2025-02" / "_manifest.json").read_text())["pairs"]
        expected = {p.symbol: market.expected(p.symbol, INTERVAL, "2025-02")["rows"] for p in market.pairs}
        assert sum(expected.values()) > 0
        assert {s: e["rows"] for s, e in csv.items() if e["rows"]} == {s: n for s, n in expected.items() if n}
        pids = processes_with_env(mine)
        assert any("dagster_webserver" in p.cmdline for p in pids), _describe(pids)
        assert all(has_env(p.pid, "CRYPTO_DEMO=1") for p in pids if "dagster" in p.cmdline), "CRYPTO_DEMO not passed"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            code = "killed"
        for p in processes_with_env(mine):  # leave nothing for the next test even when this one failed
            subprocess.run(["kill", "-9", str(p.pid)], check=False)
    output = log_path.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "no process left" in output, output[-3000:]
    assert processes_with_env(mine) == []
    assert not DagsterGraphQL(f"http://127.0.0.1:{port}").answers(), "the UI still answers after the stop"


def has_env(pid: int, entry: str) -> bool:
    return has_marker(pid, entry.encode())
