"""The repo's dagster.yaml instance (crypto_assets.dagster_storage): a run's events, materializations and per-month
check results are stored where Dagster's default storage puts them, with one engine per file, and read back from
another process, by this project's instance and by a plain Dagster one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from crypto_assets import dagster_storage

REPO = Path(__file__).resolve().parents[1]
MONTHS = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-04-01")  # 3 months
CHECK = "rows"


@dg.asset(partitions_def=MONTHS, check_specs=[dg.AssetCheckSpec(CHECK, asset="toy", partitions_def=MONTHS)],
          backfill_policy=dg.BackfillPolicy.single_run())  # fmt: skip
def toy(context):
    yield dg.MaterializeResult()
    for month in context.partition_keys:
        yield dg.AssetCheckEvaluation(asset_key=context.asset_key, check_name=CHECK, passed=True, partition=month)
    yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(
        dg.AssetCheckKey(context.asset_key, CHECK)))  # fmt: skip


READ_BACK = """
import json, sys
import dagster as dg
from dagster._core.instance.ref import InstanceRef
home, config_dir, run_id, asset, check_name = sys.argv[1:]
with dg.DagsterInstance.from_ref(InstanceRef.from_dir(home, config_dir=config_dir)) as instance:
    check = dg.AssetCheckKey(dg.AssetKey(asset), check_name)
    materializations = instance.fetch_materializations(dg.AssetKey(asset), limit=10).records
    print(json.dumps({
        "instance": type(instance).__name__,
        "events": len(instance.get_records_for_run(run_id).records),
        "months": sorted(r.partition_key for r in materializations),
        "checks": sorted((r.partition, r.status.value)
                         for r in instance.event_log_storage.get_asset_check_execution_history(check, limit=10)),
    }))
"""


def read_back(home: Path, config_dir: Path, run_id: str, asset: str, check: str) -> dict:
    """What another process reads from the instance at ``home`` (configured by ``config_dir``'s dagster.yaml)."""
    done = subprocess.run([sys.executable, "-c", READ_BACK, str(home), str(config_dir), run_id, asset, check],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def project_home(tmp_path: Path, monkeypatch) -> Path:
    """A DAGSTER_HOME with the repo's dagster.yaml; the storage's directory comes from the instance, not the env."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    return home


def test_repo_instance_stores_a_run_in_the_default_layout_and_reads_it_back_from_other_processes(tmp_path, monkeypatch):
    home = project_home(tmp_path, monkeypatch)
    engines = []
    real_create_engine = dagster_storage.create_engine

    def counted_create_engine(*args, **kwargs):
        engines.append(args)
        return real_create_engine(*args, **kwargs)

    monkeypatch.setattr(dagster_storage, "create_engine", counted_create_engine)

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        assert isinstance(instance, dagster_storage.ProjectInstance)
        assert isinstance(instance.event_log_storage, dagster_storage.CachedEngineSqliteEventLogStorage)
        keys = MONTHS.get_partition_keys()
        result = dg.materialize([toy], instance=instance, tags={
            "dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]})  # fmt: skip
        assert result.success
        run_id = result.run_id
        events = len(instance.get_records_for_run(run_id).records)

    # Dagster's default layout: runs, one event-log file per run plus the index, schedules.
    for path in ("history/runs.db", f"history/runs/{run_id}.db", "history/runs/index.db", "schedules/schedules.db"):
        assert (home / path).is_file(), path
    # One engine per file (this run's, index.db), not one per transaction: Dagster's own class makes 44 for the 21
    # events here.
    assert len(engines) <= 3, engines

    plain = tmp_path / "plain"  # a dagster.yaml naming no instance class: Dagster's own storage classes
    plain.mkdir()
    (plain / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    expected = {"events": events, "months": keys, "checks": [[month, "SUCCEEDED"] for month in keys]}
    for config_dir, instance_class in ((home, "ProjectInstance"), (plain, "DagsterInstance")):
        read = read_back(home, config_dir, run_id, "toy", CHECK)
        assert read == {"instance": instance_class, **expected}, read


FAILING = "blocked"


@dg.asset(partitions_def=MONTHS, check_specs=[dg.AssetCheckSpec(FAILING, asset="burst", partitions_def=MONTHS)],
          backfill_policy=dg.BackfillPolicy.single_run())  # fmt: skip
def burst(context):
    """Stores its materializations and check results in one transaction, then fails the step."""
    with dagster_storage.events_in_one_transaction(context.instance):
        yield dg.MaterializeResult()
        for month in context.partition_keys:
            yield dg.AssetCheckEvaluation(
                asset_key=context.asset_key, check_name=FAILING, passed=False, partition=month
            )
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(
            dg.AssetCheckKey(context.asset_key, FAILING)))  # fmt: skip
        raise dg.Failure("a blocking check failed")


def test_a_burst_is_one_transaction_per_file_and_is_kept_when_the_step_then_fails(tmp_path, monkeypatch):
    """Events stored inside ``events_in_one_transaction`` (and Dagster's own batches: the run's planned events) share
    one connection per file; they are committed when the step fails right after, and read back by another process."""
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    home = project_home(tmp_path, monkeypatch)
    opened = []  # a transaction on an event log file (the run's, index.db) each
    real_open = dagster_storage.CachedEngineSqliteEventLogStorage._open

    def counted_open(self, shard):
        opened.append(shard)
        return real_open(self, shard)

    monkeypatch.setattr(dagster_storage.CachedEngineSqliteEventLogStorage, "_open", counted_open)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        keys = MONTHS.get_partition_keys()
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        before = len(opened)
        result = dg.materialize([burst], instance=instance, tags=tags, raise_on_error=False)
        stored = len(opened) - before
        assert not result.success
        run_id = result.run_id
        events = instance.get_records_for_run(run_id).records
        types = [r.event_log_entry.dagster_event_type for r in events if r.event_log_entry.is_dagster_event]
    assert types.count(dg.DagsterEventType.ASSET_CHECK_EVALUATION) == len(keys), types
    assert types.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == len(keys), types
    assert types[-1] == dg.DagsterEventType.RUN_FAILURE, types
    # Dagster's store_event opens 2-3 transactions per asset or check event, one per other event: 37 for this run's
    # 21 events without the transactions (measured). With them: one per other event, and 2 per burst (3 bursts).
    assert stored <= len(events), (stored, len(events), opened)

    read = read_back(home, home, run_id, "burst", FAILING)
    assert read["months"] == keys and read["checks"] == [[month, "FAILED"] for month in keys], read


RUN_COUNTING_MIGRATION_LOADS = """
import sys, warnings
warnings.filterwarnings("ignore")
import alembic.script
import dagster as dg

loads = []
original = alembic.script.ScriptDirectory.from_config.__func__
alembic.script.ScriptDirectory.from_config = classmethod(lambda cls, *a, **k: loads.append(1) or original(cls, *a, **k))

@dg.asset
def first():
    pass

@dg.asset(deps=[first])
def second():
    pass

with dg.DagsterInstance.get() as instance:
    loads.clear()  # opening the run and schedule storages checks their revisions (not the event log's business)
    result = dg.materialize([first, second], instance=instance)
    assert result.success
    print(len(loads), result.run_id)
"""


def test_a_new_runs_event_file_is_a_copy_of_an_empty_one_dagster_made_and_loads_no_migrations(tmp_path, monkeypatch):
    """The first run in a new instance has Dagster initialize its event file (loading Alembic's migration scripts)
    and keeps an empty copy; the next runs' files are copies of it, with the same tables and revision, and their runs
    load no migration script. Their events read back as usual."""
    import sqlite3

    home = project_home(tmp_path, monkeypatch)

    def run() -> tuple[int, str]:
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        done = subprocess.run([sys.executable, "-c", RUN_COUNTING_MIGRATION_LOADS], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        loads, run_id = done.stdout.split()[-2:]
        return int(loads), run_id

    def schema(db: Path) -> tuple[set, list]:
        with sqlite3.connect(db) as conn:
            tables = set(conn.execute("SELECT type, name, sql FROM sqlite_master"))
            return tables, conn.execute("SELECT version_num FROM alembic_version").fetchall()

    (made_loads, made), (copied_loads, copied) = run(), run()
    runs = home / "history" / "runs"
    templates = list(runs.glob(".empty-run-*.sqlite"))
    assert made_loads > 0 and copied_loads == 0 and len(templates) == 1
    assert schema(runs / f"{copied}.db") == schema(runs / f"{made}.db") == schema(templates[0])
    assert schema(templates[0])[1]  # a recorded revision
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        for run_id in (made, copied):
            assert len(instance.all_logs(run_id)) > 10
            assert instance.get_run_by_id(run_id).is_success
