"""Month partitions (keys ``YYYY-MM``) from CRYPTO_START_MONTH to the current month, or to CRYPTO_END_MONTH."""

from __future__ import annotations

import dagster as dg

from crypto_assets.months import Month
from crypto_assets.settings import Settings


def monthly_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    if settings.end_month:
        # end_date is exclusive: the month after the last one.
        end = str(Month.parse(settings.end_month).next())
        return dg.MonthlyPartitionsDefinition(start_date=settings.start_month, end_date=end, fmt="%Y-%m")
    # end_offset=1: the current, still incomplete month is a partition too (filled from daily archives).
    return dg.MonthlyPartitionsDefinition(start_date=settings.start_month, end_offset=1, fmt="%Y-%m")


monthly = monthly_partitions(Settings.from_env())


def run_months(context: dg.AssetExecutionContext) -> list[Month]:
    """The months of this run: one for a partition run, several for a single-run backfill."""
    return [Month.parse(key) for key in context.partition_keys]
