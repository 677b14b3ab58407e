"""A run killed with SIGKILL (no cleanup runs) during the raw fetch, the normalization and the Parquet write, in a
real process: the next run completes, no verified archive is downloaded twice, no partial file is taken as good,
and every Parquet month holds its old or its new rows - never a mix, never nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.universe import pair_universe
from crypto_assets.layout import Layout
from crypto_assets.months import Month
from crypto_assets_tests.conftest import make_resources, run_assets

ROOT = Path(__file__).parent.parent
CLI = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "crypto_assets.definitions"]


def cli_env(standin, data_dir: Path, interval: str, symbols: list[str], **extra: str) -> dict[str, str]:
    env = {**os.environ, **standin.env(), "CRYPTO_DATA_DIR": str(data_dir), "CRYPTO_INTERVAL": interval,
           "CRYPTO_PAIR_MODE": "symbols", "CRYPTO_SYMBOLS": ",".join(symbols), "CRYPTO_START_MONTH": "2024-12",
           "CRYPTO_END_MONTH": "2025-06", "SPARK_MASTER": "local[1]", **extra}  # fmt: skip
    env.pop("DAGSTER_HOME", None)
    return env


def kill_when(args: list[str], env: dict[str, str], reached, what: str, log: Path, deadline: float = 180) -> None:
    """Start the dagster CLI with ``args`` in its own process group; SIGKILL the whole group (run worker, Spark JVM)
    as soon as ``reached()`` holds. Fails when the run ends first."""
    with open(log, "wb") as out:
        proc = subprocess.Popen([*CLI, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        end = time.monotonic() + deadline
        while not reached():
            assert proc.poll() is None, f"the run ended before {what}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < end, f"no {what} within {deadline} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the run was not killed ({proc.returncode}):\n{log.read_text()[-3000:]}"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (dot files included) by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_killed_during_the_raw_fetch(standin, market, tmp_path):
    symbols = [p.symbol for p in market.pairs if p.quote == "USDT" and market.is_published(p.symbol, "4h", "2025-02")]
    lake = make_resources(standin, tmp_path, pair_mode="symbols", symbols=symbols)
    run_assets([pair_universe], lake)
    standin.latency = 0.15  # two connections: about 13 archive requests a second, a wide window
    standin.reset_stats()
    kill_when(["--select", "raw_monthly_klines", "--partition", "2025-02"],
              cli_env(standin, tmp_path, "4h", symbols, CRYPTO_DOWNLOAD_WORKERS="2"),
              lambda: standin.stats()["by_kind"]["zip"] >= 4, "four archive downloads",
              tmp_path / "run.log")  # fmt: skip
    standin.latency = 0.0
    raw_dir = Layout.at(tmp_path, "4h").raw_dir(Month(2025, 2))
    landed = {p.name for p in raw_dir.glob("*.zip") if not p.name.startswith(".")}
    assert 0 < len(landed) < len(symbols), landed  # killed mid-fetch
    for name in landed:  # whatever sits at a final path is a verified archive
        assert hashlib.sha256((raw_dir / name).read_bytes()).hexdigest() == market.archive_digest(
            name.split("-")[0], "4h", "2025-02")[0]  # fmt: skip

    standin.reset_stats()
    assert run_assets([raw_monthly_klines], lake, ["2025-02"]).success
    zips = {p.rsplit("/", 1)[-1]: n for p, n in standin.stats()["by_path"].items() if p.endswith(".zip")}
    assert not landed & set(zips), "a verified archive was downloaded again"
    assert set(zips) == {f"{s}-4h-2025-02.zip" for s in symbols} - landed and set(zips.values()) == {1}
    for symbol in symbols:
        path = raw_dir / f"{symbol}-4h-2025-02.zip"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == market.archive_digest(symbol, "4h", "2025-02")[0]
    assert [p.name for p in raw_dir.iterdir() if p.name.startswith(".")] == []  # no partial download left behind


def test_killed_during_normalization(standin, market, tmp_path):
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"]
    lake = make_resources(standin, tmp_path / "lake", interval="1m", pair_mode="symbols", symbols=symbols)
    run_assets([pair_universe], lake)
    assert run_assets([raw_monthly_klines], lake, ["2025-02"]).success  # 6 x 40,320 one-minute rows
    shutil.copytree(tmp_path / "lake", tmp_path / "reference")
    reference = make_resources(standin, tmp_path / "reference", interval="1m", pair_mode="symbols", symbols=symbols)
    assert run_assets([normalized_csv], reference, ["2025-02"]).success
    expected = tree(tmp_path / "reference" / "csv")

    csv_root = tmp_path / "lake" / "csv"
    kill_when(["--select", "normalized_csv", "--partition", "2025-02"],
              cli_env(standin, tmp_path / "lake", "1m", symbols),
              lambda: csv_root.is_dir() and any(p.is_file() for p in csv_root.rglob("*")),
              "a first normalized file", tmp_path / "run.log")  # fmt: skip
    assert tree(csv_root) != expected  # the kill left the month unfinished

    standin.reset_stats()
    assert run_assets([raw_monthly_klines, normalized_csv], lake, ["2025-02"]).success
    assert standin.stats()["by_kind"]["zip"] == 0  # every archive was verified on disk: none fetched again
    assert tree(csv_root) == expected  # byte for byte what an uninterrupted run writes: nothing partial kept


def month_rows(spark, folder: Path) -> list[tuple]:
    """The rows of one month folder (timestamps as epoch ms), sorted; raises when the folder is missing."""
    from pyspark.sql import functions as F

    assert folder.is_dir() and list(folder.glob("*.parquet")), f"{folder} holds no Parquet"
    frame = spark.read.parquet(str(folder)).withColumn("timestamp", F.unix_millis("timestamp"))
    return sorted(tuple(r) for r in frame.collect())


@pytest.mark.parametrize("point", ["staging", "swapping"])
def test_killed_during_the_parquet_write(standin, market, tmp_path, spark_resource, spark, point):
    """Every month was written once (old); Binance republishes every archive (new); the rewrite is killed while
    Spark writes its files, or once the first month folder has changed. Right after the kill each month reads as
    its old or its new rows; the next run completes with the new ones and leaves nothing else behind."""
    symbols, months = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "KMDUSDT"], ["2025-01", "2025-02", "2025-03"]
    lake = make_resources(standin, tmp_path, spark_resource, pair_mode="symbols", symbols=symbols)
    run_assets([pair_universe], lake)
    assert run_assets([raw_monthly_klines, normalized_csv, parquet_candles], lake, months).success
    layout = Layout.at(tmp_path, "4h")
    folders = {m: layout.parquet_dir(Month.parse(m)) for m in months}
    old = {m: month_rows(spark, f) for m, f in folders.items()}
    old_files = {m: sorted(p.name for p in f.glob("*.parquet")) for m, f in folders.items()}
    for symbol in symbols:
        for month in months:
            if market.is_published(symbol, "4h", month):
                standin.replace_archive(symbol, "4h", month)
    assert run_assets([raw_monthly_klines, normalized_csv], lake, months).success

    def reached() -> bool:
        if point == "staging":
            return any((layout.parquet_root / ".staging").rglob("*.parquet"))
        return any(sorted(p.name for p in f.glob("*.parquet")) != old_files[m] for m, f in folders.items())

    kill_when(["--select", "parquet_candles", "--partition-range", f"{months[0]}...{months[-1]}"],
              cli_env(standin, tmp_path, "4h", symbols), reached, f"the {point} point",
              tmp_path / "run.log")  # fmt: skip
    after_kill = {m: month_rows(spark, f) for m, f in folders.items()}  # a missing month fails right here

    assert run_assets([parquet_candles], lake, months).success
    new = {m: month_rows(spark, f) for m, f in folders.items()}
    for month in months:
        assert new[month] != old[month], month  # the republished archives changed every month
        assert after_kill[month] in (old[month], new[month]), f"{month} holds a mix after the kill"
    assert sorted(p.name for p in layout.parquet_root.iterdir()) == ["year=2025"]  # no staging or parked folder


SWAP_CHILD = """
import os, shutil, signal, sys
from pathlib import Path
from crypto_assets.lake import swap
root, limit, exchange = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "exchange"
count = 0
def step(fn):
    def wrapped(*args, **kwargs):
        global count
        result = fn(*args, **kwargs)
        count += 1
        if count == limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped
swap._exchange = step(swap._exchange if exchange else (lambda a, b: False))
os.rename = step(os.rename)
shutil.rmtree = step(shutil.rmtree)
swap.swap_in(root, sys.argv[4:])
"""


@pytest.mark.parametrize("mode", ["exchange", "two-renames"])
def test_a_swap_killed_after_any_step_leaves_each_month_old_or_new(tmp_path, mode):
    """The month swap in a real process SIGKILLed after its 1st, 2nd, ... file-system step, until it completes:
    with the atomic exchange every month is old or new at once; with two renames, after the next run's recovery."""
    from crypto_assets.lake import swap

    months = ["year=2025/month=1", "year=2025/month=2", "year=2025/month=3"]  # month 3 is new to the lake
    old = {m: {f"part-0-old-{m[-1]}.parquet": b"old"} for m in months[:2]}
    new = {m: {f"part-{i}-new-{m[-1]}.parquet": b"new" for i in range(2)} for m in months}

    def contents(root: Path, month: str) -> dict[str, bytes] | None:
        folder = root / month
        return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else None

    limit = 0
    while True:
        limit += 1
        root = tmp_path / f"kill-{limit}"
        for source, state in ((root, old), (root / swap.STAGING, new)):
            for month, files in state.items():
                (source / month).mkdir(parents=True)
                for name, data in files.items():
                    (source / month / name).write_bytes(data)
        command = [sys.executable, "-c", SWAP_CHILD, str(root), str(limit), mode, *months]
        child = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=60)
        for month in months:
            held = contents(root, month)
            if mode == "exchange" or held is not None:  # two renames: a month may be parked until recovery
                assert held in (old.get(month), new[month]), (limit, month, held)
        swap.recover(root)
        for month in months:
            assert contents(root, month) in (old.get(month), new[month]), (limit, month)
        assert sorted(p.name for p in root.iterdir()) == ["year=2025"], limit
        if child.returncode == 0:  # the swap ran to its end before the limit: every step was a kill point
            assert all(contents(root, m) == new[m] for m in months)
            break
        assert child.returncode == -signal.SIGKILL, child.stderr
    assert limit > 3
