"""End to end through the real `dagster dev` with every market: CRYPTO_MARKETS=spot,um,cm, driven over GraphQL.

The stand-in serves spot and both futures markets. The three universes are materialized first (spot: three pairs in
mode `symbols`, SYRUPUSDT listed on 2025-05-14; USD-M and COIN-M: every perpetual of the bucket listing, ALPACAUSDT
delisted on 2025-05-02, SYRUPUSDT onboard 2025-05-14), then ONE asset backfill of every monthly asset of the graph
(whatever the graph holds: found by `isPartitioned`, so assets added later ride along) plus dataset_report for
2025-04..2025-05. It must run the months of all markets as one run, on one Spark JVM; every market's Parquet, read
back with Spark, must equal the stand-in's ground truth; each month must have its own check results, from that run,
for each market's kline assets; and `reports/dataset_report.json` must give the ground truth's totals per dataset.

Its own dagster dev and stand-in (test_ui_e2e.py keeps spot alone); the tests share them and run in file order.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crypto_assets_tests.binance_standin import Market, StandIn
from crypto_assets_tests.dagster_dev import BACKFILL_OK, DagsterDev, Proc, pipeline_env, processes_with_env

pytestmark = pytest.mark.e2e

MONTHS = ["2025-04", "2025-05"]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SYRUPUSDT"]  # spot, mode `symbols`
MARKETS = ("spot", "um", "cm")
INTERVAL, INTERVAL_MS = "4h", 4 * 3_600_000
KLINE_CHAIN = ["raw_monthly_klines", "normalized_csv", "parquet_candles"]
UNIVERSES = {"spot": "pair_universe", "um": "um/contract_universe", "cm": "cm/contract_universe"}


def key(market: str, asset: str) -> str:
    """An asset's key as the UI writes it: spot's plain, a futures market's under its prefix."""
    return asset if market == "spot" else f"{market}/{asset}"


def futures(market: str) -> str | None:
    """The stand-in's name for a market's archives: None for spot."""
    return None if market == "spot" else market


@dataclass
class UI:
    dev: DagsterDev
    market: Market
    data_dir: Path
    env: dict[str, str]
    graph: dict[str, dict] = field(default_factory=dict)  # asset key -> its node
    backfill_id: str = ""
    jvms: list[tuple[Proc, float]] = field(default_factory=list)  # every Spark JVM seen during the backfill
    symbols: dict[str, list[str]] = field(default_factory=dict)  # market -> the symbols of its universe

    @property
    def monthly(self) -> list[str]:
        return sorted(k for k, node in self.graph.items() if node["isPartitioned"])


class JvmWatch(threading.Thread):
    """Records every Spark driver JVM under this dagster dev (a ``java`` process running SparkSubmit; not the short
    ``launcher.Main`` that spark-submit runs first to build its command line), with its start as a Unix time.

    A JVM that runs a command (Hadoop's local file system does) forks first: until the child's exec it shows the
    JVM's own command line. Such a fork's parent is the JVM, so ``stop`` leaves out every JVM whose parent is one."""

    def __init__(self, marker: str):
        super().__init__(daemon=True, name="jvm-watch")
        self.marker, self.seen = marker, {}
        self._stop_event = threading.Event()
        ticks = os.sysconf("SC_CLK_TCK")
        boot = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        self._started_at = lambda p: boot + p.start / ticks

    def run(self) -> None:
        while not self._stop_event.wait(0.25):
            for p in processes_with_env(self.marker):
                words = p.cmdline.split(" ")
                if words[0].endswith("java") and "org.apache.spark.deploy.SparkSubmit" in words and (
                        "org.apache.spark.launcher.Main" not in words):  # fmt: skip
                    self.seen.setdefault((p.pid, p.start), (p, self._started_at(p)))

    def stop(self) -> list[tuple[Proc, float]]:
        self._stop_event.set()
        self.join(5)
        jvms = {p.pid for p, _ in self.seen.values()}
        return [(p, t) for p, t in self.seen.values() if p.ppid not in jvms]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ui_markets")
    market = Market.default()
    with StandIn(market, page_size=5) as standin:
        env = pipeline_env(standin.env(), workdir / "data", MONTHS, SYMBOLS, CRYPTO_MARKETS=",".join(MARKETS))
        with DagsterDev(workdir, env) as dev:
            yield UI(dev, market, workdir / "data", env)


@pytest.fixture(scope="module")
def backfilled(ui: UI) -> UI:
    """The three universes in one run, then ONE backfill of every partitioned asset plus dataset_report."""
    nodes = ui.dev.graphql("""{ assetNodes { assetKey { path } isPartitioned partitionKeys
                                 backfillPolicy { policyType } dependencyKeys { path }
                                 assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }""")
    ui.graph = {"/".join(n["assetKey"]["path"]): n for n in nodes["assetNodes"]}
    run_id = ui.dev.launch_run(list(UNIVERSES.values()))
    assert ui.dev.wait_run(run_id, timeout=180) == "SUCCESS", ui.dev.run_errors(run_id)
    ui.symbols = {"spot": SYMBOLS} | {
        m: [c["symbol"] for c in json.loads((ui.data_dir / "universe" / f"{m}_contract_universe.json").read_text())[
            "contracts"]] for m in ("um", "cm")}  # fmt: skip
    watch = JvmWatch(ui.dev.marker)
    watch.start()
    try:
        ui.backfill_id = ui.dev.launch_backfill([*ui.monthly, "dataset_report"], MONTHS)
        status = ui.dev.wait_backfill(ui.backfill_id, timeout=480)
    finally:
        ui.jvms = watch.stop()
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


def selection(run: dict) -> set[str]:
    return {"/".join(a["path"]) for a in run["assetSelection"]}


def monthly_run(ui: UI) -> dict:
    [run] = [r for r in backfill_runs(ui) if selection(r) & set(ui.monthly)]
    return run


def materializations(ui: UI, asset: str) -> dict[str, dict]:
    """Latest materialization per month of ``asset`` (``um/parquet_candles``): partition -> {label: int, __run}."""
    events = ui.dev.graphql(
        """query($key: AssetKeyInput!, $months: [String!]) { assetOrError(assetKey: $key) { ... on Asset {
             assetMaterializations(partitions: $months) { partition timestamp runId metadataEntries { label
               ... on IntMetadataEntry { intRepr } } } } } }""",
        {"key": {"path": asset.split("/")}, "months": MONTHS},
    )["assetOrError"]["assetMaterializations"]
    latest = {}
    for event in sorted(events, key=lambda e: int(e["timestamp"])):
        latest[event["partition"]] = {e["label"]: int(e["intRepr"]) for e in event["metadataEntries"]
                                      if "intRepr" in e} | {"__run": event["runId"]}  # fmt: skip
    return latest


def check_executions(ui: UI, asset: str, check: str, partition: str | None) -> list[dict]:
    return ui.dev.graphql(
        """query($key: AssetKeyInput!, $check: String!, $partition: String) {
             assetCheckExecutions(assetKey: $key, checkName: $check, partition: $partition, limit: 10) {
               runId status partition evaluation { success partition severity description } } }""",
        {"key": {"path": asset.split("/")}, "check": check, "partition": partition},
    )["assetCheckExecutions"]


def truth_open_times(ui: UI, market: str, months: list[str]) -> dict[str, list[int]]:
    """symbol -> every open time the stand-in serves of ``market`` for ``months`` (symbols without one left out)."""
    times = {s: [t for m in months for t in ui.market.expected(s, INTERVAL, m, futures=futures(market))["open_times"]]
             for s in ui.symbols[market]}  # fmt: skip
    return {s: t for s, t in times.items() if t}


def has_gap(open_times: list[int]) -> bool:
    return any(b - a > INTERVAL_MS for a, b in zip(open_times, open_times[1:]))


# ---- the graph ----------------------------------------------------------------------------------------------------


def test_every_market_has_its_monthly_chain_in_the_graph(backfilled: UI):
    graph = backfilled.graph
    for market in MARKETS:
        assert UNIVERSES[market] in graph and not graph[UNIVERSES[market]]["isPartitioned"], market
        for asset in KLINE_CHAIN:
            node = graph[key(market, asset)]
            assert key(market, asset) in backfilled.monthly, (market, asset)
            assert node["partitionKeys"] == MONTHS and node["backfillPolicy"]["policyType"] == "SINGLE_RUN", node
    report = {"/".join(k["path"]) for k in graph["dataset_report"]["dependencyKeys"]}
    assert report >= {key(m, "parquet_candles") for m in MARKETS}, report
    # every monthly asset (kline chains and whatever else the graph holds, funding rates among them) backfills as one
    for asset in backfilled.monthly:
        assert graph[asset]["partitionKeys"] == MONTHS, asset
        assert graph[asset]["backfillPolicy"]["policyType"] == "SINGLE_RUN", asset


def test_the_futures_universes_came_from_the_stand_ins_listing_and_futures_apis(backfilled: UI):
    env = backfilled.env
    assert env["BINANCE_FAPI_URL"] and env["BINANCE_DAPI_URL"], "dagster dev needs the futures APIs' URLs"
    for market in ("um", "cm"):
        universe = json.loads((backfilled.data_dir / "universe" / f"{market}_contract_universe.json").read_text())
        assert universe["exchange_info"] == "answered", market  # /fapi and /dapi of the stand-in answered
        sets = backfilled.market.contract_sets(market)
        want = sets["perpetual"] & sets["listed"]
        if market == "um":
            want = {s for s in want if s.endswith("USDT")}  # CRYPTO_QUOTE=USDT
        assert set(backfilled.symbols[market]) == want, market
    assert {"ALPACAUSDT", "SYRUPUSDT"} <= set(backfilled.symbols["um"])  # delisted and listed inside the range


# ---- one backfill, one run, one Spark session ---------------------------------------------------------------------


def test_one_run_backfills_every_market(backfilled: UI):
    runs = backfill_runs(backfilled)
    assert {r["status"] for r in runs} == {"SUCCESS"}, runs
    monthly = [r for r in runs if selection(r) & set(backfilled.monthly)]
    assert len(monthly) == 1, f"expected ONE run for the monthly assets of every market, got {monthly}"
    run = monthly[0]
    assert selection(run) == set(backfilled.monthly)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        MONTHS[0], MONTHS[-1])  # fmt: skip
    # dataset_report is unpartitioned: the backfill runs it after the months, in its own run.
    assert len(runs) == 2, [selection(r) for r in runs]
    report = next(r for r in runs if r is not run)
    assert selection(report) == {"dataset_report"} and report["startTime"] >= run["endTime"]
    for asset in backfilled.monthly:
        latest = materializations(backfilled, asset)
        assert sorted(latest) == MONTHS, asset
        assert {m["__run"] for m in latest.values()} == {run["runId"]}, asset


def test_the_run_wrote_every_market_with_one_spark_session(backfilled: UI):
    """One run is one process with one SparkResource: the three markets' parquet_candles share ONE driver JVM."""
    run = monthly_run(backfilled)
    inside = [(p, t) for p, t in backfilled.jvms if run["startTime"] - 1 <= t <= run["endTime"] + 1]
    seen = [(p.pid, p.ppid, p.cmdline[:200]) for p, _ in inside]
    assert len(inside) == 1, f"Spark driver JVMs started during the monthly run (pid, ppid, command): {seen}"
    steps = backfilled.dev.graphql(
        """query($id: ID!) { runOrError(runId: $id) { ... on Run { stepStats { stepKey status } } } }""",
        {"id": run["runId"]},
    )["runOrError"]["stepStats"]
    done = {s["stepKey"] for s in steps if s["status"] == "SUCCESS"}
    for market in MARKETS:  # step keys join a key's parts with "__"
        assert key(market, "parquet_candles").replace("/", "__") in done, (market, sorted(done))


# ---- the data -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("market", MARKETS)
def test_each_markets_parquet_equals_the_ground_truth(backfilled: UI, lake_spark, market: str):
    from pyspark.sql import functions as F

    root = backfilled.data_dir / "parquet" / market / "klines" / INTERVAL
    assert sorted(p.name for p in (root / "year=2025").iterdir()) == ["month=4", "month=5"], market
    rows = lake_spark.read.parquet(str(root)).select(
        "symbol", F.unix_millis("timestamp").alias("t"), "year", "month"
    ).collect()  # fmt: skip
    parquet = materializations(backfilled, key(market, "parquet_candles"))
    for month in MONTHS:
        got = [(r["symbol"], r["t"]) for r in rows if (r["year"], r["month"]) == (int(month[:4]), int(month[5:]))]
        series = truth_open_times(backfilled, market, [month])
        truth = backfilled.market.ground_truth(INTERVAL, [month], symbols=backfilled.symbols[market],
                                               futures=futures(market))  # fmt: skip
        assert truth["rows"] > 0, (market, month)
        assert len(got) == len(set(got)), f"{market} {month}: duplicate candles in the Parquet"
        per_symbol = {s: sorted(t for sym, t in got if sym == s) for s in {sym for sym, _ in got}}
        assert per_symbol == series, (market, month, {s: len(t) for s, t in per_symbol.items()},
                                      {s: len(t) for s, t in series.items()})  # fmt: skip
        assert len(got) == truth["rows"] and len(per_symbol) == truth["symbols"], (market, month)
        assert parquet[month]["rows"] == truth["rows"] and parquet[month]["symbols"] == truth["symbols"], month
    if market in ("spot", "um"):  # listed inside the range: the Parquet has it from 2025-05 on only
        assert not any(r["symbol"] == "SYRUPUSDT" and r["month"] == 4 for r in rows)
        assert any(r["symbol"] == "SYRUPUSDT" and r["month"] == 5 for r in rows)


def test_every_month_has_its_own_check_results_for_each_market(backfilled: UI):
    run = monthly_run(backfilled)["runId"]
    for market in MARKETS:
        for asset in (key(market, a) for a in KLINE_CHAIN):
            checks = backfilled.graph[asset]["assetChecksOrError"]["checks"]
            assert checks, asset
            for check in (c["name"] for c in checks):
                for month in MONTHS:
                    executions = check_executions(backfilled, asset, check, month)
                    assert [e["runId"] for e in executions] == [run], f"{asset}.{check} {month}: {executions}"
                    latest = executions[0]
                    assert latest["partition"] == latest["evaluation"]["partition"] == month
                    gap = any(has_gap(t) for t in truth_open_times(backfilled, market, [month]).values())
                    passes = not (check == "complete_between_first_and_last" and gap)
                    assert latest["evaluation"]["success"] is passes, (asset, check, month, latest)
                    assert latest["status"] == ("SUCCEEDED" if passes else "FAILED"), (asset, check, month)
    # Any other monthly asset (funding rates, once in the graph) has its per-month results from the same run and
    # passed its blocking checks; what its warnings say is its own tests' business.
    for asset in set(backfilled.monthly) - {key(m, a) for m in MARKETS for a in KLINE_CHAIN}:
        for check in backfilled.graph[asset]["assetChecksOrError"]["checks"]:
            for month in MONTHS:
                executions = check_executions(backfilled, asset, check["name"], month)
                assert [e["runId"] for e in executions] == [run], f"{asset}.{check['name']} {month}: {executions}"
                assert executions[0]["evaluation"]["success"] or not check["blocking"], executions[0]
    report_check = check_executions(backfilled, "dataset_report", "totals_match_months", None)
    assert [e["status"] for e in report_check] == ["SUCCEEDED"], report_check


def test_the_lake_report_lists_every_kline_dataset_with_the_ground_truth(backfilled: UI):
    datasets = json.loads((backfilled.data_dir / "reports" / "dataset_report.json").read_text())["datasets"]
    for market in MARKETS:
        name = f"{market}/klines/{INTERVAL}"
        assert name in datasets, sorted(datasets)
        truth = backfilled.market.ground_truth(INTERVAL, MONTHS, symbols=backfilled.symbols[market],
                                               futures=futures(market))  # fmt: skip
        figures = datasets[name]
        assert (figures["total_rows"], figures["symbols"]) == (truth["rows"], truth["symbols"]), name
        assert figures["months"] == [
            {"month": m, "rows": t["rows"], "symbols": t["symbols"]}
            for m, t in ((m, backfilled.market.ground_truth(INTERVAL, [m], symbols=backfilled.symbols[market],
                                                            futures=futures(market))) for m in MONTHS)
        ], name  # fmt: skip
        assert figures["duplicates"] == 0, name
        folder = backfilled.data_dir / "reports" / market / "klines" / INTERVAL
        assert (folder / "dataset_report.json").exists() and (folder / "coverage.png").stat().st_size > 0, name
    markdown = (backfilled.data_dir / "reports" / "dataset_report.md").read_text()
    assert all(f"{m}/klines/{INTERVAL}" in markdown for m in MARKETS)
