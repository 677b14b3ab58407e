"""End-to-end benchmark: the real pipeline, through Dagster, against the local Binance stand-in (synthetic data).

    python -m crypto_assets_tests.benchmark [--scenario S,A,B,C,D,U|all] [--pairs 600] [--months 15] [--interval 4h]
                                            [--latency-ms 50] [--s-pairs 100] [--s-months 15] [--c-pairs 50]
                                            [--c-months 3] ...
    make bench ARGS="--scenario A,B --pairs 40 --months 3 --latency-ms 5"     # a quick run
    make bench ARGS="--scenario A,U --pairs 40 --months 3 --latency-ms 20"    # futures vs spot, per archive

Scenarios (all share one persistent Dagster instance, a temporary DAGSTER_HOME created before the first scenario as
`make ui` creates its own, so later ones see the history):

(S) the study's job: ``--s-pairs`` x ``--s-months`` (ending ``--end-month``) x 4h, ``historical-usdt``,
    ``--latency-ms``, its own stand-in and lake, run as A is.
(A) cold: ``--pairs`` x ``--months`` (ending ``--end-month``) x ``--interval``, ``historical-usdt``, ``--latency-ms``
    per request; then, on a copy of its files, a 1-month parquet_candles run.
(B) warm: A again right after, nothing new upstream.
(C) fine interval: ``--c-pairs`` x ``--c-months`` x ``--c-interval`` (50 x 3 x 1m), its own stand-in and lake.
(D) one month added: the stand-in publishes the month after ``--end-month``; the end month moves to it and the whole
    range is backfilled again (``--d-range new`` runs the new month only).
(U) futures, cold: CRYPTO_MARKETS=um, ``--u-contracts`` (default ``--pairs``) USD-M perpetuals x ``--months`` x
    ``--interval`` (as A), ``--latency-ms``, its own stand-in (``Market.synthetic(0, contracts=N)``: some onboard or
    delisted inside the range, funding every 8 h, 4 h, or 8 h then 4 h) and lake. Its runs: ``um/contract_universe``;
    one single-run backfill of every partitioned ``um/`` asset of the graph (the kline chain, and the funding assets
    when the graph has them); ``dataset_report`` (over um alone). Its cost per archive (scenario seconds over every
    archive its raw assets fetched: klines plus funding) is compared with A's.
S, A and C are each followed, on the same stand-in, by the study notebook's method (``notebook_baseline``, its own
process and output folder) and by the machine's limit for the scenario's data.

Each scenario is the path the UI takes: three runs - ``pair_universe``; one single-run backfill of
``raw_monthly_klines + normalized_csv + parquet_candles`` over the month range (the range tags of a backfill);
``dataset_report`` (U: the um assets, see above) - each in a fresh Python process (as Dagster's default run launcher
does; ``--process-per scenario`` runs the three in one process), with the environment set before ``crypto_assets`` is
imported.

Output: JSON lines on stdout (progress on stderr):
  {"kind": "machine", ...}                              the machine, its load, the settings
  {"kind": "asset", "scenario", "asset", "seconds", ...}   one per asset and scenario
  {"kind": "phase", "scenario", "phase", ...}           stand-in warm-up, notebook, limit,
                                                        1-month Parquet, rewrites
  {"kind": "summary", "scenario", "seconds", "rows_per_s", "peak_mb", "targets": [...], ...}
  {"kind": "targets", "all_passed", "targets": [...]}    every target of the session, with pass/fail

How things are measured:
  * seconds per asset: STEP_START -> STEP_SUCCESS/FAILURE timestamps of the run's step events, read from the
    instance's event log. A scenario's ``seconds`` is the wall time of its run processes (spawn to exit: imports,
    run start-up and Spark's JVM shutdown included - what a user waits) less the worker's own bookkeeping after
    each run (reading the event log and /proc for these figures: ``bookkeeping_seconds_not_counted``);
    ``run_seconds`` is the sum of the RUN_START..RUN_SUCCESS durations of the instance's run records;
    ``process_start_seconds`` the spawn-to-ready (imports, instance) and ``process_exit_seconds`` the
    result-written-to-exit (interpreter shutdown) times of the scenario's processes.
  * requests and bytes downloaded: the stand-in's own counters (zip body bytes actually sent), reset per run.
  * download latency bound: requests x latency / CRYPTO_DOWNLOAD_WORKERS; the ratio is raw_monthly_klines' step
    seconds over it.
  * Spark start: the time of the first ``spark.spark_session`` access in a run (JVM launch + SparkContext + session;
    with the Spark Connect server, the client's handshake), reported through SparkResource's ``session_started``.
  * Spark Connect (``--spark-remote auto``, the default): one server started before the scenarios the way `make ui`
    starts it (its start is a ``spark_connect_start`` phase), shared by the project's runs through SPARK_REMOTE and
    stopped at the end; the notebook baseline keeps its own local JVM. ``--spark-remote off``: local mode per run.
  * peak memory: the run process's own ``VmHWM`` (Python; not ``ru_maxrss``, which Linux carries over from the
    parent across fork and exec, so a run process started by this one would report this one's size) and the
    largest ``VmHWM`` among its ``java`` descendants (the Spark driver JVM) or of the Connect server JVM (sampled by
    pid, its peak reset through ``/proc/<pid>/clear_refs`` at each run process's start), read in the run process
    after each run and sampled from /proc every 0.2 s by this process; ``peak_mb`` = the sum of both peaks (an upper
    bound; ``tree_peak_mb`` is the largest sampled sum of
    VmRSS over the process tree at one instant).
  * 15 months vs one: parquet_candles' step seconds in A against a parquet_candles run of the middle month alone
    on a fresh copy of that month's CSVs (same code, Spark start included in both).
  * D rewrites only the new month: (mtime, size) of every file under the Parquet root before and after.
  * project vs notebook: the notebook method's process wall time (spawn to exit; its JSON line has its phases)
    over the project's = the wall time of the ``pair_universe`` run process plus the monthly backfill's (the
    ``dataset_report`` run is reported but not counted: the notebook makes no report).
  * limit: measured alone in this process, zlib inflating every zip of the scenario's ``raw/`` (1 thread, then 2
    threads: zlib releases the GIL) and copying its Parquet files' bytes to a new folder with fsync.
  * CSV on disk: every file under the lake's ``csv/`` over the ``.zip`` files under ``raw/``.

Targets (each a ratio of figures measured in the same session): S, A and C at least 3x faster than the notebook
method (the 5x stretch is said in the detail); A's download within 2x of its latency bound;
parquet_candles for all months < 3x one month; B downloads 0 archive bytes and costs < 15% of A; D costs < 15% of A
and rewrites only the new month; C's rows/s >= A's rows/s / 2; A's and C's normalized CSV <= 1.5x their zips; U's
cost per archive (``seconds_per_archive``: the scenario's seconds over its archives) <= 1.25x A's, when both ran; peak
memory < 1 GB in every scenario.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
import zlib
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Any

from crypto_assets.months import Month

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
ALL_SCENARIOS = ("S", "A", "B", "C", "D", "U")
STUDY_INTERVAL = "4h"  # the study's job
MONTHLY_ASSETS = ["raw_monthly_klines", "normalized_csv", "parquet_candles"]
ASSET_ORDER = ["pair_universe", *MONTHLY_ASSETS, "dataset_report"]
FUTURES_MARKET = "um"  # scenario U's market


def asset_names(market: str = "spot") -> dict[str, str]:
    """The asset keys of a market's chain (``um/raw_monthly_klines``), by the names the figures use (ASSET_ORDER)."""
    if market == "spot":
        return {a: a for a in ASSET_ORDER}
    return {"pair_universe": f"{market}/contract_universe", **{a: f"{market}/{a}" for a in MONTHLY_ASSETS},
            "dataset_report": "dataset_report"}  # fmt: skip


def step_key(asset: str) -> str:
    """Dagster's step key of an asset: ``um/raw_monthly_klines`` -> ``um__raw_monthly_klines``."""
    return asset.replace("/", "__")
TAG_PREFIX = "crypto_bench"


def emit(record: dict) -> None:
    """One JSON line on stdout."""
    print(json.dumps(record, default=str), flush=True)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


# --- months ----------------------------------------------------------------------------------------------------------
def _month_span(end: str, count: int) -> list[str]:
    last = Month.parse(end)
    return [str(last.shifted(-i)) for i in range(count - 1, -1, -1)]


# --- processes and memory --------------------------------------------------------------------------------------------
def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(root: int) -> list[int]:
    children, out, stack = _children_map(), [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def _own_peak_kb() -> int:
    """This process's peak resident memory since it started (``VmHWM``; ``ru_maxrss`` where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def proc_memory(pid: int) -> tuple[str, int, int] | None:
    """(command name, VmHWM kB, VmRSS kB) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    kb = lambda key: int(fields.get(key, "0 kB").split()[0])  # noqa: E731
    return fields.get("Name", "?").strip(), kb("VmHWM"), kb("VmRSS")


class TreeSampler(threading.Thread):
    """Samples the memory of a process and its descendants: peak VmHWM per process, peak summed VmRSS."""

    def __init__(self, root: int, every: float = 0.2, also: tuple[int, ...] = ()):
        super().__init__(daemon=True, name="memory-sampler")
        self.root, self.every, self.also = root, every, also  # also: pids outside the tree (the Connect server)
        self.peaks: dict[int, tuple[str, int]] = {}
        self.tree_peak_kb = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self._stop_event.wait(self.every):
                return

    def sample(self) -> None:
        total = 0
        for pid in [self.root, *descendants(self.root), *self.also]:
            found = proc_memory(pid)
            if found is None:
                continue
            name, hwm, rss = found
            # A JVM's short-lived forks (named after the forking thread) share its pages: not counted in the sum.
            total += rss if pid == self.root or name == "java" else 0
            if hwm >= self.peaks.get(pid, ("", 0))[1]:
                self.peaks[pid] = (name, hwm)
        self.tree_peak_kb = max(self.tree_peak_kb, total)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def peak_kb(self, name: str | None = None, exclude_root: bool = False) -> int:
        return max((hwm for pid, (n, hwm) in self.peaks.items()
                    if (name is None or n == name) and not (exclude_root and pid == self.root)), default=0)  # fmt: skip


# --- the worker: one or more Dagster runs in this (fresh) process -----------------------------------------------------
def _standin_call(url: str | None, route: str, method: str = "GET") -> dict | None:
    if not url:
        return None
    request = urllib.request.Request(f"{url}/_standin/{route}", method=method, data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    payload.pop("by_path", None)
    return payload


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str) and len(value) <= 200:
        return value
    return None


def worker_main(spec_path: str) -> int:
    """Run the runs of a spec file (written by the parent) and write their figures to the spec's result file."""
    spec = json.loads(Path(spec_path).read_text())
    import warnings

    warnings.filterwarnings("ignore")
    import dagster as dg
    from dagster import DagsterEventType

    from crypto_assets.definitions import ASSETS
    from crypto_assets.resources import SparkResource, resources_from_settings
    from crypto_assets.settings import Settings

    spark_starts: list[float] = []

    class TimedSparkResource(SparkResource):
        """The project's SparkResource, recording how long each run's session took to be ready."""

        def session_started(self, seconds: float) -> None:
            spark_starts.append(seconds)

    resources = resources_from_settings(Settings.from_env())
    project = resources["spark"]
    resources["spark"] = TimedSparkResource(
        spark_config=project.spark_config, remote=project.remote, class_cache=project.class_cache
    )
    by_name = {next(iter(a.keys)).to_user_string(): a for a in ASSETS}
    instance = dg.DagsterInstance.get()
    ready_seconds = time.time() - spec["spawned_at"]
    runs_out = []
    for run in spec["runs"]:
        months = run.get("months") or []
        names = run.get("assets") or selected_assets(by_name, run["select"])
        tags = {f"{TAG_PREFIX}/scenario": spec["scenario"], f"{TAG_PREFIX}/run": run["label"]}
        if len(months) > 1:
            tags |= {"dagster/asset_partition_range_start": months[0], "dagster/asset_partition_range_end": months[-1]}
        _standin_call(spec.get("standin_url"), "reset_stats", "POST")
        spark_starts.clear()
        profiler = None
        if spec.get("profile_dir"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        result = dg.materialize(
            [by_name[name] for name in names],
            resources=resources,
            partition_key=months[0] if len(months) == 1 else None,
            tags=tags,
            instance=instance,
            raise_on_error=False,
        )
        wall = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            _dump_profile(profiler, Path(spec["profile_dir"]) / f"{spec['scenario']}-{run['label']}")
        bookkeeping_started = time.perf_counter()
        standin = _standin_call(spec.get("standin_url"), "stats")
        kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
        steps: dict[str, dict] = {}
        for entry in instance.all_logs(result.run_id, of_type=kinds):
            step = steps.setdefault(entry.step_key, {})
            if entry.dagster_event.event_type == DagsterEventType.STEP_START:
                step["start"] = entry.timestamp
            else:
                step["end"] = entry.timestamp
                step["status"] = (
                    "success" if entry.dagster_event.event_type == DagsterEventType.STEP_SUCCESS else "failure"
                )
        for step in steps.values():
            step["seconds"] = step["end"] - step["start"] if "end" in step and "start" in step else None
        record = instance.get_run_record_by_id(result.run_id)
        materializations = []
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization
            metadata = {k: _plain(v.value) for k, v in mat.metadata.items()}
            materializations.append({"asset": mat.asset_key.to_user_string(), "partition": mat.partition,
                                     "metadata": {k: v for k, v in metadata.items() if v is not None}})  # fmt: skip
        evaluations = result.get_asset_check_evaluations()
        failed_checks = sorted({f"{e.asset_key.to_user_string()}.{e.check_name}"
                                + (f"[{e.partition}]" if getattr(e, "partition", None) else "")
                                for e in evaluations if not e.passed})  # fmt: skip
        java = [m for m in (proc_memory(p) for p in descendants(os.getpid())) if m and m[0] == "java"]
        failure = None if result.success else result.get_run_failure_event()
        runs_out.append({
            "label": run["label"], "assets": names, "run_id": result.run_id, "success": result.success,
            "wall_seconds": wall,
            "run_seconds": (record.end_time - record.start_time) if record and record.end_time and record.start_time
            else None,
            "steps": steps, "materializations": materializations, "checks_passed": sum(e.passed for e in evaluations),
            "checks_failed": failed_checks, "spark_starts": list(spark_starts), "standin": standin,
            "jvm_hwm_kb": max((m[1] for m in java), default=0),
            "python_hwm_kb": _own_peak_kb(),
            "failure": failure.message if failure is not None else None,
            "bookkeeping_seconds": time.perf_counter() - bookkeeping_started,
        })  # fmt: skip
    Path(spec["result"]).write_text(json.dumps({"ready_seconds": ready_seconds, "runs": runs_out,
                                                "written_at": time.time()}, default=str))  # fmt: skip
    return 0


def selected_assets(by_name: dict, select: dict) -> list[str]:
    """The keys of the code location's assets that ``select`` names: ``{"prefix": "um", "partitioned": true}`` is
    every monthly asset of USD-M, whatever the graph holds (the kline chain; funding rates when defined)."""
    prefix = select["prefix"] + "/"
    names = sorted(name for name, a in by_name.items() if name.startswith(prefix)
                   and (a.partitions_def is not None) == bool(select.get("partitioned", True)))  # fmt: skip
    if not names:
        raise RuntimeError(f"no asset of the code location matches {select}; assets: {sorted(by_name)}")
    return names


def _dump_profile(profiler, stem: Path) -> None:
    import pstats

    stem.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(stem.with_suffix(".pstats")))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(30)
    stem.with_suffix(".txt").write_text(text.getvalue())


# --- the parent: stand-ins, run processes, figures --------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.home = args.workdir / "dagster_home"
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "dagster.yaml", self.home / "dagster.yaml")
        self.logs = args.workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.summaries: dict[str, dict] = {}
        self.targets: list[dict] = []
        self.extra: dict[str, dict] = {}  # per scenario: figures of the side phases
        self._serial = 0
        self.spark_server = None  # --spark-remote auto: the SparkConnectServer shared by the project's runs
        self.init_instance()

    def init_instance(self) -> None:
        """Create the instance's SQLite storage before any scenario, as `make ui`'s ``dagster dev`` does when it
        starts: a user's runs find their instance there. (The first run process would otherwise create its
        databases and stamp their schema, ~0.3-0.6 s counted in whichever scenario runs first.)"""
        code = ("import warnings; warnings.filterwarnings('ignore'); import dagster as dg; "
                "i = dg.DagsterInstance.get(); i.get_runs(limit=1); i.event_log_storage.get_asset_records(); "
                "i.schedule_storage.all_instigator_state()")  # fmt: skip
        subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=300,
                       env={**os.environ, "DAGSTER_HOME": str(self.home)})  # fmt: skip

    def start_spark_server(self) -> None:
        """The Connect server as `make ui` starts it (crypto_assets.serve), on a free port, before the scenarios."""
        from crypto_assets.lake.spark import spark_conf
        from crypto_assets.lake.spark_server import SparkConnectServer
        from crypto_assets_tests.dagster_dev import free_port

        conf = spark_conf(self.args.spark_master, json.loads(self.args.spark_conf) if self.args.spark_conf else None)
        server = SparkConnectServer(free_port(), self.args.workdir / "spark-connect")
        started = time.perf_counter()
        server.start(conf, os.environ.get("CRYPTO_SPARK_CLASS_CACHE", ""))
        self.spark_server = server
        emit({"kind": "phase", "phase": "spark_connect_start", "seconds": time.perf_counter() - started,
              "url": server.url, "pid": server.pid(), "log": str(server.log_file)})  # fmt: skip

    def stop_spark_server(self) -> None:
        if self.spark_server is not None:
            self.spark_server.stop()
            self.spark_server = None

    # --- environment and processes -----------------------------------------------------------------------------------
    def env(self, standin, data_dir: Path, interval: str, months: list[str], markets: str = "spot") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CRYPTO_", "BINANCE_", "SPARK_MASTER", "SPARK_REMOTE"))}  # fmt: skip
        if self.spark_server is not None:
            env["SPARK_REMOTE"] = self.spark_server.url
        env.update(standin.env() if standin is not None else {
            "BINANCE_DATA_URL": "http://127.0.0.1:9", "BINANCE_LISTING_URL": "http://127.0.0.1:9/bucket",
            "BINANCE_API_URL": "http://127.0.0.1:9"})  # fmt: skip
        env.update({
            "CRYPTO_DATA_DIR": str(data_dir), "CRYPTO_INTERVAL": interval, "CRYPTO_START_MONTH": months[0],
            "CRYPTO_END_MONTH": months[-1], "CRYPTO_PAIR_MODE": "historical-usdt", "CRYPTO_MARKETS": markets,
            "CRYPTO_DOWNLOAD_WORKERS": str(self.args.workers), "SPARK_MASTER": self.args.spark_master,
            "DAGSTER_HOME": str(self.home), "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        if self.args.spark_conf:
            env["CRYPTO_SPARK_CONF"] = self.args.spark_conf
        return env

    def run_process(self, scenario: str, runs: list[dict], env: dict, standin) -> dict:
        """Run ``runs`` in one fresh process; returns the worker's figures plus wall time and sampled memory."""
        self._serial += 1
        stem = f"{self._serial:02d}-{scenario}-{'+'.join(r['label'] for r in runs)}"
        spec_path, result_path = self.logs / f"{stem}.spec.json", self.logs / f"{stem}.result.json"
        spec = {"scenario": scenario, "runs": runs, "result": str(result_path), "spawned_at": time.time(),
                "standin_url": standin.data_url if standin is not None else None,
                "profile_dir": str(self.args.workdir / "profiles") if self.args.profile else None}  # fmt: skip
        spec_path.write_text(json.dumps(spec))
        log_path = self.logs / f"{stem}.log"
        log(f"{scenario}: run process {stem} (log {log_path})")
        server_pid = self.spark_server.pid() if self.spark_server is not None else None
        if server_pid is not None:
            Path(f"/proc/{server_pid}/clear_refs").write_text("5")  # its VmHWM restarts: this process's peak only
        started = time.perf_counter()
        with open(log_path, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "crypto_assets_tests.benchmark", "--worker", str(spec_path)],
                                    cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
            sampler = TreeSampler(proc.pid, also=(server_pid,) if server_pid else ())
            sampler.start()
            try:
                code = proc.wait(timeout=self.args.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = -9
            finally:
                sampler.stop()
        wall, ended_at = time.perf_counter() - started, time.time()
        if code != 0 or not result_path.exists():
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"run process {stem} exited with {code}; last lines of {log_path}:\n{tail}")
        result = json.loads(result_path.read_text())
        # The worker's own bookkeeping after each run (reading the event log and /proc for these figures) is not
        # something a user waits for: it is taken out of the process's wall time, and reported.
        result["bookkeeping_seconds"] = sum(r.get("bookkeeping_seconds", 0.0) for r in result["runs"])
        result["wall_seconds"] = wall - result["bookkeeping_seconds"]
        result["exit_seconds"] = ended_at - result["written_at"]  # interpreter shutdown after the last run
        python_kb = max([sampler.peaks.get(proc.pid, ("", 0))[1]] + [r["python_hwm_kb"] for r in result["runs"]])
        jvm_kb = max([sampler.peak_kb("java")] + [r["jvm_hwm_kb"] for r in result["runs"]])
        by_name: dict[str, float] = {}
        for pid, (name, hwm) in sampler.peaks.items():
            if pid != proc.pid:
                by_name[name] = max(by_name.get(name, 0.0), hwm / 1024)
        result["memory"] = {"python_peak_mb": python_kb / 1024, "jvm_peak_mb": jvm_kb / 1024,
                            "tree_peak_mb": sampler.tree_peak_kb / 1024, "descendants_peak_mb": by_name}  # fmt: skip
        for run in result["runs"]:
            if not run["success"]:
                log(f"{scenario}: run {run['label']} FAILED: {run['failure']} (log {log_path})")
            if run["checks_failed"]:
                log(f"{scenario}: run {run['label']} failed checks: {run['checks_failed'][:10]}")
        return result

    def run_scenario(self, scenario: str, standin, data_dir: Path, interval: str, months: list[str],
                     run_months: list[str] | None = None, market: str = "spot") -> dict:  # fmt: skip
        """The three runs of a scenario (universe, monthly single-run backfill, report); returns the raw figures.
        A futures ``market``: CRYPTO_MARKETS is that market alone and the backfill is every monthly asset of it."""
        run_months = run_months or months
        env = self.env(standin, data_dir, interval, months, markets=market)
        monthly = {"assets": MONTHLY_ASSETS} if market == "spot" else {
            "select": {"prefix": market, "partitioned": True}}  # fmt: skip
        runs = [{"label": "universe", "assets": [asset_names(market)["pair_universe"]]},
                {"label": "monthly", **monthly, "months": run_months},
                {"label": "report", "assets": ["dataset_report"]}]  # fmt: skip
        groups = [runs] if self.args.process_per == "scenario" else [[r] for r in runs]
        processes = [self.run_process(scenario, group, env, standin) for group in groups]
        return {"processes": processes, "runs": {r["label"]: r for p in processes for r in p["runs"]},
                "interval": interval, "months": run_months, "data_dir": data_dir, "market": market}  # fmt: skip

    # --- figures -----------------------------------------------------------------------------------------------------
    def report_scenario(self, scenario: str, raw: dict, config: dict) -> dict:
        runs, latency = raw["runs"], config["latency_ms"] / 1000
        names = asset_names(raw.get("market", "spot"))  # ASSET_ORDER's name -> the asset's key in this scenario
        mats: dict[str, list[dict]] = {}
        for run in runs.values():
            for m in run["materializations"]:
                mats.setdefault(m["asset"], []).append(m)
        steps = {k: v for run in runs.values() for k, v in run["steps"].items()}
        seconds_of = lambda asset: (steps.get(step_key(asset)) or {}).get("seconds")  # noqa: E731
        step_seconds = {a: seconds_of(names[a]) for a in ASSET_ORDER}

        def total(asset: str, key: str) -> int:
            return sum(m["metadata"].get(key, 0) or 0 for m in mats.get(asset, []) if m["partition"] is not None)

        monthly = runs["monthly"]
        standin_monthly = monthly["standin"] or {}
        requests = standin_monthly.get("requests", 0)
        zip_bytes = sum((r["standin"] or {}).get("zip_bytes", 0) for r in runs.values())
        spark = {label: r["spark_starts"][0] for label, r in runs.items() if r["spark_starts"]}
        # Every archive the scenario's raw assets fetched (their files_ok): klines, and funding where there is some.
        fetched = {a: total(a, "files_ok") for a in mats if any("files_ok" in m["metadata"] for m in mats[a])}
        archives, klines = sum(fetched.values()), fetched.get(names["raw_monthly_klines"], 0)
        rows = total(names["normalized_csv"], "rows")
        raw_s, csv_s, pq_s = (step_seconds[a] for a in MONTHLY_ASSETS)
        download_s = sum(seconds_of(a) or 0 for a in fetched) or None  # every step that downloads
        bound = requests * latency / self.args.workers if latency else None
        universe = names["pair_universe"]
        lines = [
            {"asset": universe, "seconds": step_seconds["pair_universe"],
             "pairs": next((m["metadata"].get("count") for m in mats.get(universe, [])), None),
             "requests": (runs["universe"]["standin"] or {}).get("requests")},
            {"asset": names["raw_monthly_klines"], "seconds": raw_s, "archives": klines,
             "archives_per_s": _ratio(klines, raw_s),
             "archives_downloaded": standin_monthly.get("by_kind", {}).get("zip"),
             "archives_cached": total(names["raw_monthly_klines"], "files_skipped_cached"),
             "archives_absent": total(names["raw_monthly_klines"], "files_absent"),
             "archives_failed": total(names["raw_monthly_klines"], "files_failed"),
             "bytes_downloaded": standin_monthly.get("zip_bytes", 0), "requests": requests,
             "requests_by_kind": standin_monthly.get("by_kind"), "latency_ms": config["latency_ms"],
             "workers": self.args.workers, "latency_bound_seconds": bound,
             "ratio_to_latency_bound": _ratio(download_s, bound)},
            {"asset": names["normalized_csv"], "seconds": csv_s, "rows": rows, "rows_per_s": _ratio(rows, csv_s),
             "pairs_rebuilt": total(names["normalized_csv"], "pairs_rebuilt")},
            {"asset": names["parquet_candles"], "seconds": pq_s, "rows": total(names["parquet_candles"], "rows"),
             "rows_per_s": _ratio(total(names["parquet_candles"], "rows"), pq_s),
             "months_rewritten": sum(bool(m["metadata"].get("rewritten"))
                                     for m in mats.get(names["parquet_candles"], [])),
             "parquet_bytes": total(names["parquet_candles"], "bytes"), "spark_start_seconds": spark.get("monthly")},
        ]  # fmt: skip
        # The backfill's other assets (U: the funding rates, once in the graph), each with what it says it did.
        others = sorted((a for a in monthly.get("assets", []) if a not in names.values()),
                        key=lambda a: (steps.get(step_key(a)) or {}).get("start") or 0)  # in the order they ran
        for asset in others:
            lines.append({"asset": asset, "seconds": seconds_of(asset), "archives": fetched.get(asset),
                          "rows": total(asset, "rows") if any("rows" in m["metadata"] for m in mats.get(asset, []))
                          else None})  # fmt: skip
        lines.append({"asset": "dataset_report", "seconds": step_seconds["dataset_report"],
                      "total_rows": next((m["metadata"].get("total_rows") for m in mats.get("dataset_report", [])),
                                         None),
                      "spark_start_seconds": spark.get("report")})  # fmt: skip
        for line in lines:
            emit({"kind": "asset", "scenario": scenario, **_rounded(line)})
        processes = raw["processes"]
        seconds = sum(p["wall_seconds"] for p in processes)
        python_mb = max(p["memory"]["python_peak_mb"] for p in processes)
        jvm_mb = max(p["memory"]["jvm_peak_mb"] for p in processes)
        summary = {
            "kind": "summary", "scenario": scenario, **config, "months": len(raw["months"]),
            "month_range": f"{raw['months'][0]}..{raw['months'][-1]}",
            "ok": all(r["success"] for r in runs.values()),
            "checks_failed": sorted({c for r in runs.values() for c in r["checks_failed"]}),
            "seconds": seconds,
            "run_seconds": sum(r["run_seconds"] or 0 for r in runs.values()),
            "step_seconds": sum(s for s in step_seconds.values() if s),
            "process_overhead_seconds": seconds - sum(r["run_seconds"] or 0 for r in runs.values()),
            "process_start_seconds": sum(p["ready_seconds"] for p in processes),
            "process_exit_seconds": sum(p["exit_seconds"] for p in processes),
            "bookkeeping_seconds_not_counted": sum(p["bookkeeping_seconds"] for p in processes),
            "seconds_per_asset": {names[a]: s for a, s in step_seconds.items()} | {a: seconds_of(a) for a in others},
            "monthly_assets": monthly.get("assets"),
            "rows": rows, "rows_per_s": _ratio(rows, seconds), "archives": archives, "archives_by_asset": fetched,
            "seconds_per_archive": _ratio(seconds, archives), "seconds_per_kline_archive": _ratio(seconds, klines),
            "archives_per_s": _ratio(archives, download_s), "bytes_downloaded": zip_bytes,
            "download_latency_bound_seconds": bound, "download_ratio_to_latency_bound": _ratio(download_s, bound),
            "requests": sum((r["standin"] or {}).get("requests", 0) for r in runs.values()),
            "spark_start_seconds": spark,
            "python_peak_mb": python_mb, "jvm_peak_mb": jvm_mb, "peak_mb": python_mb + jvm_mb,
            "tree_peak_mb": max(p["memory"]["tree_peak_mb"] for p in processes),
            "descendants_peak_mb": {n: max(p["memory"]["descendants_peak_mb"].get(n, 0) for p in processes)
                                    for p0 in processes for n in p0["memory"]["descendants_peak_mb"]},
            "run_ids": {label: r["run_id"] for label, r in runs.items()},
        }  # fmt: skip
        self.summaries[scenario] = summary
        return summary

    def finish_scenario(self, scenario: str, summary: dict, targets: list[dict]) -> None:
        targets.append(_target(f"{scenario}.peak_memory_under_1GB", summary["peak_mb"], 1024, "<",
                               f"python {summary['python_peak_mb']:.0f} MB + JVM {summary['jvm_peak_mb']:.0f} MB "
                               f"(sampled tree peak {summary['tree_peak_mb']:.0f} MB)"))  # fmt: skip
        if not summary["ok"]:
            targets.append(_target(f"{scenario}.runs_succeeded", 0, 1, ">=", "a run failed; see the logs"))
        self.targets += targets
        emit(_rounded({**summary, "targets": targets}))

    # --- side phases -------------------------------------------------------------------------------------------------
    def parquet_one_month(self, scenario: str, data_dir: Path, interval: str, month: str, all_months_s: float | None,
                          months: int) -> dict:  # fmt: skip
        """parquet_candles of one month alone, on a fresh copy of that month's CSVs (no Parquet yet)."""
        from crypto_assets.layout import Layout

        source = Layout.at(data_dir, interval)
        fresh_dir = self.args.workdir / f"one-month-{scenario}"
        shutil.rmtree(fresh_dir, ignore_errors=True)
        target = Layout.at(fresh_dir, interval)
        m = Month.parse(month)
        # What parquet_candles reads: the month's CSVs and manifest, the raw manifest (its checks count ok archives).
        shutil.copytree(source.csv_dir(m), target.csv_dir(m))
        for src, dst in (
            (source.raw_manifest(m), target.raw_manifest(m)),
            (source.universe_file, target.universe_file),
        ):
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        env = self.env(None, fresh_dir, interval, [month])
        process = self.run_process(scenario, [{"label": "parquet-1-month", "assets": ["parquet_candles"],
                                               "months": [month]}], env, None)  # fmt: skip
        run = process["runs"][0]
        seconds = (run["steps"].get("parquet_candles") or {}).get("seconds")
        rows = sum(m["metadata"].get("rows", 0) for m in run["materializations"])
        line = {"kind": "phase", "scenario": scenario, "phase": "parquet_one_month", "month": month,
                "ok": run["success"], "seconds": seconds, "rows": rows,
                "spark_start_seconds": run["spark_starts"][0] if run["spark_starts"] else None,
                "all_months": months, "all_months_seconds": all_months_s,
                "ratio_all_to_one": _ratio(all_months_s, seconds),
                "python_peak_mb": process["memory"]["python_peak_mb"],
                "jvm_peak_mb": process["memory"]["jvm_peak_mb"]}  # fmt: skip
        shutil.rmtree(fresh_dir, ignore_errors=True)
        emit(_rounded(line))
        return line

    def run_notebook(self, scenario: str, standin, interval: str, months: list[str]) -> dict:
        """The notebook's method (``notebook_baseline``) in its own process against ``standin``, into a fresh folder;
        its JSON line plus the process's wall time (spawn to exit, like a run process's) and sampled memory."""
        out = self.args.workdir / f"notebook-{scenario}"
        shutil.rmtree(out, ignore_errors=True)
        # Its own local-mode JVM, as the notebook had: never a Spark Connect server the project's runs may share.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CRYPTO_", "BINANCE_", "SPARK_REMOTE", "SPARK_CONNECT"))}  # fmt: skip
        env.update({"SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"), "PYTHONUNBUFFERED": "1"})
        cmd = [sys.executable, "-m", "crypto_assets_tests.notebook_baseline", "--data-url", standin.data_url,
               "--listing-url", standin.listing_url, "--interval", interval, "--months", f"{months[0]}..{months[-1]}",
               "--out", str(out)]  # fmt: skip
        self._serial += 1
        stdout_path = self.logs / f"{self._serial:02d}-{scenario}-notebook.json"
        log_path = stdout_path.with_suffix(".log")
        log(f"{scenario}: notebook method (log {log_path})")
        standin.reset_stats()
        started = time.perf_counter()
        with open(stdout_path, "wb") as stdout, open(log_path, "wb") as stderr:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=stdout, stderr=stderr)
            sampler = TreeSampler(proc.pid)
            sampler.start()
            try:
                code = proc.wait(timeout=self.args.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = -9
            finally:
                sampler.stop()
        wall = time.perf_counter() - started
        lines = [json.loads(x) for x in stdout_path.read_text().splitlines() if x.startswith("{")]
        if code != 0 or not lines:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the notebook method exited with {code}; last lines of {log_path}:\n{tail}")
        if not self.args.keep:
            shutil.rmtree(out, ignore_errors=True)
        stats = standin.stats()
        python_mb = sampler.peaks.get(proc.pid, ("", 0))[1] / 1024
        jvm_mb = sampler.peak_kb("java") / 1024
        return {**lines[-1], "wall_seconds": wall, "requests": stats["requests"], "zip_bytes": stats["zip_bytes"],
                "python_peak_mb": python_mb, "jvm_peak_mb": jvm_mb, "peak_mb": python_mb + jvm_mb}  # fmt: skip

    def machine_limit(self, scenario: str, data_dir: Path) -> dict:
        """What the machine needs, measured alone, just to inflate the scenario's zips (zlib, this process, 1 and 2
        threads) and to write its Parquet bytes (a copy of its Parquet files, fsynced)."""
        # Where each member's deflate stream lies, found beforehand (this pass also puts the zips in the page cache).
        zips: list[tuple[Path, list[tuple[int, int, int]]]] = []
        for path in sorted((data_dir / "raw").rglob("*.zip")):
            data = path.read_bytes()
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = []
                for info in archive.infolist():
                    # The local header's file name and extra field lengths, which may differ from the central's.
                    lengths = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
                    begin = info.header_offset + 30 + sum(lengths)
                    members.append((begin, info.compress_size, info.file_size))
            zips.append((path, members))

        def inflate(entry: tuple[Path, list[tuple[int, int, int]]]) -> int:
            path, members = entry
            data = memoryview(path.read_bytes())
            return sum(len(zlib.decompress(data[begin : begin + size], -15, out)) for begin, size, out in members)

        timings = {}
        started = time.perf_counter()
        inflated = sum(map(inflate, zips))
        timings[1] = time.perf_counter() - started
        # zlib releases the GIL while it inflates: two threads can use both cores. The pool is started outside the
        # stopwatch, and hands out small chunks so that a few big 1m archives still go to both threads.
        with ThreadPool(2) as pool:
            started = time.perf_counter()
            inflated = sum(pool.imap_unordered(inflate, zips, chunksize=max(1, len(zips) // 64)))
            timings[2] = time.perf_counter() - started
        parquet = sorted((data_dir / "parquet").rglob("*.parquet"))
        target = self.args.workdir / f"limit-{scenario}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        started = time.perf_counter()
        for i, path in enumerate(parquet):
            copy = target / f"{i:06d}.parquet"
            shutil.copyfile(path, copy)
            with open(copy, "rb+") as f:
                os.fsync(f.fileno())
        folder = os.open(target, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        write_s = time.perf_counter() - started
        shutil.rmtree(target, ignore_errors=True)
        line = {"kind": "phase", "scenario": scenario, "phase": "limit", "zips": len(zips),
                "zip_bytes": sum(p.stat().st_size for p, _ in zips), "inflated_bytes": inflated,
                "inflate_seconds_1_thread": timings[1], "inflate_seconds_2_threads": timings[2],
                "parquet_files": len(parquet), "parquet_bytes": sum(p.stat().st_size for p in parquet),
                "parquet_write_seconds": write_s,
                "limit_seconds": min(timings.values()) + write_s}  # fmt: skip
        emit(_rounded(line))
        return line

    def against_notebook(self, scenario: str, raw: dict, summary: dict, notebook: dict, csv_target: bool) -> list[dict]:
        """The notebook line, the machine's limit and the disk of the scenario's lake; their targets."""
        project_s, report_s = _project_seconds(raw)
        ratio = _ratio(notebook["wall_seconds"], project_s)
        stretch = ratio is not None and ratio >= 5
        figures = {k: v for k, v in notebook.items() if k != "kind"}
        emit(_rounded({"kind": "phase", "scenario": scenario, "phase": "notebook", **figures,
                       "project_seconds": project_s, "project_report_seconds": report_s,
                       "project_rows": summary["rows"], "ratio_notebook_to_project": ratio,
                       "stretch_5x_met": stretch}))  # fmt: skip
        log(
            f"{scenario}: notebook {notebook['wall_seconds']:.1f} s, project {project_s:.1f} s: {ratio or 0:.2f}x "
            f"(3x {'met' if ratio and ratio >= 3 else 'missed'}, 5x {'met' if stretch else 'missed'})"
        )
        data_dir = raw["data_dir"]
        limit = self.machine_limit(scenario, data_dir)
        disk = {"zips": sum(p.stat().st_size for p in (data_dir / "raw").rglob("*.zip")),
                "csv": sum(p.stat().st_size for p in (data_dir / "csv").rglob("*") if p.is_file()),
                "parquet": limit["parquet_bytes"]}  # fmt: skip
        summary.update({"project_seconds": project_s, "notebook_seconds": notebook["wall_seconds"],
                        "notebook_phase_seconds": notebook["seconds"], "ratio_notebook_to_project": ratio,
                        "disk_bytes": disk, "csv_to_zip_bytes": _ratio(disk["csv"], disk["zips"]),
                        "limit": {k: v for k, v in limit.items()
                                  if k not in ("kind", "scenario", "phase")}})  # fmt: skip
        targets = [_target(f"{scenario}.project_3x_faster_than_notebook", ratio, 3, ">=",
                           f"notebook {notebook['wall_seconds']:.1f} s / project {project_s:.1f} s (the pair_universe "
                           f"and monthly backfill run processes; the dataset_report run, {report_s:.1f} s, not "
                           f"counted); 5x stretch {'met' if stretch else 'not met'}; machine limit "
                           f"{limit['limit_seconds']:.2f} s")]  # fmt: skip
        if csv_target:
            targets.append(_target(f"{scenario}.csv_on_disk_within_1_5x_zips", summary["csv_to_zip_bytes"], 1.5,
                                   "<=", f"csv/ {disk['csv'] / MB:.1f} MB vs raw/ zips {disk['zips'] / MB:.1f} MB "
                                   "(every file under csv/, the .zip files under raw/)"))  # fmt: skip
        return targets

    # --- scenarios ---------------------------------------------------------------------------------------------------
    def study_dataset(self) -> None:
        from crypto_assets_tests.binance_standin import Market, StandIn

        a = self.args
        months = _month_span(a.end_month, a.s_months)
        config = {"pairs": a.s_pairs, "interval": STUDY_INTERVAL, "latency_ms": a.latency_ms, "workers": a.workers}
        market = Market.synthetic(a.s_pairs, months[0], months[-1])
        started = time.perf_counter()
        built = market.warm(STUDY_INTERVAL, months)
        emit(_rounded({"kind": "phase", "scenario": "S", "phase": "standin_warm", "pairs": a.s_pairs,
                       "months": len(months), "interval": STUDY_INTERVAL, "archives": built,
                       "seconds": time.perf_counter() - started}))  # fmt: skip
        with StandIn(market, latency=a.latency_ms / 1000, page_size=1000) as standin:
            log(f"S: the study, {a.s_pairs} pairs x {len(months)} months x {STUDY_INTERVAL}, {a.latency_ms} ms")
            raw_s = self.run_scenario("S", standin, a.workdir / "lake-s", STUDY_INTERVAL, months)
            notebook = self.run_notebook("S", standin, STUDY_INTERVAL, months)
        summary = self.report_scenario("S", raw_s, config)
        self.finish_scenario("S", summary, self.against_notebook("S", raw_s, summary, notebook, csv_target=False))

    def main_dataset(self, selected: set[str]) -> None:
        from crypto_assets_tests.binance_standin import Market, StandIn

        a = self.args
        months = _month_span(a.end_month, a.months)
        config = {"pairs": a.pairs, "interval": a.interval, "latency_ms": a.latency_ms, "workers": a.workers}
        data_dir = a.workdir / "lake"
        market = Market.synthetic(a.pairs, months[0], months[-1])
        started = time.perf_counter()
        built = market.warm(a.interval, months)
        emit(_rounded({"kind": "phase", "scenario": "A", "phase": "standin_warm", "pairs": a.pairs,
                       "months": len(months), "interval": a.interval, "archives": built,
                       "seconds": time.perf_counter() - started}))  # fmt: skip
        with StandIn(market, latency=a.latency_ms / 1000, page_size=1000) as standin:
            log(f"A: cold, {a.pairs} pairs x {len(months)} months x {a.interval}, {a.latency_ms} ms per request")
            raw_a = self.run_scenario("A", standin, data_dir, a.interval, months)
            notebook = self.run_notebook("A", standin, a.interval, months)
            summary_a = self.report_scenario("A", raw_a, config)
            targets = self.against_notebook("A", raw_a, summary_a, notebook, csv_target=True)
            bound = summary_a["download_latency_bound_seconds"]
            targets.append(_target("A.download_within_2x_latency_bound", summary_a["download_ratio_to_latency_bound"],
                                   2, "<=", f"raw_monthly_klines {summary_a['seconds_per_asset']['raw_monthly_klines']}"
                                   f" s vs bound {bound} s = requests x latency / workers"))  # fmt: skip
            if a.months > 1:
                middle = months[len(months) // 2]
                one = self.parquet_one_month(
                    "A", data_dir, a.interval, middle, summary_a["seconds_per_asset"]["parquet_candles"], len(months)
                )
                targets.append(_target(f"A.parquet_{len(months)}_months_under_3x_one_month", one["ratio_all_to_one"],
                                       3, "<", f"{len(months)} months in one run vs {middle} alone"))  # fmt: skip
            self.finish_scenario("A", summary_a, targets)

            if "B" in selected:
                log("B: warm, the same again (nothing new upstream)")
                raw_b = self.run_scenario("B", standin, data_dir, a.interval, months)
                summary_b = self.report_scenario("B", raw_b, config)
                self.finish_scenario("B", summary_b, [
                    _target("B.downloads_zero_archive_bytes", summary_b["bytes_downloaded"], 0, "==",
                            "zip body bytes the stand-in sent during B"),
                    _target("B.costs_under_15pct_of_A", _ratio(summary_b["seconds"], summary_a["seconds"]), 0.15, "<",
                            f"{summary_b['seconds']:.1f} s vs {summary_a['seconds']:.1f} s"),
                ])  # fmt: skip

            if "D" in selected:
                new = str(Month.parse(months[-1]).next())
                d_months = [*months, new]
                log(f"D: Binance publishes {new}; the end month moves to it ({a.d_range} range)")
                standin.publish_monthly(new)
                after = Month.parse(new).next().first_day.isoformat()
                if market.today < after:
                    standin.set_today(after)
                started = time.perf_counter()
                built = market.warm(a.interval, [new])
                emit(_rounded({"kind": "phase", "scenario": "D", "phase": "standin_warm", "month": new,
                               "archives": built, "seconds": time.perf_counter() - started}))  # fmt: skip
                from crypto_assets.layout import Layout

                layout = Layout.at(data_dir, a.interval)
                roots = {"parquet": layout.parquet_root, "csv": layout.root / "csv" / "spot" / a.interval,
                         "raw": layout.root / "raw" / "spot" / a.interval}  # fmt: skip
                new_dirs = {"parquet": layout.parquet_dir(Month.parse(new)), "csv": layout.csv_dir(Month.parse(new)),
                            "raw": layout.raw_dir(Month.parse(new))}  # fmt: skip
                before = {k: _snapshot(root) for k, root in roots.items()}
                run_months = d_months if a.d_range == "full" else [new]
                raw_d = self.run_scenario("D", standin, data_dir, a.interval, d_months, run_months)
                after = {k: _snapshot(root) for k, root in roots.items()}
                changed = {}
                for kind in roots:
                    inside = str(new_dirs[kind].relative_to(roots[kind]))
                    diff = {p for p in before[kind].keys() | after[kind].keys()
                            if before[kind].get(p) != after[kind].get(p)}  # fmt: skip
                    changed[kind] = sorted(p for p in diff if not p.startswith(inside + os.sep))
                new_parquet = [
                    p
                    for p in after["parquet"]
                    if p.startswith(str(new_dirs["parquet"].relative_to(roots["parquet"])) + os.sep)
                    and p.endswith(".parquet")
                ]
                emit({"kind": "phase", "scenario": "D", "phase": "rewrites", "new_month": new,
                      "run_months": f"{run_months[0]}..{run_months[-1]}", "new_month_parquet_files": len(new_parquet),
                      "parquet_files_changed_outside_new_month": len(changed["parquet"]),
                      "csv_files_changed_outside_new_month": len(changed["csv"]),
                      "raw_files_changed_outside_new_month": len(changed["raw"]),
                      "examples": {k: v[:5] for k, v in changed.items() if v}})  # fmt: skip
                summary_d = self.report_scenario("D", raw_d, {**config, "range": a.d_range})
                self.finish_scenario("D", summary_d, [
                    _target("D.costs_under_15pct_of_A", _ratio(summary_d["seconds"], summary_a["seconds"]), 0.15, "<",
                            f"{summary_d['seconds']:.1f} s vs {summary_a['seconds']:.1f} s"),
                    _target("D.rewrites_only_the_new_month",
                            len(changed["parquet"]) + (0 if new_parquet else 1), 0, "==",
                            f"{len(changed['parquet'])} Parquet files changed outside {new}; "
                            f"{len(new_parquet)} written in {new}"),
                ])  # fmt: skip

    def fine_dataset(self) -> None:
        from crypto_assets_tests.binance_standin import Market, StandIn

        a = self.args
        months = _month_span(a.end_month, a.c_months)
        latency = a.latency_ms if a.c_latency_ms is None else a.c_latency_ms
        config = {"pairs": a.c_pairs, "interval": a.c_interval, "latency_ms": latency, "workers": a.workers}
        market = Market.synthetic(a.c_pairs, months[0], months[-1])
        log(f"C: building {a.c_pairs} x {len(months)} {a.c_interval} archives in the stand-in")
        started = time.perf_counter()
        built = market.warm(a.c_interval, months)
        emit(_rounded({"kind": "phase", "scenario": "C", "phase": "standin_warm", "pairs": a.c_pairs,
                       "months": len(months), "interval": a.c_interval, "archives": built,
                       "seconds": time.perf_counter() - started}))  # fmt: skip
        data_dir = a.workdir / "lake-c"
        with StandIn(market, latency=latency / 1000, page_size=1000) as standin:
            log(f"C: {a.c_pairs} pairs x {len(months)} months x {a.c_interval}")
            raw_c = self.run_scenario("C", standin, data_dir, a.c_interval, months)
            notebook = self.run_notebook("C", standin, a.c_interval, months)
        summary_c = self.report_scenario("C", raw_c, config)
        targets = self.against_notebook("C", raw_c, summary_c, notebook, csv_target=True)
        if "A" in self.summaries:
            targets.append(_target("C.rows_per_s_within_2x_of_A",
                                   _ratio(summary_c["rows_per_s"], self.summaries["A"]["rows_per_s"]), 0.5, ">=",
                                   f"C {summary_c['rows_per_s']:.0f} rows/s vs A "
                                   f"{self.summaries['A']['rows_per_s']:.0f} rows/s (scenario wall time)"))  # fmt: skip
        self.finish_scenario("C", summary_c, targets)

    def futures_dataset(self) -> None:
        """U: USD-M perpetuals with their funding, cold, in a lake of their own; per archive against A."""
        from crypto_assets_tests.binance_standin import FUNDING, Market, StandIn

        a = self.args
        contracts = a.u_contracts or a.pairs
        months = _month_span(a.end_month, a.months)
        config = {"pairs": contracts, "market": FUTURES_MARKET, "interval": a.interval, "latency_ms": a.latency_ms,
                  "workers": a.workers}  # fmt: skip
        market = Market.synthetic(0, months[0], months[-1], contracts=contracts)
        log(f"U: building {contracts} x {len(months)} {a.interval} kline and funding archives in the stand-in")
        started = time.perf_counter()
        built = {"klines": market.warm(a.interval, months, futures=FUTURES_MARKET),
                 "funding": market.warm(FUNDING, months, futures=FUTURES_MARKET)}  # fmt: skip
        emit(_rounded({"kind": "phase", "scenario": "U", "phase": "standin_warm", "contracts": contracts,
                       "months": len(months), "interval": a.interval, "archives": built,
                       "seconds": time.perf_counter() - started}))  # fmt: skip
        with StandIn(market, latency=a.latency_ms / 1000, page_size=1000) as standin:
            log(f"U: cold, {contracts} {FUTURES_MARKET} perpetuals x {len(months)} months x {a.interval}, "
                f"{a.latency_ms} ms per request")  # fmt: skip
            raw_u = self.run_scenario("U", standin, a.workdir / "lake-u", a.interval, months, market=FUTURES_MARKET)
        summary_u = self.report_scenario("U", raw_u, config)
        targets = []
        if "A" in self.summaries:
            summary_a = self.summaries["A"]
            u, base = summary_u["seconds_per_archive"], summary_a["seconds_per_archive"]
            by_asset = ", ".join(f"{n} {k}" for k, n in summary_u["archives_by_asset"].items())
            # Funding archives are small (a few hundred rows): per kline archive alone is said too, not judged.
            klines = _ratio(summary_u["seconds_per_kline_archive"], summary_a["seconds_per_kline_archive"])
            targets.append(_target(
                "U.cost_per_archive_within_1_25x_of_A", _ratio(u, base), 1.25, "<=",
                f"U {u or 0:.4f} s/archive ({summary_u['seconds']:.1f} s / {summary_u['archives']} archives: "
                f"{by_asset}) vs A {base or 0:.4f} s/archive ({summary_a['seconds']:.1f} s / "
                f"{summary_a['archives']} archives); per kline archive U/A = {klines or 0:.2f}",
            ))  # fmt: skip
        self.finish_scenario("U", summary_u, targets)


def _project_seconds(raw: dict) -> tuple[float, float]:
    """(wall of the pair_universe and monthly backfill runs' processes, that of the dataset_report run): what a user
    waits for the lake, and the report after it. With one process per scenario the report run's own wall time is
    taken out of its process's."""
    project = report = 0.0
    for process in raw["processes"]:
        in_report = sum(r["wall_seconds"] for r in process["runs"] if r["label"] == "report")
        if all(r["label"] == "report" for r in process["runs"]):
            report += process["wall_seconds"]
        else:
            project += process["wall_seconds"] - in_report
            report += in_report
    return project, report


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def _target(name: str, value: float | None, limit: float, op: str, detail: str = "") -> dict:
    checks = {"<": lambda v: v < limit, "<=": lambda v: v <= limit, ">=": lambda v: v >= limit,
              "==": lambda v: v == limit}  # fmt: skip
    passed = None if value is None else bool(checks[op](value))
    result = "n/a" if passed is None else "pass" if passed else "FAIL"
    return {"name": name, "value": _round(value), "op": op, "limit": limit, "result": result, "passed": passed,
            "detail": detail}  # fmt: skip


def _rounded(record: dict) -> dict:
    def fix(value):
        if isinstance(value, float):
            return round(value, 3)
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    return fix(record)


def machine_info() -> dict:
    model = "?"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        memory = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))) // 1024
    except (OSError, StopIteration):
        memory = None
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        java = None
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_mb": memory, "load_avg": os.getloadavg(),
            "python": platform.python_version(), "java": java, "platform": platform.platform()}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="all", help="comma list of S,A,B,C,D,U or 'all' (B and D imply A)")
    p.add_argument("--s-pairs", type=int, default=100, help="pairs of the study S (default 100)")
    p.add_argument("--s-months", type=int, default=15, help="months of S (default 15: 2024-10..2025-12)")
    p.add_argument("--pairs", type=int, default=600, help="pairs of the A/B/D market (default 600)")
    p.add_argument("--months", type=int, default=15, help="months of A/B (default 15: 2024-10..2025-12)")
    p.add_argument("--end-month", default="2025-12", help="last month of S/A/B/C (D adds the month after it)")
    p.add_argument("--interval", default="4h", help="kline interval of A/B/D (default 4h)")
    p.add_argument("--latency-ms", type=float, default=50.0, help="stand-in latency per request, S/A/B/D (default 50)")
    p.add_argument("--workers", type=int, default=64, help="CRYPTO_DOWNLOAD_WORKERS (default 64)")
    p.add_argument("--c-pairs", type=int, default=50, help="pairs of C (default 50)")
    p.add_argument("--c-months", type=int, default=3, help="months of C (default 3)")
    p.add_argument("--c-interval", default="1m", help="interval of C (default 1m)")
    p.add_argument("--c-latency-ms", type=float, default=None, help="latency of C (default: --latency-ms)")
    p.add_argument("--u-contracts", type=int, default=None,
                   help="USD-M perpetuals of U (default: --pairs); its months and interval are A's")  # fmt: skip
    p.add_argument(
        "--d-range",
        choices=("full", "new"),
        default="full",
        help="D backfills the whole range with the new month (full, default) or the new month only",
    )
    p.add_argument(
        "--process-per",
        choices=("run", "scenario"),
        default="run",
        help="a fresh process per Dagster run (default, like the UI's run launcher) or per scenario",
    )
    p.add_argument("--spark-master", default="local[*]", help="SPARK_MASTER of the runs (default local[*])")
    p.add_argument("--spark-conf", default="", help="CRYPTO_SPARK_CONF of the runs (JSON)")
    p.add_argument("--spark-remote", choices=("auto", "off"), default="auto",
                   help="auto: the project's runs share one Spark Connect server, as under `make ui` (default); "
                        "off: each run starts its own local-mode Spark")  # fmt: skip
    p.add_argument("--workdir", type=Path, default=None, help="where lakes, the instance and logs go (default: temp)")
    p.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    p.add_argument("--profile", action="store_true", help="cProfile each run (main thread) into WORKDIR/profiles")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per run process")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return args
    chosen = ALL_SCENARIOS if args.scenario.strip().lower() == "all" else tuple(
        s.strip().upper() for s in args.scenario.split(",") if s.strip())  # fmt: skip
    unknown = set(chosen) - set(ALL_SCENARIOS)
    if unknown or not chosen:
        p.error(f"--scenario {args.scenario!r}: expected a comma list of S, A, B, C, D, U or 'all'")
    args.selected = set(chosen) | ({"A"} if {"B", "D"} & set(chosen) else set())
    if min(args.pairs, args.months, args.c_pairs, args.c_months, args.s_pairs, args.s_months, args.workers,
           args.u_contracts or 1) < 1:  # fmt: skip
        p.error("--pairs, --months, --c-pairs, --c-months, --s-pairs, --s-months, --u-contracts and --workers must be "
                "at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    temporary = args.workdir is None
    args.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="crypto-bench-")).resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    if info["load_avg"][0] > 1.5:
        log(f"WARNING: load average {info['load_avg'][0]:.2f}: other work shares the CPUs, figures will be noisy")
    emit({"kind": "machine", **info, "scenarios": sorted(args.selected), "workdir": str(args.workdir),
          "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "selected", "workdir")}})  # fmt: skip
    bench = Bench(args)
    started = time.perf_counter()
    try:
        if args.spark_remote == "auto":
            bench.start_spark_server()
        if "S" in args.selected:
            bench.study_dataset()
        if "A" in args.selected:
            bench.main_dataset(args.selected)
        if "U" in args.selected:
            bench.futures_dataset()
        if "C" in args.selected:
            bench.fine_dataset()
    finally:
        bench.stop_spark_server()
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
        else:
            log(f"kept {args.workdir}")
    measured = [t for t in bench.targets if t["passed"] is not None]
    emit({"kind": "targets", "all_passed": bool(measured) and all(t["passed"] for t in measured),
          "seconds": round(time.perf_counter() - started, 1), "load_avg_end": os.getloadavg(),
          "targets": bench.targets})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
