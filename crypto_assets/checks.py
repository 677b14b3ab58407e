"""How per-month results reach Dagster: each month's figures and check results, one per month, even inside a
single-run backfill.

Why this design: one run (one Spark session) should write a 15-month backfill, and each month should still have its
own check results. An ``AssetCheckResult`` cannot give that in Dagster 1.13: a step yields one per check (it is the
check's step output), and its partition is the step's partition key, which a single-run backfill (a key range) has
not. So each partitioned asset declares *partitioned* check specs (``AssetCheckSpec(partitions_def=...)``),
computes the figures while it has the data in hand, and yields one ``AssetCheckEvaluation(partition=month)`` per
month after its materialization (yielded, not ``context.log_event``-ed: logged events are only flushed at the
generator's next yield, so they would be lost when the step then fails), then each check's empty step output. A
failing blocking (ERROR) check then fails the step, so nothing downstream runs on bad data - the gate Dagster applies
to blocking checks. Which checks block, and which step outputs there are, is read from the asset's check specs.

Figures go the same way: each month's on its own materialization (``add_asset_metadata(partition_key=...)``), and
nothing on the step's ``MaterializeResult``, because Dagster copies the metadata of a result that names no partition
onto every month's materialization of the run: figures of the whole run would show in the UI's per-partition plots
as each month's. What a run did as a whole goes to the run's log.

The rules themselves (what passes, with which figures) live in ``crypto_assets.lake.quality``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import dagster as dg

from crypto_assets.dagster_storage import events_in_one_transaction
from crypto_assets.lake.quality import Outcome

_SEVERITY = {"ERROR": dg.AssetCheckSeverity.ERROR, "WARN": dg.AssetCheckSeverity.WARN}


def month_check_specs(
    asset: str | dg.AssetKey, partitions: dg.PartitionsDefinition, checks: dict[str, tuple[str, bool]]
) -> list[dg.AssetCheckSpec]:
    """Partitioned check specs for ``asset``: name -> (description, blocking)."""
    return [
        dg.AssetCheckSpec(name, asset=asset, description=description, blocking=blocking, partitions_def=partitions)
        for name, (description, blocking) in checks.items()
    ]


def month_results(
    context: dg.AssetExecutionContext, figures: Mapping[str, dict], outcomes: Iterable[tuple[str, Outcome]]
) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output]:
    """What a partitioned asset yields at its end (``yield from``): ``figures`` (month -> metadata) on each month's
    materialization, then ``emit_month_checks(context, outcomes)``."""
    for month, metadata in figures.items():
        context.add_asset_metadata(metadata, partition_key=month)
    with events_in_one_transaction(context.instance):  # a commit for the burst, not 2-3 per event (dagster_storage)
        yield dg.MaterializeResult()
        yield from emit_month_checks(context, outcomes)


def emit_month_checks(
    context: dg.AssetExecutionContext, outcomes: Iterable[tuple[str, Outcome]]
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """Yield each (month, outcome) as a partitioned evaluation of the asset's check of that name, then fail the step
    if a blocking check failed with ERROR, naming every failed check and month.

    Each of the step's checks also gets its (empty) step output, as Dagster gives one for an ``AssetCheckResult``:
    without it the executor logs that a blocking check "emitted no result" and downstream steps do not wait for it."""
    specs = {spec.name: spec for spec in context.assets_def.check_specs}
    failed = []
    for month, outcome in outcomes:
        spec = specs[outcome.name]
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=outcome.passed,
            metadata=outcome.metadata,
            severity=_SEVERITY[outcome.severity],
            description=outcome.description,
            partition=month,
            blocking=spec.blocking,
        )
        if not outcome.passed and outcome.severity == "ERROR" and spec.blocking:
            failed.append(f"{outcome.name} [{month}]: {outcome.description}")
    for spec in specs.values():
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(spec.key))
    if failed:
        raise dg.Failure(
            description=f"{context.asset_key.to_user_string()}: blocking checks failed, downstream assets will not "
            "run:\n- " + "\n- ".join(failed),
        )


def check_result(outcome: Outcome) -> dg.AssetCheckResult:
    """An unpartitioned check result (for assets that are not partitioned); its blocking flag comes from its spec."""
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        metadata=outcome.metadata,
        severity=_SEVERITY[outcome.severity],
        description=outcome.description,
    )
