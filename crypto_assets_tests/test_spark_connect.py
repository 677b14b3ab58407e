"""The Spark Connect path: runs against a long-lived server write the same Parquet as local mode; a remote that does
not answer fails at once with what to do; the server's CLI starts, reports and stops it without leaving a JVM.

The Connect runs go through the `dagster asset materialize` CLI with SPARK_REMOTE, as a run process of `make ui`
would: pyspark switches a whole process to Connect mode (``pyspark.sql.functions`` then build Connect columns), so
they cannot share this test process with the suite's local-mode session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.universe import pair_universe
from crypto_assets.lake.processes import process_alive
from crypto_assets.lake.spark import spark_conf
from crypto_assets.layout import Layout
from crypto_assets.resources import SparkResource
from crypto_assets.settings import Settings, SettingsError
from crypto_assets_tests.conftest import make_resources, materialize_cli, parquet_rows, run_assets
from crypto_assets_tests.dagster_dev import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "KMDUSDT", "SYRUPUSDT"]
MONTHS = ("2025-02", "2025-03")


def test_connect_parquet_equals_local_mode(standin, tmp_path, spark_resource, spark, spark_connect_server):
    local = make_resources(standin, tmp_path / "local", spark_resource, pair_mode="symbols", symbols=SYMBOLS)
    assert run_assets([pair_universe], local).success
    assert run_assets([raw_monthly_klines, normalized_csv, parquet_candles], local, list(MONTHS)).success

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {
        **os.environ, **standin.env(),
        "DAGSTER_HOME": str(home), "CRYPTO_DATA_DIR": str(tmp_path / "connect"), "CRYPTO_INTERVAL": "4h",
        "CRYPTO_START_MONTH": "2024-10", "CRYPTO_END_MONTH": "2025-12",
        "CRYPTO_PAIR_MODE": "symbols", "CRYPTO_SYMBOLS": ",".join(SYMBOLS),
        "SPARK_REMOTE": spark_connect_server.url,
        # A master nothing listens on: a run that started its own Spark instead of using the server would fail.
        "SPARK_MASTER": f"spark://127.0.0.1:{free_port()}",
    }  # fmt: skip
    cwd = tmp_path / "cwd"  # not the repo: a developer's .env there must not leak into the test
    cwd.mkdir()
    materialize_cli(["--select", "pair_universe"], env, cwd)
    materialize_cli(["--select", "raw_monthly_klines,normalized_csv,parquet_candles",
         "--partition-range", f"{MONTHS[0]}...{MONTHS[-1]}"], env, cwd)  # fmt: skip

    connect_rows = parquet_rows(spark, Layout.at(tmp_path / "connect", "4h").parquet_root)
    local_rows = parquet_rows(spark, Layout.at(tmp_path / "local", "4h").parquet_root)
    assert connect_rows and connect_rows == local_rows
    assert {(r[-2], r[-1]) for r in connect_rows} == {(2025, 2), (2025, 3)}
    assert spark_connect_server.running()  # the runs closed their clients, not the server


_RUN = """
import sys
from crypto_assets.lake.parquet import write_months
from crypto_assets.lake.spark import connect_session, spark_conf
from crypto_assets.layout import Layout
from crypto_assets.months import Month

session = connect_session(sys.argv[1], spark_conf())
written = write_months(lambda: session, Layout.at(sys.argv[2], "4h"), [Month(2025, 1)], force=True)
print(session.session_id, written[Month(2025, 1)].rows)
if len(sys.argv) > 3:  # release the session on the server, as a client that was not told to keep it would
    session.release_session_on_close = True
session.stop()
"""


def test_runs_share_the_server_session_and_read_back_each_others_rewrites(tmp_path, spark_connect_server):
    """Every run on our server joins the one session its URL names (the warm-up's: generated code is compiled once
    for all), and leaves it open; a month that a run rewrites is read back right by the next run in that session
    (Connect's plan cache would hand it the first run's files); a run that finds a session closed gets its own."""
    import uuid

    from crypto_assets.lake.spark import shared_session
    from crypto_assets.lake.warm_up import made_up_lake
    from crypto_assets.months import Month

    shared = shared_session(spark_connect_server.url)
    assert shared and spark_connect_server.url.endswith(f"/;session_id={shared}")
    made_up_lake(tmp_path / "lake", "4h", (Month(2025, 1),), ("AUSDT", "BUSDT"), 3)

    def run(url: str, *release: str) -> tuple[str, int]:
        done = subprocess.run([sys.executable, "-c", _RUN, url, str(tmp_path / "lake"), *release], cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        session, rows = done.stdout.split()
        return session, int(rows)

    assert run(spark_connect_server.url) == run(spark_connect_server.url) == (shared, 2 * 18)
    address = spark_connect_server.url.partition("/;")[0]
    other = str(uuid.uuid4())
    assert run(f"{address}/;session_id={other}", "release") == (other, 36)  # that session is now closed
    own, rows = run(f"{address}/;session_id={other}")
    assert own not in (other, shared) and rows == 36


def test_the_warm_up_keeps_its_made_up_csvs_for_the_next_start_and_writes_the_parquet_again(spark_connect_server):
    """The server's start left its made-up lake beside its pid file; another warm-up reuses those CSVs (no file
    written or deleted) and writes the Parquet again, every made-up row of it."""
    from crypto_assets.lake.warm_up import _SHAPES

    kept = spark_connect_server.state_dir / f"connect-{spark_connect_server.port}.warm-up"
    csvs = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept.rglob("*.csv.gz")}
    assert len(csvs) == sum(len(months) * len(symbols) for _, months, symbols, _, _ in _SHAPES)
    first = {p: p.stat().st_mtime_ns for p in kept.rglob("*.parquet")}
    assert len({p.parent for p in first}) == sum(len(months) for _, months, _, _, _ in _SHAPES)  # every month
    done = subprocess.run([sys.executable, "-m", "crypto_assets.lake.warm_up", spark_connect_server.url, str(kept)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept.rglob("*.csv.gz")} == csvs
    again = {p: p.stat().st_mtime_ns for p in kept.rglob("*.parquet")}
    assert len(again) == len(first) and min(again.values()) > max(first.values())


def test_unreachable_remote_fails_naming_the_url_and_the_fix():
    url = f"sc://127.0.0.1:{free_port()}"
    resource = SparkResource(spark_config=spark_conf(), remote=url)
    with pytest.raises(dg.Failure) as failure:
        resource.spark_session  # noqa: B018 - the property makes the session
    message = failure.value.description
    assert url in message and "make spark" in message and "unset SPARK_REMOTE" in message


@pytest.mark.parametrize("value", ["http://127.0.0.1:15002", "127.0.0.1:15002", "sc://", "sc://host:port"])
def test_spark_remote_must_be_a_connect_url(value):
    with pytest.raises(SettingsError, match=r"SPARK_REMOTE=.*sc://host:port"):
        Settings.from_env({"SPARK_REMOTE": value})


def test_spark_remote_accepts_connect_urls_and_empty():
    assert Settings.from_env({"SPARK_REMOTE": "sc://spark.example:15002"}).spark_remote == "sc://spark.example:15002"
    assert Settings.from_env({"SPARK_REMOTE": ""}).spark_remote == ""


def test_cli_start_status_stop_leaves_no_jvm(tmp_path):
    port = free_port()
    base = [sys.executable, "-m", "crypto_assets.lake.spark_server"]
    opts = ["--port", str(port), "--state-dir", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTO_", "SPARK_REMOTE"))}

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run([*base, command, *opts], env=env, capture_output=True, text=True, timeout=180)

    started = run("start")
    assert started.returncode == 0, started.stderr
    session = (tmp_path / f"connect-{port}.session").read_text()
    assert started.stdout.strip() == f"export SPARK_REMOTE=sc://127.0.0.1:{port}/;session_id={session}"
    pid = int((tmp_path / f"connect-{port}.pid").read_text())
    try:
        assert "SparkConnectServer" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        again = run("start")  # already running: reused, not a second JVM, and its runs keep their session
        assert again.returncode == 0 and again.stdout == started.stdout
        status = run("status")
        assert status.returncode == 0 and "running" in status.stdout, status.stdout
        stopped = run("stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stderr, stopped.stderr
    finally:
        if running(pid, wait=0):
            os.kill(pid, 9)
    assert not running(pid), "the server JVM outlived `stop`"
    assert not (tmp_path / f"connect-{port}.session").exists()
    assert run("status").returncode == 3


def running(pid: int, wait: float = 10.0) -> bool:
    """Whether ``pid`` still runs after up to ``wait`` seconds (exited but not yet reaped by init counts as gone)."""
    deadline = time.monotonic() + wait
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.2)
    return False


_PREFETCH = """
import sys, time
import dagster as dg
from crypto_assets.resources import SparkResource

seen = {}

@dg.asset
def first(spark: SparkResource):
    time.sleep(2)  # a download step: the background import runs meanwhile
    seen["before_spark_step"] = "pyspark.sql.connect.session" in sys.modules

@dg.asset(deps=[first])
def second(spark: SparkResource):
    pass

selection = [first, second] if sys.argv[2] == "two" else [first]
resource = SparkResource(spark_config={}, remote=sys.argv[1])
assert dg.materialize(selection, resources={"spark": resource}).success
print(seen["before_spark_step"])
"""


@pytest.mark.parametrize(("assets", "remote", "imported"), [("two", True, True), ("one", True, False),
                                                             ("two", False, False)])  # fmt: skip
def test_a_connect_run_of_several_assets_imports_the_client_while_its_first_step_runs(tmp_path, assets, remote,
                                                                                       imported):  # fmt: skip
    """The Connect client's import (~0.5 s) overlaps a multi-asset run's first steps; a one-asset run, and a
    local-mode run (whose process must not become a Connect client), do not import it. Nothing connects here: the
    session is made only when a step asks for it."""
    url = f"sc://127.0.0.1:{free_port()}" if remote else ""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _PREFETCH, url, assets], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == str(imported)
