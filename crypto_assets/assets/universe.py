"""pair_universe and each futures market's contract_universe: which Binance pairs and contracts the lake covers."""

from collections import Counter
from dataclasses import replace

import dagster as dg
from pydantic import Field

from crypto_assets.assets.markets import MarketAssets
from crypto_assets.binance.archives import MarketType
from crypto_assets.binance.futures import DELIVERY, PERPETUAL, FuturesUniverse, discover_futures
from crypto_assets.binance.universe import (
    PAIR_MODES,
    DiscoveryError,
    GeoBlockedDiscovery,
    OptionError,
    Universe,
    discover,
)
from crypto_assets.checks import check_result
from crypto_assets.lake import quality
from crypto_assets.lake.universe import write_contract_universe, write_universe
from crypto_assets.resources import BinanceResource, LakeResource, UniverseResource
from crypto_assets.settings import UNIVERSE_VARIABLES


class PairUniverseConfig(dg.Config):
    """Launchpad options; leave a field empty to use the deployment's (the ``universe`` resource, from CRYPTO_*)."""

    mode: str | None = Field(
        default=None, description=f"One of {', '.join(PAIR_MODES)}. Default: CRYPTO_PAIR_MODE."
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
    context: dg.AssetExecutionContext,
    config: PairUniverseConfig,
    binance: BinanceResource,
    lake: LakeResource,
    universe: UniverseResource,
) -> dg.MaterializeResult:
    """The USDT pairs to ingest, discovered live from Binance.

    Modes: `top100` (the study's static list), `diversified` (sector seeds, then 24h quote volume, then A-Z, up to
    the target; active pairs only), `all-usdt` (every pair trading now), `historical-usdt` (every pair ever listed
    in Binance's public archive, delisted ones included), `symbols` (exactly the ones given). Leveraged tokens are
    excluded unless asked for. If discovery fails the asset fails and the previous universe stays in place.
    """
    given = {"mode": config.mode, "target_pairs": config.target_pairs or None, "symbols": config.symbols or None,
             "include_leveraged": config.include_leveraged}  # fmt: skip
    given = {option: value for option, value in given.items() if value is not None}
    try:
        options = universe.options(**given)
    except OptionError as exc:
        variable = UNIVERSE_VARIABLES[exc.option]
        where = "run config" if exc.option in given else f"{variable}, or the run config"
        unset = f", or leave it unset to use {variable}" if exc.option in given else ""
        raise dg.Failure(f"pair_universe {exc.option} {exc.value!r} ({where}) {exc.expected}{unset}") from None
    try:
        discovered = discover(binance.client, options)
    except DiscoveryError as exc:
        if isinstance(exc, GeoBlockedDiscovery) and not config.allow_static_fallback:
            raise dg.Failure(f"{exc}. The previously materialized universe was left untouched.") from exc
        if not config.allow_static_fallback:
            raise dg.Failure(f"{exc}. The previously materialized universe was left untouched; retry later, or "
                             "set allow_static_fallback to use the static top-100 list.") from exc  # fmt: skip
        context.log.warning(f"{exc} -- FALLING BACK to the static top-100 list (allow_static_fallback=true)")
        discovered = discover(None, replace(options, mode="top100"))
        discovered.fallback_used = True
    write_universe(lake.layout, discovered)
    source = f"Binance ({binance.api_url})"
    if binance.synthetic:
        source = f"SYNTHETIC - local Binance stand-in, not market data ({binance.api_url})"
        context.log.warning(f"CRYPTO_DEMO is set: {source}")
    if discovered.status_note and options.mode == "historical-usdt":
        context.log.warning(discovered.status_note)
    if discovered.rejected:
        context.log.warning(f"ignored {len(discovered.rejected)} names that are not valid symbols: "
                            f"{discovered.rejected}")  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "data_source": source,
            "mode": options.mode,
            "count": len(discovered.pairs),
            "dagster/row_count": len(discovered.pairs),
            "fallback_used": discovered.fallback_used,
            "excluded_leveraged": len(discovered.excluded_leveraged),
            "rejected_names": len(discovered.rejected),
            "status_note": discovered.status_note or "status from exchangeInfo",
            "path": dg.MetadataValue.path(str(lake.layout.universe_file)),
            "preview": dg.MetadataValue.md(_preview(discovered)),
        },
        check_results=[check_result(quality.discovered_live(discovered.fallback_used, len(discovered.pairs)))],
    )


def _preview(universe: Universe, limit: int = 25) -> str:
    lines = ["| symbol | base | quote | status | sector | source |", "|---|---|---|---|---|---|"]
    for p in universe.pairs[:limit]:
        lines.append(f"| {p.symbol} | {p.base} | {p.quote} | {p.status} | {p.sector or ''} | {p.source} |")
    if len(universe.pairs) > limit:
        lines.append(f"| ... {len(universe.pairs) - limit} more | | | | | |")
    return "\n".join(lines)


_CONTRACTS_DOC = """The {market} contracts to ingest, from Binance's bucket listing
(`data/futures/{m}/monthly/klines/`).

{which} Delisted and delivered contracts keep their folders in the listing, so they are in (no survivorship bias).
Quarterly (delivery) contracts such as `BTCUSDT_250328` only with CRYPTO_INCLUDE_DELIVERY=true. The live
exchangeInfo ({rest}) only adds status, contract type and onboard date when it answers; a 451 (geo-block) or an
outage leaves the universe intact and says so in `exchange_info` and `status_note`. If the listing cannot be read
the asset fails and the previous universe stays in place. Written to `universe/{m}_contract_universe.json`."""
_WHICH = {MarketType.UM: "USD-M: the perpetual contracts quoted in CRYPTO_QUOTE (USDT).",
          MarketType.CM: "COIN-M: every coin-margined perpetual (`BTCUSD_PERP`, ...)."}  # fmt: skip
_REST = {MarketType.UM: "BINANCE_FAPI_URL `/fapi/v1/exchangeInfo`",
         MarketType.CM: "BINANCE_DAPI_URL `/dapi/v1/exchangeInfo`"}  # fmt: skip


def contract_universe_asset(market: MarketType) -> dg.AssetsDefinition:
    """``{market}/contract_universe``: the futures contracts of ``market`` (um or cm) the monthly assets cover."""
    m = MarketAssets(market)
    doc = _CONTRACTS_DOC.replace("{which}", _WHICH[market]).replace("{rest}", _REST[market])

    @dg.asset(
        key=m.universe_key,
        group_name=m.group("ingestion"),
        kinds={"python"},
        check_specs=[
            dg.AssetCheckSpec(
                "contracts_found",
                asset=m.universe_key,
                description="The bucket listing gave at least one contract of the market.",
            )
        ],
        description=m.describe(doc),
    )
    def contract_universe(
        context: dg.AssetExecutionContext, binance: BinanceResource, lake: LakeResource, universe: UniverseResource
    ) -> dg.MaterializeResult:
        try:
            found = discover_futures(binance.client, market, api_url=binance.rest_url(market), quote=universe.quote,
                                     include_delivery=universe.include_delivery)  # fmt: skip
        except DiscoveryError as exc:
            raise dg.Failure(f"{exc}. The previously materialized contract universe was left untouched; check "
                             "BINANCE_LISTING_URL and retry.") from exc  # fmt: skip
        layout = m.layout(lake)
        write_contract_universe(layout, found)
        if found.status_note:
            context.log.warning(f"{market.value}: {found.status_note}")
        kinds = Counter(c.kind for c in found.contracts)
        statuses = Counter(c.status for c in found.contracts)
        source = f"Binance ({binance.listing_url})"
        if binance.synthetic:
            source = f"SYNTHETIC - local Binance stand-in, not market data ({binance.listing_url})"
        return dg.MaterializeResult(
            metadata={
                "data_source": source,
                "market": market.value,
                "count": len(found.contracts),
                "dagster/row_count": len(found.contracts),
                "perpetual": kinds.get(PERPETUAL, 0),
                "delivery": kinds.get(DELIVERY, 0),
                "delisted_or_delivered": statuses.get("delisted", 0) + statuses.get("delivered", 0),
                "excluded_delivery": len(found.excluded_delivery),
                "other_quotes": len(found.other_quotes),
                "rejected_names": len(found.rejected),
                "exchange_info": found.exchange_info,
                "status_note": found.status_note or "status from exchangeInfo",
                "path": dg.MetadataValue.path(str(layout.universe_file)),
                "preview": dg.MetadataValue.md(_contracts_preview(found)),
            },
            check_results=[check_result(quality.contracts_found(market.value, len(found.contracts)))],
        )

    return contract_universe


def _contracts_preview(universe: FuturesUniverse, limit: int = 25) -> str:
    lines = ["| symbol | kind | base | quote | status | onboard | delivery |", "|---|---|---|---|---|---|---|"]
    for c in universe.contracts[:limit]:
        lines.append(f"| {c.symbol} | {c.kind} | {c.base} | {c.quote} | {c.status} | {c.onboard_date or ''} | "
                     f"{c.delivery_date or ''} |")  # fmt: skip
    if len(universe.contracts) > limit:
        lines.append(f"| ... {len(universe.contracts) - limit} more | | | | | | |")
    return "\n".join(lines)
