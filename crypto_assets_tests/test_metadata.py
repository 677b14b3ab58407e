"""Per-month metadata is per month: in a single-run backfill each month's materialization carries that month's
figures, as the stand-in's ground truth gives them, and none carries the run's totals (the run's log has those)."""

from __future__ import annotations

import dagster as dg

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.universe import pair_universe
from crypto_assets_tests.conftest import make_resources, run_assets

MONTHLY = [raw_monthly_klines, normalized_csv, parquet_candles]
MONTHS = ["2025-03", "2025-04"]  # KMDUSDT is delisted on 2025-03-10: 3 archives in March, 2 in April
SYMBOLS = ["BTCUSDT", "ETHUSDT", "KMDUSDT"]


def month_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dict]:
    return {m.partition: {k: v.value for k, v in m.metadata.items()}
            for m in result.asset_materializations_for_node(asset)}  # fmt: skip


def run_log(instance: dg.DagsterInstance, run_id: str, step: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.step_key == step and e.dagster_event is None]


def test_a_single_run_backfill_records_each_months_own_figures(standin, market, tmp_path, spark_resource):
    resources = make_resources(standin, tmp_path, spark_resource, pair_mode="symbols", symbols=SYMBOLS)
    assert run_assets([pair_universe], resources).success
    instance = dg.DagsterInstance.ephemeral()
    result = run_assets(MONTHLY, resources, MONTHS, instance=instance)
    assert result.success and len(instance.get_run_records()) == 1

    truth = {m: [market.expected(s, "4h", m) for s in SYMBOLS] for m in MONTHS}
    expected = {
        m: {
            "archives": sum(1 for e in t if e["rows"]),
            "absent": sum(1 for e in t if not e["rows"]),
            "archive_rows": sum(e["rows"] + e["duplicates"] + e["malformed"] for e in t),
            "rows": sum(e["rows"] for e in t),
            "duplicates": sum(e["duplicates"] for e in t),
            "symbols": sum(1 for e in t if e["rows"]),
        }
        for m, t in truth.items()
    }
    march, april = (expected[m] for m in MONTHS)
    assert march["rows"] != april["rows"] and march["archives"] != april["archives"]  # a run total fits neither

    raw, csv, parquet = (month_metadata(result, a.key.to_user_string()) for a in MONTHLY)
    for month in MONTHS:
        want = expected[month]
        assert (raw[month]["files_ok"], raw[month]["files_absent"], raw[month]["files_failed"]) == (
            want["archives"], want["absent"], 0), month  # fmt: skip
        assert csv[month]["rows"] == csv[month]["dagster/row_count"] == want["archive_rows"], month
        assert csv[month]["symbols"] == want["symbols"], month
        assert parquet[month]["rows"] == parquet[month]["dagster/row_count"] == want["rows"], month
        assert parquet[month]["symbols"] == want["symbols"], month
        assert parquet[month]["duplicates_dropped"] == want["duplicates"], month
        assert parquet[month]["path"].endswith(f"year=2025/month={int(month[5:])}"), month
    for figures in (raw, csv, parquet):
        assert sorted(figures) == MONTHS
        assert not [key for meta in figures.values() for key in meta if key.startswith("run_")]
    assert not [m for m, meta in raw.items() if {"seconds", "summary"} & set(meta)]  # the fetch's are the run's

    # The run's totals: once, in the run's log of each step.
    total = {key: sum(expected[m][key] for m in MONTHS) for key in ("archives", "archive_rows", "rows")}
    (raw_line,) = [m for m in run_log(instance, result.run_id, "raw_monthly_klines") if "month(s)" in m]
    assert raw_line.startswith(f"2 month(s), {len(SYMBOLS)} pairs") and f" {total['archives']} ok," in raw_line
    (csv_line,) = [m for m in run_log(instance, result.run_id, "normalized_csv") if "month(s)" in m]
    assert csv_line.startswith(f"2 month(s): {total['archive_rows']:,} rows")
    (parquet_line,) = [m for m in run_log(instance, result.run_id, "parquet_candles") if "month(s)" in m]
    assert parquet_line.startswith(f"2 month(s): 2 rewritten, {total['rows']:,} rows")
