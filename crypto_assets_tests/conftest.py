"""Shared fixtures: the local Binance stand-in, a lake folder, real resources pointed at both, and a way to run
assets for one month or as one single-run backfill (the same code path the UI uses)."""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from crypto_assets.resources import BinanceResource, LakeResource, SparkResource, UniverseResource
from crypto_assets_tests.binance_standin import Market, StandIn

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


# Seconds a test's setup, call or teardown may take before it fails with a traceback (a hang must not stall CI):
# CRYPTO_TEST_TIMEOUT overrides; tests marked e2e (dagster dev, a browser, a backfill fixture) get three times as much.
TEST_TIMEOUT = float(os.environ.get("CRYPTO_TEST_TIMEOUT", "300"))


class PhaseTimeout(Exception):
    """A test phase ran past its timeout; every thread's stack was dumped to stderr just before."""


def _phase_timeout(item) -> float:
    return TEST_TIMEOUT * (3 if item.get_closest_marker("e2e") else 1)


def _guarded(item, phase: str):
    """Arm SIGALRM for one phase: dump every thread's stack, then raise PhaseTimeout in the main thread."""
    seconds = _phase_timeout(item)
    if seconds <= 0 or not hasattr(signal, "SIGALRM"):
        return None

    def expired(signum, frame):
        raise PhaseTimeout(f"{item.nodeid} {phase} ran past {seconds:.0f} s (CRYPTO_TEST_TIMEOUT); stacks above")

    previous = signal.signal(signal.SIGALRM, expired)
    faulthandler.dump_traceback_later(seconds, file=sys.stderr)  # every thread, even one stuck in C code
    signal.setitimer(signal.ITIMER_REAL, seconds + 0.5)
    return previous


def _disarm(previous) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    faulthandler.cancel_dump_traceback_later()
    signal.signal(signal.SIGALRM, previous)


def _with_timeout(phase: str):
    """A hook wrapper that arms the timeout around one phase (setup, call, teardown) of every test."""

    @pytest.hookimpl(hookwrapper=True)
    def hook(item):
        previous = _guarded(item, phase)
        try:
            yield
        finally:
            if previous is not None:
                _disarm(previous)

    return hook


pytest_runtest_setup = _with_timeout("setup")
pytest_runtest_call = _with_timeout("call")
pytest_runtest_teardown = _with_timeout("teardown")


def pytest_configure(config):
    # The whole suite runs in a time zone with DST, as a user's laptop might: nothing may depend on it. Spark's JVM
    # and every subprocess inherit it, unless the project pins UTC - which is what the tests prove.
    os.environ["TZ"] = "America/New_York"
    time.tzset()


@pytest.fixture
def market() -> Market:
    return Market.default()


@pytest.fixture
def standin(market):
    with StandIn(market, page_size=5) as server:
        yield server


class KeepAliveSparkResource(SparkResource):
    """The real Spark resource, but the session outlives a run so the suite starts one JVM, not one per test."""

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        pass


@pytest.fixture(scope="session")
def spark_resource():
    from crypto_assets.lake.spark import spark_conf

    resource = KeepAliveSparkResource(spark_config=spark_conf("local[2]"))
    yield resource
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


@pytest.fixture(scope="session")
def spark_connect_server(tmp_path_factory):
    """One Spark Connect server (the lake's settings, local[2]) for the tests that ask for it, on a free port;
    stopped at the end of the session, and proven gone. The rest of the suite stays on local mode."""
    from crypto_assets.lake.processes import process_alive
    from crypto_assets.lake.spark import spark_conf
    from crypto_assets.lake.spark_server import SparkConnectServer
    from crypto_assets_tests.dagster_dev import free_port

    server = SparkConnectServer(free_port(), tmp_path_factory.mktemp("spark-connect"))
    server.start(spark_conf("local[2]"))
    pid = server.pid()
    yield server
    server.stop()
    assert not process_alive(pid), f"the Spark Connect server JVM (pid {pid}) outlived its stop"


@pytest.fixture(scope="session")
def spark(spark_resource):
    """The suite's SparkSession (the one KeepAliveSparkResource's runs reuse), to read results back."""
    from crypto_assets.lake.spark import build_session, spark_conf

    return build_session(spark_conf("local[2]"))


def make_resources(standin: StandIn, data_dir, spark_resource=None, *, pair_mode: str | None = None,
                   symbols: list[str] | None = None, **lake) -> dict:  # fmt: skip
    """Resources on the stand-in and a lake at ``data_dir``; ``pair_mode`` and ``symbols`` go to the universe, the
    rest (``interval``) to the lake; what is not given takes the project's default."""
    universe = {"mode": pair_mode, "symbols": symbols}
    resources = {
        "binance": BinanceResource(data_url=standin.data_url, listing_url=standin.listing_url,
                                   api_url=standin.api_url, fapi_url=standin.fapi_url, dapi_url=standin.dapi_url,
                                   download_workers=8),  # fmt: skip
        "lake": LakeResource(data_dir=str(data_dir), **lake),
        "universe": UniverseResource(**{k: v for k, v in universe.items() if v is not None}),
    }
    if spark_resource is not None:
        resources["spark"] = spark_resource
    return resources


def run_assets(assets, resources, months: list[str] | None = None, *, instance=None, run_config=None,
               raise_on_error: bool = True) -> dg.ExecuteInProcessResult:  # fmt: skip
    """Materialize ``assets``: one partition, or a single-run backfill over ``months`` (first..last)."""
    tags = {}
    if months and len(months) > 1:
        tags = {"dagster/asset_partition_range_start": months[0], "dagster/asset_partition_range_end": months[-1]}
    return dg.materialize(
        assets,
        resources=resources,
        partition_key=months[0] if months and len(months) == 1 else None,
        tags=tags,
        instance=instance or dg.DagsterInstance.ephemeral(),
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def parquet_rows(spark, root) -> list[tuple]:
    """Every row of the Parquet dataset at ``root``, sorted, with timestamps as epoch microseconds (an instant,
    whatever the session's time zone): for comparing two lakes."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(root))
    columns = [F.unix_micros("timestamp").alias("t") if c == "timestamp" else c for c in frame.columns]
    return sorted(tuple(r) for r in frame.select(*columns).collect())


def materialize_cli(args: list[str], env: dict, cwd) -> None:
    """``dagster asset materialize -m crypto_assets.definitions ARGS`` in its own process; fails with its output."""
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), "asset", "materialize", "-m", "crypto_assets.definitions", *args],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
