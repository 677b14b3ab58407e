"""dataset_report: what the lake holds, for people (Markdown, a chart) and machines (JSON)."""

import dagster as dg

from crypto_assets.checks import check_result
from crypto_assets.lake import quality
from crypto_assets.lake.markers import read_marker
from crypto_assets.lake.report import gaps_table, month_table, refresh_report, write_report
from crypto_assets.months import Month
from crypto_assets.resources import LakeResource, SparkResource


@dg.asset(
    deps=["parquet_candles"],
    group_name="reporting",
    kinds={"spark", "python"},
    check_specs=[
        dg.AssetCheckSpec(
            "totals_match_months",
            asset="dataset_report",
            description="Totals equal the sum over months; symbols equal the distinct symbols in the Parquet.",
        )
    ],  # fmt: skip
    pool="spark",
)
def dataset_report(context: dg.AssetExecutionContext, lake: LakeResource, spark: SparkResource):
    """Totals, month distribution, per-symbol coverage, largest gaps, duplicates and daily-sourced months of the
    Parquet lake. Spark reads only the months whose Parquet changed since the last report (their figures are cached
    under `reports/{interval}/months/`). Files: `reports/{interval}/dataset_report.{json,md}` and `coverage.png`."""
    layout = lake.layout
    report, recomputed = refresh_report(lambda: spark.spark_session, layout)
    month_rows, symbols = {}, set()
    for m in report["months"]:
        marker = read_marker(layout, Month.parse(m["month"])) or {}
        month_rows[m["month"]] = int(marker.get("rows", -1))
        symbols.update((marker.get("summary") or {}).get("per_symbol", {}))
    files = write_report(layout, report)
    outcome = quality.report_totals_match(report, month_rows, len(symbols))
    return dg.MaterializeResult(
        metadata={
            "total_rows": report["total_rows"],
            "symbols": report["symbols"],
            "months": len(report["months"]),
            "months_recomputed": len(recomputed),
            "duplicates": report["duplicates"],
            "missing_candles": report["missing_candles"],
            "first_candle": report["first_candle"] or "",
            "last_candle": report["last_candle"] or "",
            "dagster/row_count": report["total_rows"],
            "month_distribution": dg.MetadataValue.md(month_table(report)),
            "largest_gaps": dg.MetadataValue.md(gaps_table(report)),
            "coverage_chart": dg.MetadataValue.path(str(files.png)),
            "report_markdown": dg.MetadataValue.path(str(files.markdown)),
            "report_json": dg.MetadataValue.path(str(files.json)),
        },
        check_results=[check_result(outcome)],
    )
