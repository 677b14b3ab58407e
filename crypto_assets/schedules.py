"""Refresh schedules, all STOPPED by default (turn them on in the UI: Automation > Schedules).

- `last_month_refresh` (2nd and 16th of the month, 06:00 UTC): the month that just ended. On the 2nd it comes from
  daily archives if Binance has not published the monthly one yet; by the 16th Binance has published the monthly
  archive, which replaces the daily-derived data.
- `daily_refresh` (every day, 07:00 UTC): the current month's partition, from yesterday's daily archives.
"""

from datetime import UTC, datetime

import dagster as dg

from crypto_assets.months import Month
from crypto_assets.partitions import monthly

_LAKE = dg.AssetSelection.assets("dataset_report").upstream()
refresh_month = dg.define_asset_job(
    "refresh_month",
    # Every monthly asset of every market (not the universes: the roots), then the report.
    selection=_LAKE - _LAKE.roots(),
    description="One month through every market's chain, then the report.",
)


def _request(context: dg.ScheduleEvaluationContext, months_back: int) -> dg.RunRequest | dg.SkipReason:
    """A run for the month ``months_back`` before the one the tick falls in (UTC)."""
    key = str(Month.of(context.scheduled_execution_time or datetime.now(UTC)).shifted(-months_back))
    if not monthly.has_partition_key(key):
        return dg.SkipReason(f"month {key} is outside the configured partitions")
    return dg.RunRequest(partition_key=key)


@dg.schedule(job=refresh_month, cron_schedule="0 6 2,16 * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)  # fmt: skip
def last_month_refresh(context: dg.ScheduleEvaluationContext):
    """The month that just ended: early on the 2nd (daily-sourced until Binance publishes the monthly archive), and
    again on the 16th, once the monthly archive is out, to swap out the daily-derived data."""
    return _request(context, 1)


@dg.schedule(job=refresh_month, cron_schedule="0 7 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)  # fmt: skip
def daily_refresh(context: dg.ScheduleEvaluationContext):
    """The current month, from the daily archives published so far."""
    return _request(context, 0)


SCHEDULES = [last_month_refresh, daily_refresh]
