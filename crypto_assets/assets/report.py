"""dataset_report: what the lake holds, per dataset and over all of them, for people (Markdown, charts) and machines
(JSON)."""

import dagster as dg

from crypto_assets.assets.markets import MarketAssets
from crypto_assets.binance.archives import MarketType
from crypto_assets.checks import check_result
from crypto_assets.lake import quality
from crypto_assets.lake.markers import read_marker
from crypto_assets.lake.report import (
    datasets_table,
    funding_report,
    gaps_table,
    month_table,
    refresh_report,
    write_lake_report,
    write_report,
)
from crypto_assets.months import Month
from crypto_assets.resources import LakeResource, SparkResource

_DOC = """Totals, month distribution, per-symbol coverage, largest gaps, duplicates and daily-sourced months of every
dataset of the lake ({datasets}). Spark reads only the months whose Parquet changed since the last report (their
figures are cached under `reports/<dataset>/months/`, and parquet_candles caches those it writes, so normally none).
A funding dataset's figures come from what each month's write recorded (no Spark): settlements, contracts, missing
settlements, duplicates, rates out of bounds. Files: `reports/<dataset>/dataset_report.{{json,md}}` and
`coverage.png` per dataset, and `reports/dataset_report.{{json,md}}` over all of them."""


def report_asset(markets: tuple[MarketType, ...] = (MarketType.SPOT,)) -> dg.AssetsDefinition:
    """dataset_report over the kline datasets of ``markets`` and the funding datasets of its futures markets."""
    chains = [MarketAssets(m) for m in markets]
    futures = [m for m in chains if m.market.is_futures]
    datasets = ", ".join([f"`{m.value}/klines/<interval>`" for m in markets]
                         + [f"`{m.market.value}/funding`" for m in futures])  # fmt: skip

    @dg.asset(
        deps=[m.key("parquet_candles") for m in chains] + [m.key("funding_rates") for m in futures],
        group_name="reporting",
        kinds={"spark", "python"},
        check_specs=[
            dg.AssetCheckSpec(
                "totals_match_months",
                asset="dataset_report",
                description="Per kline dataset: totals equal the sum over months; symbols equal the distinct "
                "symbols in the Parquet (a funding month's figures are proved by funding_rates' own checks).",
            )
        ],  # fmt: skip
        pool="spark",
        description=_DOC.format(datasets=datasets),
    )
    def dataset_report(context: dg.AssetExecutionContext, lake: LakeResource, spark: SparkResource):
        reports, outcomes, files, recomputed = {}, {}, {}, 0
        for m in chains:
            layout = m.layout(lake)
            report, months = refresh_report(lambda: spark.spark_session, layout)
            recomputed += len(months)
            month_rows, symbols = {}, set()
            for entry in report["months"]:
                marker = read_marker(layout, Month.parse(entry["month"])) or {}
                month_rows[entry["month"]] = int(marker.get("rows", -1))
                symbols.update((marker.get("summary") or {}).get("per_symbol", {}))
            files[layout.dataset] = write_report(layout, report)
            reports[layout.dataset] = report
            outcomes[layout.dataset] = quality.report_totals_match(report, month_rows, len(symbols))
        for m in futures:
            layout = m.layout(lake).funding
            report = funding_report(layout)
            files[layout.dataset] = write_report(layout, report)
            reports[layout.dataset] = report
        lake_files = write_lake_report(lake.layout, reports)
        first = next(iter(reports))  # the first market of CRYPTO_MARKETS: its tables show in the asset's metadata
        klines = {d: r for d, r in reports.items() if r["interval"] != "funding"}
        metadata = {
            "total_rows": sum(r["total_rows"] for r in reports.values()),
            "symbols": sum(r["symbols"] for r in reports.values()),
            "months": len({m["month"] for r in reports.values() for m in r["months"]}),
            "months_recomputed": recomputed,
            "duplicates": sum(r["duplicates"] for r in reports.values()),
            "missing_candles": sum(r["missing_candles"] for r in klines.values()),
            "first_candle": min((r["first_candle"] for r in klines.values() if r["first_candle"]), default=""),
            "last_candle": max((r["last_candle"] for r in klines.values() if r["last_candle"]), default=""),
            "dagster/row_count": sum(r["total_rows"] for r in reports.values()),
            "month_distribution": dg.MetadataValue.md(month_table(reports[first])),
            "largest_gaps": dg.MetadataValue.md(gaps_table(reports[first])),
            "coverage_chart": dg.MetadataValue.path(str(files[first].png)),
            "report_markdown": dg.MetadataValue.path(str(files[first].markdown)),
            "report_json": dg.MetadataValue.path(str(files[first].json)),
        }
        if len(reports) > 1:
            metadata["datasets"] = dg.MetadataValue.md(datasets_table(reports))
            if futures:
                funding = [r for d, r in reports.items() if d not in klines]
                metadata["missing_settlements"] = sum(r["missing_candles"] for r in funding)
            metadata["lake_report_markdown"] = dg.MetadataValue.path(str(lake_files.markdown))
            for dataset, f in files.items():
                metadata[f"coverage_chart {dataset}"] = dg.MetadataValue.path(str(f.png))
        return dg.MaterializeResult(metadata=metadata, check_results=[check_result(quality.all_of(outcomes))])

    return dataset_report


dataset_report = report_asset()
