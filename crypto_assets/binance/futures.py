"""Which futures contracts to ingest: perpetual or quarterly by name, and the USD-M and COIN-M universes.

A contract's name says its kind, as Binance names them: ``BTCUSDT`` (USD-M) and ``BTCUSD_PERP`` (COIN-M) are
perpetual; ``BTCUSDT_250328`` and ``BTCUSD_250328`` are quarterly ("delivery") contracts, delivered on that day at
08:00 UTC. Both universes come from the bucket listing (``data/futures/{um,cm}/monthly/klines/``), where delisted and
delivered contracts keep their folders, so nothing that ever traded is missed. The live exchangeInfo
(``/fapi/v1/exchangeInfo``, ``/dapi/v1/exchangeInfo``) only adds status, contract type and onboard date; when it
refuses this location (HTTP 451) or fails, the universe is the same and its ``status_note`` says why those are unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from crypto_assets.binance.archives import MarketType, monthly_prefix
from crypto_assets.binance.client import BinanceClient, BinanceHTTPError, GeoBlockedError
from crypto_assets.binance.universe import DiscoveryError, split_symbol

PERPETUAL, DELIVERY = "perpetual", "delivery"
EXCHANGE_INFO_PATHS = {MarketType.UM: "/fapi/v1/exchangeInfo", MarketType.CM: "/dapi/v1/exchangeInfo"}
CM_QUOTE = "USD"  # every COIN-M contract is quoted in USD
_NAME_RE = re.compile(r"^([A-Z0-9]{2,30})(?:_(PERP|\d{6}))?$")


def contract_kind(symbol: str) -> str:
    """``perpetual`` (BTCUSDT, BTCUSD_PERP) or ``delivery`` (BTCUSDT_250328, BTCUSD_250328); ValueError naming the
    symbol when it is neither."""
    match = _NAME_RE.match(symbol)
    if match is None:
        raise ValueError(f"{symbol!r} is not a futures contract name; expected a perpetual (BTCUSDT, BTCUSD_PERP) "
                         "or a quarterly contract (BTCUSDT_250328)")  # fmt: skip
    if match.group(2) in (None, "PERP"):
        return PERPETUAL
    delivery_date(symbol)  # a real day, or ValueError
    return DELIVERY


def delivery_date(symbol: str) -> date | None:
    """The delivery day of a quarterly contract (``BTCUSDT_250328`` -> 2025-03-28, delivered at 08:00 UTC); None for
    a perpetual. ValueError when the suffix is not a date."""
    suffix = symbol.rpartition("_")[2] if "_" in symbol else ""
    if not suffix.isdigit():
        return None
    try:
        return date(2000 + int(suffix[:2]), int(suffix[2:4]), int(suffix[4:6]))
    except ValueError:
        raise ValueError(
            f"{symbol!r}: {suffix!r} is not a delivery day; expected YYMMDD, e.g. BTCUSDT_250328"
        ) from None


def contract_pair(symbol: str) -> str:
    """The underlying pair of a contract: ``BTCUSDT`` for BTCUSDT and BTCUSDT_250328, ``BTCUSD`` for BTCUSD_PERP."""
    return symbol.partition("_")[0]


def exchange_info_url(market: MarketType, api_url: str) -> str:
    """``{api_url}/fapi/v1/exchangeInfo`` (um, api_url e.g. https://fapi.binance.com) or ``/dapi/v1/exchangeInfo``."""
    return api_url.rstrip("/") + EXCHANGE_INFO_PATHS[MarketType(market)]


@dataclass(frozen=True)
class Contract:
    symbol: str
    market: str  # "um" or "cm"
    kind: str  # perpetual / delivery
    pair: str  # BTCUSDT, BTCUSD
    base: str  # BTC (1000PEPE for 1000PEPEUSDT)
    quote: str  # USDT, USDC (um); USD (cm)
    # exchangeInfo's status in lower case (trading, pending_trading, settling...); delisted / delivered when absent
    # from an exchangeInfo that answered; unknown when it did not answer
    status: str
    contract_type: str | None  # PERPETUAL (from the name), CURRENT_QUARTER / NEXT_QUARTER (from exchangeInfo)
    onboard_date: str | None  # YYYY-MM-DD (UTC), from exchangeInfo
    delivery_date: str | None  # YYYY-MM-DD, from the name of a quarterly contract
    source: str = "bucket listing"


@dataclass
class FuturesUniverse:
    market: str  # "um" or "cm"
    contracts: list[Contract]
    exchange_info: str  # answered / geo-blocked / failed / not asked
    status_note: str | None = None  # why status, contract type and onboard date are unknown, when they are
    rejected: list[str] = field(default_factory=list)  # listing folders that are not contract names
    excluded_delivery: list[str] = field(default_factory=list)  # quarterly contracts, left out unless asked for
    other_quotes: list[str] = field(default_factory=list)  # USD-M contracts quoted in another asset (BTCUSDC)

    @property
    def symbols(self) -> list[str]:
        return [c.symbol for c in self.contracts]


def discover_futures(client: BinanceClient, market: MarketType, *, api_url: str | None, quote: str = "USDT",
                     include_delivery: bool = False) -> FuturesUniverse:  # fmt: skip
    """The contracts of ``market`` (um or cm) to ingest, from the bucket listing, delisted ones included.

    USD-M: the perpetuals quoted in ``quote``; COIN-M: every perpetual (all are quoted in USD). Quarterly contracts
    (of that quote) only with ``include_delivery``. ``api_url`` is the market's REST host (``https://fapi.binance.com``
    for um, ``https://dapi.binance.com`` for cm): its exchangeInfo adds status, contract type and onboard date; None
    asks nothing. Raises DiscoveryError when the listing cannot be read; exchangeInfo's failure is only noted."""
    market = MarketType(market)
    if not market.is_futures:
        raise ValueError(f"futures discovery of market {market.value!r}; expected um or cm")
    try:
        folders = client.list_folders(monthly_prefix(market=market))
    except (BinanceHTTPError, ValueError) as exc:  # ValueError: a listing page that is not S3's XML
        raise DiscoveryError(f"futures discovery ({market.value}) failed reading the bucket listing: {exc}") from exc
    universe = FuturesUniverse(market.value, [], "not asked")
    info = _exchange_info(client, market, api_url, universe)
    wanted_quote = quote if market is MarketType.UM else CM_QUOTE
    for name in sorted(set(folders)):
        try:
            kind = contract_kind(name)
        except ValueError:
            universe.rejected.append(name)
            continue
        pair = contract_pair(name)
        base = split_symbol(pair, wanted_quote)
        if base is None:
            (universe.other_quotes if market is MarketType.UM else universe.rejected).append(name)
            continue
        if kind == DELIVERY and not include_delivery:
            universe.excluded_delivery.append(name)
            continue
        day = delivery_date(name)
        contract = Contract(
            symbol=name, market=market.value, kind=kind, pair=pair, base=base, quote=wanted_quote, status="unknown",
            contract_type="PERPETUAL" if kind == PERPETUAL else None, onboard_date=None,
            delivery_date=day.isoformat() if day else None,
        )  # fmt: skip
        universe.contracts.append(contract if info is None else _enriched(contract, info.get(name)))
    return universe


def _exchange_info(client: BinanceClient, market: MarketType, api_url: str | None,
                   universe: FuturesUniverse) -> dict[str, dict] | None:  # fmt: skip
    """The market's exchangeInfo symbols by name, or None (with ``universe``'s exchange_info and status_note saying
    why) when it was not asked, is geo-blocked or failed."""
    if api_url is None:
        why = "no exchangeInfo URL was given"
    else:
        url = exchange_info_url(market, api_url)
        try:
            symbols = client.exchange_info(url).get("symbols")
            if not isinstance(symbols, list):
                raise ValueError(f"GET {url} answered no 'symbols' list; expected Binance's exchangeInfo")
        except GeoBlockedError as exc:
            universe.exchange_info, why = "geo-blocked", f"exchangeInfo is geo-blocked ({exc})"
        except (BinanceHTTPError, ValueError) as exc:
            universe.exchange_info, why = "failed", f"exchangeInfo failed ({exc})"
        else:
            universe.exchange_info = "answered"
            return {str(s.get("symbol")): s for s in symbols if isinstance(s, dict)}
    universe.status_note = (
        f"status, contract type and onboard date unknown: {why}; the contracts come from the bucket listing alone"
    )
    return None


def _enriched(contract: Contract, entry: dict | None) -> Contract:
    """``contract`` with what an answered exchangeInfo says of it (``entry``; None when it is absent: gone)."""
    if entry is None:
        return replace(contract, status="delisted" if contract.kind == PERPETUAL else "delivered")
    status = entry.get("status") or entry.get("contractStatus")  # dapi calls it contractStatus
    contract_type, onboard = entry.get("contractType"), entry.get("onboardDate")
    return replace(
        contract,
        status=status.lower() if isinstance(status, str) and status else "unknown",
        contract_type=contract_type if isinstance(contract_type, str) else contract.contract_type,
        onboard_date=_utc_day(onboard) if isinstance(onboard, int) and not isinstance(onboard, bool) else None,
    )


def _utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()
