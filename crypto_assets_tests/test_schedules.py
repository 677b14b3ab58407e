"""The refresh schedules ask for the right month, and the refresh job runs the chain plus the report for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg

from crypto_assets.assets.universe import pair_universe
from crypto_assets.definitions import ASSETS, defs
from crypto_assets.layout import Layout
from crypto_assets.schedules import SCHEDULES, daily_refresh, last_month_refresh, refresh_month
from crypto_assets_tests.conftest import make_resources, run_assets


def evaluate(schedule, when: datetime):
    return schedule(dg.build_schedule_context(scheduled_execution_time=when))


def test_schedules_are_off_by_default_and_loaded():
    assert {s.name for s in defs.schedules} == {"last_month_refresh", "daily_refresh"}
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in SCHEDULES)


def test_each_schedule_requests_its_month():
    assert last_month_refresh.cron_schedule == "0 6 2,16 * *"
    assert evaluate(last_month_refresh, datetime(2025, 3, 2, 6, tzinfo=UTC)).partition_key == "2025-02"
    assert evaluate(last_month_refresh, datetime(2025, 3, 16, 6, tzinfo=UTC)).partition_key == "2025-02"
    assert evaluate(last_month_refresh, datetime(2025, 1, 2, 6, tzinfo=UTC)).partition_key == "2024-12"
    assert evaluate(daily_refresh, datetime(2025, 6, 9, 7, tzinfo=UTC)).partition_key == "2025-06"
    skipped = evaluate(daily_refresh, datetime(2023, 6, 9, 7, tzinfo=UTC))  # before CRYPTO_START_MONTH
    assert isinstance(skipped, dg.SkipReason) and "2023-06" in skipped.skip_message


def test_refresh_job_runs_one_month_and_the_report(standin, market, tmp_path, spark_resource):
    resources = make_resources(standin, tmp_path, spark_resource, pair_mode="symbols", symbols=["BTCUSDT", "SOLUSDT"])
    assert run_assets([pair_universe], resources).success
    job = dg.Definitions(assets=ASSETS, jobs=[refresh_month], resources=resources,
                         executor=dg.in_process_executor).resolve_job_def("refresh_month")  # fmt: skip
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(partition_key="2025-03", instance=instance)
        assert result.success
    report = json.loads((Layout.at(tmp_path, "4h").reports_dir / "dataset_report.json").read_text())
    truth = market.ground_truth("4h", ["2025-03"], ["BTCUSDT", "SOLUSDT"])
    assert report["total_rows"] == truth["rows"] and [m["month"] for m in report["months"]] == ["2025-03"]
