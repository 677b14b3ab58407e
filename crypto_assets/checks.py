"""How check results reach Dagster: one result per month, even inside a single-run backfill.

Why this design: Dagster 1.13 records checks declared through ``check_specs`` as one latest result per asset, and
partitioned ``@asset_check`` functions are skipped inside single-run backfills. We want both a result per month and
one run (one Spark session) for a 15-month backfill. So each partitioned asset declares *partitioned* check specs
(``AssetCheckSpec(partitions_def=...)``), computes the figures while it has the data in hand, and yields one
``AssetCheckEvaluation`` per month after its materialization (yielded, not ``context.log_event``-ed: logged events
are only flushed at the generator's next yield, so they would be lost when the step then fails). A failing blocking
(ERROR) check then fails the step, so nothing downstream runs on bad data - the gate Dagster applies to blocking checks.

The rules themselves (what passes, with which figures) live in ``crypto_assets.lake.quality``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg

from crypto_assets.lake.quality import Outcome

_SEVERITY = {"ERROR": dg.AssetCheckSeverity.ERROR, "WARN": dg.AssetCheckSeverity.WARN}


def month_check_specs(
    asset: str, partitions: dg.PartitionsDefinition, checks: dict[str, tuple[str, bool]]
) -> list[dg.AssetCheckSpec]:
    """Partitioned check specs for ``asset``: name -> (description, blocking)."""
    return [
        dg.AssetCheckSpec(name, asset=asset, description=description, blocking=blocking, partitions_def=partitions)
        for name, (description, blocking) in checks.items()
    ]


def emit_month_checks(
    context: dg.AssetExecutionContext, asset: str, outcomes: Iterable[tuple[str, Outcome]], blocking: set[str]
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """Yield each (month, outcome) as a partitioned check evaluation (use ``yield from``), then fail the step if a
    blocking ERROR check failed, naming every failed check and month.

    Each selected check also gets its (empty) step output, as Dagster does for an ``AssetCheckResult``: without it
    the executor logs that a blocking check "emitted no result" and downstream steps do not wait for it."""
    failed, names = [], []
    for month, outcome in outcomes:
        names.append(outcome.name)
        yield dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(asset),
            check_name=outcome.name,
            passed=outcome.passed,
            metadata=outcome.metadata,
            severity=_SEVERITY[outcome.severity],
            description=outcome.description,
            partition=month,
            blocking=outcome.name in blocking,
        )
        if not outcome.passed and outcome.severity == "ERROR" and outcome.name in blocking:
            failed.append(f"{outcome.name} [{month}]: {outcome.description}")
    for name in dict.fromkeys(names):
        key = dg.AssetCheckKey(dg.AssetKey(asset), name)
        if key in context.selected_asset_check_keys:
            yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(key))
    if failed:
        raise dg.Failure(
            description=f"{asset}: blocking checks failed, downstream assets will not run:\n- " + "\n- ".join(failed),
        )


def check_result(outcome: Outcome) -> dg.AssetCheckResult:
    """An unpartitioned check result (for assets that are not partitioned)."""
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        metadata=outcome.metadata,
        severity=_SEVERITY[outcome.severity],
        description=outcome.description,
    )
