"""pair_universe: which Binance pairs the lake covers."""

import dagster as dg
from pydantic import Field

from crypto_assets.binance.universe import DiscoveryError, GeoBlockedDiscovery, Universe, discover
from crypto_assets.resources import BinanceResource, LakeResource
from crypto_assets.settings import PAIR_MODES, parse_symbols


class PairUniverseConfig(dg.Config):
    """Launchpad options; leave a field empty to use its environment default."""

    mode: str | None = Field(
        default=None, description=f"One of {', '.join(PAIR_MODES)}. Default: CRYPTO_PAIR_MODE (historical-usdt)."
    )
    target_pairs: int | None = Field(default=None, description="Pairs for 'diversified'. Default: CRYPTO_TARGET_PAIRS.")
    symbols: list[str] | None = Field(default=None, description="Pairs for mode 'symbols'. Default: CRYPTO_SYMBOLS.")
    include_leveraged: bool | None = Field(
        default=None, description="Keep leveraged tokens (BTCUP, ETHBULL...). Default: CRYPTO_INCLUDE_LEVERAGED."
    )
    allow_static_fallback: bool = Field(
        default=False,
        description="When live discovery fails, use the static top-100 list instead of failing (loudly: a warning, "
        "fallback_used metadata and a WARN check).",
    )


@dg.asset(
    group_name="ingestion",
    kinds={"python"},
    check_specs=[
        dg.AssetCheckSpec(
            "discovered_live",
            asset="pair_universe",
            description="The universe came from live discovery, not the static fallback list.",  # fmt: skip
        )
    ],
)
def pair_universe(
    context: dg.AssetExecutionContext, config: PairUniverseConfig, binance: BinanceResource, lake: LakeResource
) -> dg.MaterializeResult:
    """The USDT pairs to ingest, discovered live from Binance.

    Modes: `top100` (the study's static list), `diversified` (sector seeds, then 24h quote volume, then A-Z, up to
    the target; active pairs only), `all-usdt` (every pair trading now), `historical-usdt` (every pair ever listed
    in Binance's public archive, delisted ones included), `symbols` (exactly the ones given). Leveraged tokens are
    excluded unless asked for. If discovery fails the asset fails and the previous universe stays in place.
    """
    mode = lake.pair_mode if config.mode is None else config.mode
    if mode not in PAIR_MODES:
        raise dg.Failure(f"pair_universe mode {mode!r} (run config) is unknown; expected one of "
                         f"{', '.join(PAIR_MODES)}, or leave it unset to use CRYPTO_PAIR_MODE")  # fmt: skip
    symbols = parse_symbols("symbols", ",".join(config.symbols)) if config.symbols else tuple(lake.symbols)
    if mode == "symbols" and not symbols:
        raise dg.Failure("pair_universe mode 'symbols' needs symbols (run config) or CRYPTO_SYMBOLS")
    options = dict(
        quote=lake.quote,
        target=config.target_pairs or lake.target_pairs,
        symbols=symbols,
        include_leveraged=lake.include_leveraged if config.include_leveraged is None else config.include_leveraged,
    )
    try:
        universe = discover(binance.client, mode, **options)
    except DiscoveryError as exc:
        if isinstance(exc, GeoBlockedDiscovery) and not config.allow_static_fallback:
            raise dg.Failure(f"{exc}. The previously materialized universe was left untouched.") from exc
        if not config.allow_static_fallback:
            raise dg.Failure(f"{exc}. The previously materialized universe was left untouched; retry later, or "
                             "set allow_static_fallback to use the static top-100 list.") from exc  # fmt: skip
        context.log.warning(f"{exc} -- FALLING BACK to the static top-100 list (allow_static_fallback=true)")
        universe = discover(None, "top100", **options)
        universe.fallback_used = True
    universe.write(lake.layout.universe_file)
    source = f"Binance ({binance.api_url})"
    if binance.synthetic:
        source = f"SYNTHETIC - local Binance stand-in, not market data ({binance.api_url})"
        context.log.warning(f"CRYPTO_DEMO is set: {source}")
    if universe.status_note and mode == "historical-usdt":
        context.log.warning(universe.status_note)
    if universe.rejected:
        context.log.warning(f"ignored {len(universe.rejected)} names that are not valid symbols: {universe.rejected}")
    return dg.MaterializeResult(
        metadata={
            "data_source": source,
            "mode": mode,
            "count": len(universe.pairs),
            "dagster/row_count": len(universe.pairs),
            "fallback_used": universe.fallback_used,
            "excluded_leveraged": len(universe.excluded_leveraged),
            "rejected_names": len(universe.rejected),
            "status_note": universe.status_note or "status from exchangeInfo",
            "path": dg.MetadataValue.path(str(lake.layout.universe_file)),
            "preview": dg.MetadataValue.md(_preview(universe)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="discovered_live",
                passed=not universe.fallback_used,
                severity=dg.AssetCheckSeverity.WARN,
                description="static top-100 fallback used" if universe.fallback_used else "live discovery",
                metadata={"fallback_used": universe.fallback_used, "count": len(universe.pairs)},
            )
        ],
    )


def _preview(universe: Universe, limit: int = 25) -> str:
    lines = ["| symbol | base | quote | status | sector | source |", "|---|---|---|---|---|---|"]
    for p in universe.pairs[:limit]:
        lines.append(f"| {p.symbol} | {p.base} | {p.quote} | {p.status} | {p.sector or ''} | {p.source} |")
    if len(universe.pairs) > limit:
        lines.append(f"| ... {len(universe.pairs) - limit} more | | | | | |")
    return "\n".join(lines)
