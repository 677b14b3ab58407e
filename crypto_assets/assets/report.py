"""dataset_report: what the lake holds, per dataset and over all of them, for people (Markdown, charts) and machines
(JSON)."""

import dagster as dg

from crypto_assets.assets.markets import MarketAssets
from crypto_assets.binance.archives import MarketType
from crypto_assets.checks import check_result
from crypto_assets.lake import quality
from crypto_assets.lake.report import datasets_table, gaps_table, month_table, report_lake
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
        done = report_lake(lambda: spark.spark_session, [m.layout(lake) for m in chains],
                           [m.layout(lake).funding for m in futures])  # fmt: skip
        first = next(iter(done.reports))  # the first market of CRYPTO_MARKETS: its tables show in the metadata
        files = done.files[first]
        totals = done.totals()
        metadata = {
            **totals,
            "months_recomputed": done.recomputed,
            "dagster/row_count": totals["total_rows"],
            "month_distribution": dg.MetadataValue.md(month_table(done.reports[first])),
            "largest_gaps": dg.MetadataValue.md(gaps_table(done.reports[first])),
            "coverage_chart": dg.MetadataValue.path(str(files.png)),
            "report_markdown": dg.MetadataValue.path(str(files.markdown)),
            "report_json": dg.MetadataValue.path(str(files.json)),
        }
        if len(done.reports) > 1:
            metadata["datasets"] = dg.MetadataValue.md(datasets_table(done.reports))
            if futures:
                metadata["missing_settlements"] = done.missing_settlements
            metadata["lake_report_markdown"] = dg.MetadataValue.path(str(done.lake_files.markdown))
            for dataset, f in done.files.items():
                metadata[f"coverage_chart {dataset}"] = dg.MetadataValue.path(str(f.png))
        return dg.MaterializeResult(metadata=metadata, check_results=[check_result(quality.all_of(done.outcomes))])

    return dataset_report


dataset_report = report_asset()
