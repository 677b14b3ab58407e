"""Start and stop the real `dagster dev` (webserver + daemon) the way `make ui` does, and talk to it over GraphQL.

    with DagsterDev(tmp_path, env) as dev:
        dev.graphql("{ version }")
        run_id = dev.launch_run(["pair_universe"])
        assert dev.wait_run(run_id) == "SUCCESS"

`dagster dev` runs in a new session (its own process group): a shell or a test runner cannot then leave it ignoring
SIGINT, and stopping it is one SIGINT to the group - what Ctrl-C does in a terminal. On exit every process of the
tree (webserver, daemon, code servers, runs, Spark JVMs) is recorded first, then proven gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
ASSET_JOB = "__ASSET_JOB"
REPOSITORY = "__repository__"
# Runs and backfills end in one of these; anything else is still going.
RUN_DONE = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
BACKFILL_OK = {"COMPLETED", "COMPLETED_SUCCESS"}
# Every process started under dagster dev inherits this variable: how the stop finds all of them.
MARKER_NAME = "DAGSTER_DEV_HARNESS_ID"


class DagsterDevError(RuntimeError):
    """dagster dev did not start, a GraphQL call failed, or a run/backfill did not finish as expected."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_home(home: Path) -> Path:
    """A DAGSTER_HOME with the repo's dagster.yaml (telemetry and the first-run pop-up off, one Spark run at a time)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def env_file_conflicts(env: Mapping[str, str]) -> list[str]:
    """Pipeline variables the repo's `.env` sets to another value than ``env``: the Dagster CLI loads `.env` *over*
    the process environment, so the run would silently see the `.env` value (e.g. the real Binance URLs)."""
    path = REPO_ROOT / ".env"
    if not path.exists():
        return []
    from dotenv import dotenv_values  # a dependency of dagster

    prefixes = ("BINANCE_", "CRYPTO_", "SPARK_", "DAGSTER_")
    return sorted(
        f"{key}={value!r} (passed: {env.get(key)!r})"
        for key, value in dotenv_values(path).items()
        if key.startswith(prefixes) and value is not None and value != env.get(key, "")
    )


def pipeline_env(binance: Mapping[str, str], data_dir: Path, months: Sequence[str], symbols: Sequence[str] = (),
                 **extra: str) -> dict[str, str]:  # fmt: skip
    """This process's environment, without pipeline settings of its own, plus the pipeline pointed at ``binance``
    (the three BINANCE_* URLs) and ``data_dir`` for ``months`` (first..last); mode `symbols` when ``symbols``."""
    own = ("BINANCE_", "CRYPTO_", "SPARK_MASTER", "SPARK_REMOTE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return {
        **env,
        **binance,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "CRYPTO_DATA_DIR": str(data_dir),
        "CRYPTO_INTERVAL": "4h",
        "CRYPTO_START_MONTH": months[0],
        "CRYPTO_END_MONTH": months[-1],
        "CRYPTO_PAIR_MODE": "symbols" if symbols else "historical-usdt",
        "CRYPTO_SYMBOLS": ",".join(symbols),
        "CRYPTO_DOWNLOAD_WORKERS": "8",
        **extra,
    }


# ---- processes -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    start: int  # clock ticks since boot: tells a live process from a later one that reused its pid
    cmdline: str


def process_table() -> dict[int, Proc]:
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
        if fields[0] == "Z":  # a zombie has already exited; only its parent's wait() is missing
            continue
        table[int(entry.name)] = Proc(int(entry.name), int(fields[1]), int(fields[3]), int(fields[19]), cmdline)
    return table


def has_marker(pid: int, marker: bytes) -> bool:
    """Whether process ``pid`` was started with ``marker`` (b"NAME=value") in its environment."""
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def processes_with_env(entry: str) -> list[Proc]:
    """Every live process started with ``entry`` (``NAME=value``) in its environment, e.g. a DAGSTER_HOME."""
    marker = entry.encode()
    return sorted((p for p in process_table().values() if has_marker(p.pid, marker)), key=lambda p: p.pid)


def process_tree(root: int, marker: str | None = None) -> list[Proc]:
    """``root`` and its descendants, plus every process of its session or carrying ``marker`` (``NAME=value``) in
    its environment: that also finds children that were re-parented or started their own session."""
    table = process_table()
    tree, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        if pid in table and pid not in tree:
            tree[pid] = table[pid]
            frontier += [p.pid for p in table.values() if p.ppid == pid]
    tree.update({p.pid: p for p in table.values() if p.sid == root})
    if marker:
        tree.update({p.pid: p for p in table.values() if has_marker(p.pid, marker.encode())})
    return sorted(tree.values(), key=lambda p: p.pid)


def alive(procs: Sequence[Proc]) -> list[Proc]:
    table = process_table()
    return [p for p in procs if p.pid in table and table[p.pid].start == p.start]


@dataclass
class StopReport:
    """What was running just before the stop, and what was still alive after it (must be empty)."""

    processes: list[Proc] = field(default_factory=list)
    survivors: list[Proc] = field(default_factory=list)
    seconds: float = 0.0


# ---- GraphQL ---------------------------------------------------------------------------------------------------


def asset_path(key: str) -> list[str]:
    """An asset key as GraphQL's ``path``: ``um/contract_universe`` -> ``["um", "contract_universe"]``."""
    return key.split("/")


class DagsterGraphQL:
    """A client of a running Dagster webserver's GraphQL API (``url`` like ``http://127.0.0.1:3000``)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self._location: str | None = None

    def graphql(self, query: str, variables: Mapping | None = None, timeout: float = 60) -> dict:
        """POST to /graphql; returns ``data`` or raises with the GraphQL errors."""
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": dict(variables or {})},
                                 timeout=timeout)  # fmt: skip
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if not response.ok or body.get("errors") or "data" not in body:
            raise DagsterDevError(f"GraphQL {response.status_code}: {body.get('errors') or response.text[:2000]}")
        return body["data"]

    def answers(self, path: str = "/server_info") -> bool:
        try:
            return requests.get(self.url + path, timeout=5).ok
        except requests.RequestException:
            return False

    def location_loaded(self) -> str | None:
        """The name of the code location once every location is loaded; None while loading; raises on a load error."""
        entries = self.graphql(
            """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
                 locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        )["workspaceOrError"]["locationEntries"]
        loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
        errors = [e["locationOrLoadError"] for e in loaded
                  if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]  # fmt: skip
        if errors:
            raise DagsterDevError("the code location failed to load:\n" + "\n".join(e["message"] for e in errors))
        if entries and len(loaded) == len(entries):
            self._location = loaded[0]["name"]
            return self._location
        return None

    def wait_ready(self, timeout: float = 120.0, alive: Callable[[], None] = lambda: None) -> None:
        """Wait for GET /server_info, then for the code location to be loaded (or fail with its load error).
        ``alive`` is called while waiting and raises when the server process is known to be gone."""
        deadline = time.monotonic() + timeout
        while not self.answers("/server_info"):
            alive()
            if time.monotonic() > deadline:
                raise DagsterDevError(f"{self.url}/server_info did not answer within {timeout:.0f} s")
            time.sleep(0.5)
        while self.location_loaded() is None:
            alive()
            if time.monotonic() > deadline:
                raise DagsterDevError(f"the code location did not load within {timeout:.0f} s")
            time.sleep(0.5)

    @property
    def location(self) -> str:
        if self._location is None:
            raise DagsterDevError("the code location is not known before wait_ready()")
        return self._location

    def launch_run(self, asset_keys: Sequence[str], *, partition: str | None = None,
                   run_config: Mapping | None = None) -> str:  # fmt: skip
        """Materialize ``asset_keys`` (one partition, or unpartitioned) as one run of the implicit asset job. A key
        with a prefix is written as the UI writes it: ``um/contract_universe``."""
        tags = [{"key": "dagster/partition", "value": partition}] if partition else []
        data = self.graphql(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                 __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message }
                 ... on PythonError { stack } ... on RunConfigValidationInvalid { errors { message } } } }""",
            {"params": {
                "selector": {"repositoryLocationName": self.location, "repositoryName": REPOSITORY,
                             "jobName": ASSET_JOB, "assetSelection": [{"path": asset_path(k)} for k in asset_keys]},
                "runConfigData": dict(run_config or {}),
                "executionMetadata": {"tags": tags},
            }},
        )["launchRun"]  # fmt: skip
        if data["__typename"] != "LaunchRunSuccess":
            raise DagsterDevError(f"launchRun {list(asset_keys)} failed: {data}")
        return data["run"]["runId"]

    def launch_backfill(self, asset_keys: Sequence[str], partitions: Sequence[str]) -> str:
        """One asset backfill of ``asset_keys`` (``um/parquet_candles`` for a prefixed key) over ``partitions``."""
        data = self.graphql(
            """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
                 __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message }
                 ... on PythonError { stack } } }""",
            {"params": {"assetSelection": [{"path": asset_path(k)} for k in asset_keys],
                        "partitionNames": list(partitions)}},
        )["launchPartitionBackfill"]
        if data["__typename"] != "LaunchBackfillSuccess":
            raise DagsterDevError(f"launchPartitionBackfill {list(asset_keys)} {list(partitions)} failed: {data}")
        return data["backfillId"]

    def wait_run(self, run_id: str, timeout: float = 360) -> str:
        """Wait for the run to end; returns its status (SUCCESS, FAILURE, CANCELED)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.graphql(
                "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }", {"id": run_id}
            )["runOrError"].get("status")
            if status in RUN_DONE:
                return status
            if time.monotonic() > deadline:
                raise DagsterDevError(f"run {run_id} still {status} after {timeout:.0f} s")
            time.sleep(1)

    def wait_backfill(self, backfill_id: str, timeout: float = 360) -> str:
        """Wait for the backfill to end; returns its status (COMPLETED_SUCCESS, COMPLETED_FAILED, ...)."""
        deadline = time.monotonic() + timeout
        while True:
            backfill = self.graphql(
                """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                     __typename ... on PartitionBackfill { status error { message } } ... on Error { message } } }""",
                {"id": backfill_id},
            )["partitionBackfillOrError"]
            status = backfill.get("status")
            if status in BACKFILL_DONE:
                return status
            if backfill["__typename"] != "PartitionBackfill":
                raise DagsterDevError(f"backfill {backfill_id}: {backfill}")
            if time.monotonic() > deadline:
                raise DagsterDevError(f"backfill {backfill_id} still {status} after {timeout:.0f} s")
            time.sleep(2)

    def run_errors(self, run_id: str) -> str:
        """The ERROR-level messages and step failures of a run, for assertion messages."""
        events = self.graphql(
            """query($id: ID!) { runOrError(runId: $id) { ... on Run { eventConnection(limit: 5000) { events {
                 __typename ... on MessageEvent { message level }
                 ... on ExecutionStepFailureEvent { error { message } } } } } } }""",
            {"id": run_id},
        )["runOrError"]["eventConnection"]["events"]
        lines = [(e.get("error") or {}).get("message") or e["message"] for e in events if e.get("level") == "ERROR"]
        return "\n".join(lines) or "(no ERROR events)"


# ---- dagster dev -----------------------------------------------------------------------------------------------


class DagsterDev(DagsterGraphQL):
    """`dagster dev -h HOST -p PORT` from the repo root with ``env`` and DAGSTER_HOME=``workdir``/dagster_home.

    Output goes to ``workdir``/dagster_dev.log, or to this process's stdout when ``log_to_stdout`` (the demo).
    Entering waits for ``/server_info`` and for the code location to load; leaving stops the whole process group
    with SIGINT and fails if any process of it survives.
    """

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        home: Path | None = None,
        startup_timeout: float = 120.0,
        log_to_stdout: bool = False,
        extra_args: Sequence[str] = (),
    ):
        self.workdir = Path(workdir)
        self.home = Path(home) if home else self.workdir / "dagster_home"
        self.host, self.port = host, port or free_port()
        super().__init__(f"http://{host}:{self.port}")
        self.env = dict(env)
        self.extra_args = list(extra_args)  # e.g. ["-m", "module"]; default: the code location of pyproject.toml
        self.startup_timeout = startup_timeout
        self.log_path = None if log_to_stdout else self.workdir / "dagster_dev.log"
        self.process: subprocess.Popen | None = None
        self.stop_report: StopReport | None = None
        self.harness_id = uuid.uuid4().hex
        self.marker = f"{MARKER_NAME}={self.harness_id}"  # as it appears in /proc/<pid>/environ

    def __enter__(self) -> DagsterDev:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        report = self.stop()
        if report.survivors:
            raise AssertionError(f"dagster dev left processes behind (killed now):\n{_describe(report.survivors)}")

    def start(self) -> None:
        conflicts = env_file_conflicts(self.env)
        if conflicts:
            raise DagsterDevError(
                f"{REPO_ROOT / '.env'} would override what this harness passes to dagster dev (the Dagster CLI "
                f"loads it over the process environment): {', '.join(conflicts)}. Move the .env file aside."
            )
        prepare_home(self.home)
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "DAGSTER_HOME": str(self.home), MARKER_NAME: self.harness_id}
        out = open(self.log_path, "ab") if self.log_path else None
        try:
            self.process = subprocess.Popen(
                [str(DAGSTER), "dev", "-h", self.host, "-p", str(self.port), *self.extra_args],
                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT if out else None,
                start_new_session=True, preexec_fn=_default_stop_signals,
            )  # fmt: skip
        finally:
            if out:
                out.close()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(output went to the console)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout: float | None = None, alive: Callable[[], None] | None = None) -> None:
        """Wait for GET /server_info and the code location; fail early (with the log tail) if dagster dev exits."""
        try:
            super().wait_ready(timeout or self.startup_timeout, alive=alive or self._assert_running)
        except DagsterDevError as exc:
            if "log tail:" in str(exc):
                raise
            raise DagsterDevError(f"{exc}; log tail:\n{self.log_tail()}") from None

    def _assert_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise DagsterDevError(f"dagster dev exited (code {code}); log tail:\n{self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> StopReport:
        """SIGINT to the process group, wait, then make sure nothing of the tree is left (SIGKILL what is)."""
        if self.process is None:
            return self.stop_report or StopReport()
        began = time.monotonic()
        report = StopReport(processes=process_tree(self.process.pid, self.marker))
        try:
            os.killpg(self.process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 30
        while True:
            survivors = list({p.pid: p for p in alive(report.processes) + process_tree(self.process.pid, self.marker)
                              }.values())  # fmt: skip
            if not survivors or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        for p in survivors:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.wait(timeout=10)
        report.survivors, report.seconds = survivors, time.monotonic() - began
        self.process, self.stop_report = None, report
        return report


def _default_stop_signals() -> None:
    """In the child before exec: a parent started in the background (`cmd &`) passes SIGINT/SIGTERM down as
    *ignored*, and dagster dev would then ignore the stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _describe(procs: Sequence[Proc]) -> str:
    return "\n".join(f"  pid {p.pid} (ppid {p.ppid}, sid {p.sid}): {p.cmdline[:200]}" for p in procs)
