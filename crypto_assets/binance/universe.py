"""Which pairs to ingest: the study's five discovery modes and their options, and a leveraged-token rule that keeps
real pairs.

Binance's leveraged tokens were named ``{ASSET}{UP|DOWN|BULL|BEAR}`` (BTCUP, ETHBULL, XRPBEAR). A suffix test alone
drops real pairs such as SYRUP or JUP; we call a pair leveraged only when stripping the suffix leaves an asset that
itself trades (BTCUP -> BTC), which SYRUP -> SYR and JUP -> J do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crypto_assets.binance.archives import monthly_prefix
from crypto_assets.binance.client import BinanceClient, BinanceHTTPError, GeoBlockedError

PAIR_MODES = ("top100", "diversified", "all-usdt", "historical-usdt", "symbols")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")
_QUOTE_RE = re.compile(r"^[A-Z0-9]{2,10}$")
LEVERAGED_SUFFIXES = ("DOWN", "BULL", "BEAR", "UP")
# Assets Binance issued leveraged tokens for, so the rule holds even when the underlying pair is not in view.
LEVERAGED_UNDERLYINGS = frozenset(
    "BTC ETH BNB XRP ADA LINK DOT TRX LTC EOS XTZ FIL SXP YFI UNI AAVE SUSHI XLM BCH 1INCH BSV".split()
)

# The study's static top-100 USDT list (by market cap, late 2024), in its order.
TOP100 = tuple(
    f"{base}USDT"
    for base in """BTC ETH BNB SOL XRP DOGE ADA TRX AVAX SHIB TON LINK DOT BCH NEAR SUI LTC PEPE UNI APT ICP ETC FET
    HBAR XLM RENDER STX POL ARB TAO OP FIL INJ ATOM IMX VET WIF AAVE MKR GRT ONDO THETA BONK RUNE FLOKI TIA SEI ALGO
    JUP PYTH LDO ENA FTM BEAM GALA QNT FLOW EGLD AXS SAND XTZ NEO ORDI MANA CHZ WLD STRK KAVA EOS APE CFX JTO SNX
    CAKE ROSE MINA PENDLE CRV ZEC GMT DYDX IOTA COMP 1INCH ENS SUPER AR RAY TWT BLUR XEC ZIL CELO KSM DASH LUNC RSR
    ENJ TFUEL GLM""".split()
)

# Sector seeds for the diversified mode, taken in this order before filling by 24h quote volume.
SECTORS: dict[str, tuple[str, ...]] = {
    "large cap": ("BTC", "ETH", "BNB", "SOL", "XRP", "ADA", "AVAX", "TRX", "DOT", "LTC"),
    "meme": ("DOGE", "SHIB", "PEPE", "WIF", "BONK", "FLOKI"),
    "stable": ("USDC", "FDUSD", "TUSD", "USDP"),
    "commodity": ("PAXG",),
    "infra/exchange": ("LINK", "ATOM", "NEAR", "TON", "ARB", "OP", "POL", "CAKE"),
    "defi": ("UNI", "AAVE", "MKR", "CRV", "COMP", "LDO", "PENDLE", "JUP", "SYRUP"),
    "ai/data": ("FET", "RENDER", "TAO", "GRT", "WLD", "AR", "OCEAN"),
    "gaming/nft": ("AXS", "SAND", "MANA", "GALA", "IMX", "APE", "ENJ", "BEAM"),
}


class DiscoveryError(RuntimeError):
    """Live pair discovery failed (after retries); the message says which call and why."""


class GeoBlockedDiscovery(DiscoveryError):
    """The mode needs Binance's live API, which refuses this location (HTTP 451); retrying will not help."""


# What still works when the API answers 451: the archive host and its bucket listing stay reachable.
GEO_BLOCK_ADVICE = (
    "modes historical-usdt and symbols need only data.binance.vision and its bucket listing and work from here "
    "(set CRYPTO_PAIR_MODE or the run config's mode), or point BINANCE_API_URL at a reachable mirror of the API"
)


class OptionError(ValueError):
    """A universe option that is not allowed: ``option`` names the field, ``value`` is what was given and
    ``expected`` says what is allowed; the caller names where the value came from (a variable, the run config)."""

    def __init__(self, option: str, value: object, expected: str):
        super().__init__(f"{option}={value!r} {expected}")
        self.option, self.value, self.expected = option, value, expected


@dataclass(frozen=True)
class UniverseOptions:
    """What pair discovery is asked for, checked once here whatever their source (``CRYPTO_*`` variables, the run
    config): an option that is not allowed raises OptionError. Symbols are upper-cased."""

    mode: str = "historical-usdt"
    quote: str = "USDT"
    target_pairs: int = 300  # size of the diversified universe
    symbols: tuple[str, ...] = ()  # mode "symbols": exactly these pairs
    include_leveraged: bool = False

    def __post_init__(self) -> None:
        symbols = tuple(s.strip().upper() for s in self.symbols if s.strip())
        object.__setattr__(self, "symbols", symbols)
        if self.mode not in PAIR_MODES:
            raise OptionError("mode", self.mode, f"is unknown; expected one of {', '.join(PAIR_MODES)}")
        if not _QUOTE_RE.match(self.quote):
            raise OptionError("quote", self.quote, "is not an asset symbol; expected e.g. USDT")
        for symbol in symbols:
            if not SYMBOL_RE.match(symbol):
                raise OptionError("symbols", symbol, f"is not a symbol; expected names matching {SYMBOL_RE.pattern}")
        if self.mode == "symbols" and not symbols:
            raise OptionError("symbols", "", "is empty; mode 'symbols' needs at least one pair, e.g. BTCUSDT,ETHUSDT")


@dataclass(frozen=True)
class Pair:
    symbol: str
    base: str
    quote: str
    status: str  # trading / not trading / delisted / unknown
    sector: str | None = None
    source: str = ""


@dataclass
class Universe:
    mode: str
    pairs: list[Pair]
    fallback_used: bool = False
    rejected: list[str] = field(default_factory=list)  # names from the network that are not valid symbols
    excluded_leveraged: list[str] = field(default_factory=list)
    status_note: str | None = None  # why the status column says "unknown", when it does

    @property
    def symbols(self) -> list[str]:
        return [p.symbol for p in self.pairs]


def is_leveraged(base: str, known_assets: set[str] | frozenset[str] = frozenset()) -> bool:
    """Whether ``base`` is a Binance leveraged token (BTCUP, ETHBULL), not a real asset ending alike (SYRUP, JUP)."""
    for suffix in LEVERAGED_SUFFIXES:
        underlying = base.removesuffix(suffix)
        if underlying != base and underlying and (underlying in known_assets or underlying in LEVERAGED_UNDERLYINGS):
            return True
    return False


def split_symbol(symbol: str, quote: str) -> str | None:
    """The base asset of ``symbol`` when it is quoted in ``quote``, else None."""
    if symbol.endswith(quote) and len(symbol) > len(quote):
        return symbol[: -len(quote)]
    return None


def discover(client: BinanceClient | None, options: UniverseOptions) -> Universe:
    """Build the universe ``options`` ask for; raises DiscoveryError when a live call fails after its retries.
    ``client`` may be None for the modes that need no network (top100, symbols)."""
    mode, quote = options.mode, options.quote
    try:
        if mode == "top100":
            pairs = [_pair(s, quote, "unknown", "static top-100 list") for s in TOP100 if split_symbol(s, quote)]
            universe = Universe(mode, pairs)
        elif mode == "symbols":
            universe = Universe(
                mode,
                [_pair(s, quote, "unknown", "CRYPTO_SYMBOLS") for s in options.symbols],
                status_note="mode symbols takes the pairs as given; their status is not looked up",
            )
        elif mode == "all-usdt":
            universe = _all_active(client, quote)
        elif mode == "diversified":
            universe = _diversified(client, quote, options.target_pairs)
        else:
            universe = _historical(client, quote)
    except GeoBlockedError as exc:
        raise GeoBlockedDiscovery(
            f"pair discovery ({mode}) needs Binance's live API, which refuses this location: {exc}. Instead: "
            f"{GEO_BLOCK_ADVICE}"
        ) from exc
    except (BinanceHTTPError, ValueError) as exc:  # ValueError: an answer that is not what Binance sends
        raise DiscoveryError(f"pair discovery ({mode}) failed: {exc}") from exc
    if not options.include_leveraged and mode != "symbols":
        assets = {p.base for p in universe.pairs}
        universe.excluded_leveraged = [p.symbol for p in universe.pairs if is_leveraged(p.base, assets)]
        universe.pairs = [p for p in universe.pairs if p.symbol not in set(universe.excluded_leveraged)]
    return universe


def _pair(symbol: str, quote: str, status: str, source: str, sector: str | None = None) -> Pair:
    base = split_symbol(symbol, quote) or symbol
    return Pair(symbol=symbol, base=base, quote=quote, status=status, sector=sector, source=source)


def _active_symbols(client: BinanceClient, quote: str) -> tuple[dict[str, dict], list[str]]:
    """exchangeInfo symbols quoted in ``quote`` (valid names only) and the names rejected as invalid."""
    info, rejected = {}, []
    for entry in client.exchange_info().get("symbols", []):
        name = str(entry.get("symbol", ""))
        if not SYMBOL_RE.match(name):
            rejected.append(name)
        elif entry.get("quoteAsset") == quote and split_symbol(name, quote):
            info[name] = entry
    return info, rejected


def _is_trading(entry: dict) -> bool:
    return entry.get("status") == "TRADING" and entry.get("isSpotTradingAllowed", True) is not False


def _all_active(client: BinanceClient, quote: str) -> Universe:
    info, rejected = _active_symbols(client, quote)
    pairs = [_pair(s, quote, "trading", "exchangeInfo") for s in sorted(info) if _is_trading(info[s])]
    return Universe("all-usdt", pairs, rejected=rejected)


def _diversified(client: BinanceClient, quote: str, target: int) -> Universe:
    info, rejected = _active_symbols(client, quote)
    active = {s for s, e in info.items() if _is_trading(e)}
    volume: dict[str, float] = {}
    for ticker in client.tickers_24h():
        try:
            volume[str(ticker.get("symbol"))] = float(ticker.get("quoteVolume") or 0)
        except (TypeError, ValueError):
            continue
    chosen: dict[str, Pair] = {}
    for sector, bases in SECTORS.items():
        for base in bases:
            symbol = f"{base}{quote}"
            if symbol in active and symbol not in chosen and len(chosen) < target:
                chosen[symbol] = _pair(symbol, quote, "trading", "sector seed", sector)
    for symbol in sorted(active - set(chosen), key=lambda s: (-volume.get(s, 0.0), s)):
        if len(chosen) >= target:
            break
        chosen[symbol] = _pair(symbol, quote, "trading", "24h quote volume")
    return Universe("diversified", list(chosen.values()), rejected=rejected)


def _historical(client: BinanceClient, quote: str) -> Universe:
    prefix = monthly_prefix()
    folders = client.list_folders(prefix)
    note = None
    try:
        info, rejected = _active_symbols(client, quote)
    except GeoBlockedError as exc:  # the listing alone says which pairs ever traded; only their status is unknown
        info, rejected = None, []
        note = f"status unknown: exchangeInfo is geo-blocked, the pairs come from the bucket listing alone ({exc})"
    pairs = []
    for name in sorted(set(folders)):
        if not SYMBOL_RE.match(name):
            rejected.append(name)
            continue
        if not split_symbol(name, quote):
            continue
        entry = None if info is None else info.get(name)
        status = "unknown" if info is None else "delisted" if entry is None else (
            "trading" if _is_trading(entry) else "not trading")  # fmt: skip
        pairs.append(_pair(name, quote, status, "bucket listing"))
    return Universe("historical-usdt", pairs, rejected=rejected, status_note=note)
