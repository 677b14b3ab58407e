"""A local stand-in for Binance's public data: archive host, S3 bucket listing and REST API, on 127.0.0.1.

Format-exact to what the pipeline downloads from the real service (see the project docs on the Binance format):
monthly/daily kline zips with one CSV member, ``.CHECKSUM`` siblings (``<sha256>  <name>``, no trailing newline),
S3 ``NoSuchKey`` 404s, S3 ListObjects v1 pages, ``/api/v3/exchangeInfo`` and ``/api/v3/ticker/24hr``.
Kline data is synthetic (a deterministic random walk per pair) except BTCUSDT 5m for 2024-12 and 2025-01, which are
served byte-exact from real Binance archives in ``fixtures/real/``. Standard library only.

Beside spot, the USD-M (``um``) and COIN-M (``cm``) futures markets, as Binance serves them: kline archives under
``data/futures/{um,cm}/{monthly,daily}/klines/`` (a header line from 2022 on, millisecond timestamps, prices at the
contract's tick, COIN-M volumes in contracts), monthly funding-rate archives under
``data/futures/{um,cm}/monthly/fundingRate/``, and ``/fapi/v1/exchangeInfo`` / ``/dapi/v1/exchangeInfo``. A futures
archive is named like a spot one plus ``futures="um"`` or ``"cm"`` (``market.expected("BTCUSD_PERP", "4h",
"2025-02", futures="cm")``, ``standin.faults.corrupt_zip(..., futures="um")``); a funding archive's interval is
``FUNDING`` (``BTCUSDT-fundingRate-2025-02.zip``). The contracts are ``market.contracts`` (``ContractSpec``).

Typical use in a test::

    market = Market.default()
    with StandIn(market, page_size=5) as standin:      # real HTTP server on a free port
        standin.faults.fail_once(0.2, status=503)       # every fault is deterministic and reproducible
        run_pipeline(**standin.env())                   # BINANCE_DATA_URL / BINANCE_LISTING_URL / BINANCE_API_URL
        truth = market.expected("BTCUSDT", "4h", "2025-02")
        assert standin.stats()["by_kind"]["zip"] > 0

Anomalies are switched on by editing a ``PairSpec`` (``market.pair("ETHUSDT").duplicates = [...]``). Cached
archives are keyed on the spec's current fields, so an edit takes effect at once; ``Market.invalidate()`` drops
the cache entirely (e.g. after replacing ``market.pairs``).

From the shell (for a benchmark or a demo in another process)::

    python -m crypto_assets_tests.binance_standin --port 8765 [--pairs 600] [--latency-ms 20] [--page-size 1000]

and steer it over HTTP: ``GET /_standin/stats``, ``POST /_standin/reset_stats``, ``POST /_standin/faults``,
``POST /_standin/publish``, ``POST /_standin/today``, ``POST /_standin/replace`` (JSON bodies, see ``StandIn``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import math
import random
import signal
import socket
import sys
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

DAY_MS = 86_400_000
INTERVAL_MS: dict[str, int] = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000,
    "1d": DAY_MS, "3d": 3 * DAY_MS, "1w": 7 * DAY_MS,
}  # fmt: skip
INTERVALS: tuple[str, ...] = (*INTERVAL_MS, "1mo")
DAILY_INTERVALS: tuple[str, ...] = tuple(i for i, ms in INTERVAL_MS.items() if ms <= DAY_MS)
DEFAULT_LISTING_INTERVALS: tuple[str, ...] = ("1m", "5m", "1h", "4h", "1d")
# Spot archives switched from millisecond to microsecond timestamps for candles opening on or after this instant.
MICROSECONDS_FROM_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC
_WEEK_ORIGIN_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; weekly candles open on Mondays
FUTURES_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)
FUTURES = ("um", "cm")  # USD-M and COIN-M, as in data/futures/{um,cm}/
# Futures kline CSVs start with FUTURES_HEADER for candles from this instant on; older files have no header line.
FUTURES_HEADER_FROM_MS = 1_640_995_200_000  # 2022-01-01 00:00 UTC
FUNDING = "fundingRate"  # where a kline archive's name has its interval: BTCUSDT-fundingRate-2025-01.zip
FUNDING_HEADER = "calc_time,funding_interval_hours,last_funding_rate"
HOUR_MS = 3_600_000
PERPETUAL_DELIVERY_MS = 4_133_404_800_000  # the deliveryDate exchangeInfo gives a perpetual: 2100-12-25 08:00 UTC
DELIVERY_HOUR_MS = 8 * HOUR_MS  # quarterly contracts are delivered at 08:00 UTC on their day
EXCHANGE_INFO_PATHS = {"um": "/fapi/v1/exchangeInfo", "cm": "/dapi/v1/exchangeInfo"}
BUCKET = "data.binance.vision"
S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
FIXTURES = Path(__file__).parent / "fixtures" / "real"
REAL_ARCHIVES = {("BTCUSDT", "5m", "2024-12"), ("BTCUSDT", "5m", "2025-01")}
ZIP_CACHE_BYTES = 512 << 20
KINDS = ("zip", "checksum", "listing", "api", "other")
# What api.binance.com answers from a restricted location (the US among them), to every REST endpoint.
GEO_BLOCK_BODY = (
    b'{"code": 0, "msg": "Service unavailable from a restricted location according to \'b. Eligibility\' in '
    b"https://www.binance.com/en/terms. Please contact customer service if you believe you received this message "
    b'in error."}'
)
HOSTILE_ZIPS = ("no_member", "two_members", "other_name", "bomb", "empty_csv", "non_ascii", "wrong_fields")
HOSTILE_CHECKSUMS = ("malformed", "other_name")

# Rough price levels and daily volatility, so the synthetic candles look like the asset they are named after.
_BASE_PRICES = {
    "BTC": 60000.0, "ETH": 3000.0, "BNB": 600.0, "SOL": 150.0, "XRP": 1.0, "DOGE": 0.2, "USDC": 1.0, "TUSD": 1.0,
    "PAXG": 2600.0, "FET": 1.2, "AXS": 6.0, "UNI": 9.0, "JUP": 0.8, "SYRUP": 0.3, "KMD": 0.25, "ALPACA": 0.05,
    "BTCUP": 20.0, "BTCDOWN": 0.005, "ETHBULL": 500.0, "XRPBEAR": 0.0001, "ADA": 0.6, "TRX": 0.2, "AVAX": 30.0,
    "LINK": 15.0, "DOT": 6.0, "LTC": 90.0, "BCH": 400.0, "ATOM": 7.0, "NEAR": 4.0, "APT": 9.0, "ARB": 0.7,
    "OP": 1.8, "SUI": 2.5, "PEPE": 0.00001, "SHIB": 0.00002, "WIF": 2.0, "INJ": 22.0, "TIA": 6.0, "AAVE": 200.0,
}  # fmt: skip
_STABLE = {"USDC", "TUSD", "FDUSD", "DAI", "USDP"}


@dataclass
class PairSpec:
    """One trading pair of the market: its life span, ticker figures and the archive anomalies to serve.

    Times are UTC. Candles exist from ``listed`` 00:00 until (not including) ``delisted`` 00:00, minus ``gaps``.
    The anomaly fields (``duplicates`` .. ``ohlc_violation``) change only what the archives contain, never the
    ground truth of ``Market.expected`` (which counts them separately).
    """

    symbol: str  # e.g. "BTCUSDT"
    base: str  # "BTC"
    quote: str = "USDT"
    listed: str = "2017-08-17"  # first day (YYYY-MM-DD) with candles; candles start at 00:00 that day
    delisted: str | None = None  # first day with NO candles (None = still trading)
    status: str = "TRADING"  # exchangeInfo status while listed (TRADING, BREAK, HALT...)
    spot_allowed: bool = True  # exchangeInfo isSpotTradingAllowed
    quote_volume: float = 1e6  # 24h ticker quoteVolume
    gaps: list[tuple[int, int]] = field(default_factory=list)  # [start_ms, end_ms) open times removed (maintenance)
    duplicates: list[int] = field(default_factory=list)  # open_time ms whose line appears twice
    header_row: bool = False  # archive CSV starts with the futures-style header line
    crlf: bool = False  # lines end in \r\n
    blank_lines: bool = False  # a few blank lines inside and at the end
    malformed: dict[int, str] = field(default_factory=dict)  # open_time ms -> raw text replacing that row's line
    ohlc_violation: list[int] = field(default_factory=list)  # open_time ms whose row has high < max(open, close)

    @property
    def end_ms(self) -> int | None:
        """The first instant without candles (delisted 00:00), None while trading."""
        return _day_ms(self.delisted) if self.delisted else None


@dataclass
class ContractSpec:
    """One futures contract: USD-M (``futures="um"``, quoted and margined in USDT or USDC) or COIN-M (``"cm"``,
    quoted in USD, margined in the base coin, traded in whole contracts of ``contract_size`` USD).

    The name says the kind, as on Binance: ``BTCUSDT`` and ``BTCUSD_PERP`` are perpetual; ``BTCUSDT_250328`` and
    ``BTCUSD_250328`` quarterly, delivered on that day at 08:00 UTC, and without funding. Times are UTC: candles
    exist from ``listed`` 00:00 until ``delisted`` 00:00 or the delivery, minus ``gaps``. A perpetual settles
    funding every ``funding_interval_hours`` on the hour grid of that interval (8 h: 00:00, 08:00, 16:00) strictly
    after ``listed`` 00:00 and before its end; ``funding`` lists (``"YYYY-MM-DD HH:MM"``, hours) changes of the
    interval, in order, each applying from that instant on.
    """

    symbol: str  # "BTCUSDT", "BTCUSDT_250328" (um); "BTCUSD_PERP", "BTCUSD_250328" (cm)
    futures: str  # "um" or "cm"
    base: str  # "BTC"; "1000PEPE" is priced per 1000 PEPE
    quote: str = "USDT"  # "USD" for cm
    listed: str = "2019-09-08"  # onboard day (YYYY-MM-DD): candles start at 00:00
    delisted: str | None = None  # perpetuals: first day with NO candles (None = still trading)
    status: str = "TRADING"  # exchangeInfo status once onboard
    quote_volume: float = 1e9  # daily notional in the quote asset (USD for cm)
    funding_interval_hours: int = 8
    funding: list[tuple[str, int]] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # [start_ms, end_ms) open times removed (maintenance)

    @property
    def perpetual(self) -> bool:
        return "_" not in self.symbol or self.symbol.endswith("_PERP")

    @property
    def pair(self) -> str:
        """The underlying pair: ``BTCUSDT`` for BTCUSDT_250328, ``BTCUSD`` for BTCUSD_PERP."""
        return self.symbol.split("_")[0]

    @property
    def delivery_ms(self) -> int | None:
        """The delivery instant of a quarterly contract (its ``_YYMMDD`` day, 08:00 UTC); None for a perpetual."""
        if self.perpetual:
            return None
        day = self.symbol.rsplit("_", 1)[1]
        return _day_ms(f"20{day[:2]}-{day[2:4]}-{day[4:]}") + DELIVERY_HOUR_MS

    @property
    def end_ms(self) -> int | None:
        """The first instant without candles: the delivery, or delisted 00:00; None while a perpetual trades."""
        ends = [t for t in (self.delivery_ms, _day_ms(self.delisted) if self.delisted else None) if t is not None]
        return min(ends, default=None)

    @property
    def contract_size(self) -> int | None:
        """USD per COIN-M contract: 100 for BTC, 10 for the others; None for USD-M (traded in the base asset)."""
        return None if self.futures == "um" else 100 if self.base == "BTC" else 10

    def funding_hours_at(self, ms: int) -> int:
        hours = self.funding_interval_hours
        for since, changed in self.funding:
            if _instant_ms(since) <= ms:
                hours = changed
        return hours


def has_futures_header(period: str) -> bool:
    """Whether the futures kline archive of ``period`` (YYYY-MM or YYYY-MM-DD) starts with FUTURES_HEADER."""
    return _period_range(period)[0] >= FUTURES_HEADER_FROM_MS


# --- calendar helpers ------------------------------------------------------------------------------------------------
def _day_ms(day: str) -> int:
    return (date.fromisoformat(day) - date(1970, 1, 1)).days * DAY_MS


def _day_str(ms: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=ms // DAY_MS)).isoformat()


def _instant_ms(text: str) -> int:
    """Epoch ms of a UTC ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _month_start_ms(month: str) -> int:
    return _day_ms(f"{month}-01")


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def _month_of_ms(ms: int) -> str:
    return _day_str(ms)[:7]


def _period_range(period: str) -> tuple[int, int]:
    """[start, end) in ms of a monthly (YYYY-MM) or daily (YYYY-MM-DD) archive period."""
    if len(period) == 7:
        return _month_start_ms(period), _month_start_ms(_next_month(period))
    start = _day_ms(period)
    return start, start + DAY_MS


def _candle_end(interval: str, open_ms: int) -> int:
    """Open time of the next candle (close_time + 1)."""
    if interval == "1mo":
        return _month_start_ms(_next_month(_month_of_ms(open_ms)))
    return open_ms + INTERVAL_MS[interval]


def _align_up(interval: str, ms: int) -> int:
    """The first candle open time >= ms (1w opens Mondays, 3d on epoch days divisible by 3, 1mo on the 1st)."""
    if interval == "1mo":
        start = _month_start_ms(_month_of_ms(ms))
        return start if start == ms else _month_start_ms(_next_month(_month_of_ms(ms)))
    dur = INTERVAL_MS[interval]
    origin = _WEEK_ORIGIN_MS if interval == "1w" else 0
    return ms + (-(ms - origin)) % dur


def _hash_unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (independent of PYTHONHASHSEED)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# --- price model -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Profile:
    log_base: float  # ln of the price level
    sigma: float  # daily log-return volatility
    decimals: int  # price tick as decimals (the rest of the 8 decimals are zeros, as on Binance)


def _base_price(base: str) -> float:
    return _BASE_PRICES.get(base) or 10 ** (-4 + 6.5 * _hash_unit("price", base))


def _volatility(base: str) -> float:
    return 0.0004 if base in _STABLE else 0.008 if base == "PAXG" else 0.025 if base == "BTC" else 0.045


def _tick_decimals(price: float) -> int:
    return min(8, max(2, 5 - math.floor(math.log10(price))))


def _profile(spec: PairSpec) -> _Profile:
    price = _base_price(spec.base)
    if spec.quote == "BTC":
        price /= 60000.0
    elif spec.quote == "EUR":
        price *= 0.92
    return _Profile(math.log(price), _volatility(spec.base), _tick_decimals(price))


def _contract_profile(spec: ContractSpec) -> tuple[str, _Profile]:
    """The day anchors' symbol and the price profile of a contract: those of its base's USDT pair, so every BTC
    contract follows spot BTCUSDT's daily path (a 1000PEPE contract priced per 1000 PEPE); a COIN-M tick is one
    decimal coarser (BTCUSD_PERP 0.1 where BTCUSDT has 0.01)."""
    per_1000 = spec.base.startswith("1000") and len(spec.base) > 4
    underlying = spec.base[4:] if per_1000 else spec.base
    price = _base_price(underlying) * (1000 if per_1000 else 1)
    decimals = _tick_decimals(price) - (spec.futures == "cm")
    return f"{underlying}USDT", _Profile(math.log(price), _volatility(underlying), decimals)


_OCTAVES = (1, 4, 16, 64, 256)  # days; value noise at these scales with sqrt-scaled amplitude walks like a price


@functools.lru_cache(maxsize=1 << 18)
def _noise(symbol: str, scale: int, cell: int) -> float:
    return _hash_unit(symbol, scale, cell) * 2 - 1


@functools.lru_cache(maxsize=1 << 16)
def _anchor(symbol: str, profile: _Profile, day: int) -> float:
    """Log price at 00:00 UTC of epoch ``day``: multi-scale value noise, so it is O(1) for any day."""
    value = profile.log_base
    for scale in _OCTAVES:
        cell, frac = divmod(day, scale)
        left, right = _noise(symbol, scale, cell), _noise(symbol, scale, cell + 1)
        weight = (frac / scale) ** 2 * (3 - 2 * frac / scale)
        value += profile.sigma * math.sqrt(scale) * 0.7 * (left + (right - left) * weight)
    return value


def _fmt_price(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" + "0" * (8 - decimals)


def _candle_lines(
    spec: PairSpec, profile: _Profile, bounds: list[int], prices: list[float], rand, step: float
) -> list[str]:
    """CSV lines of consecutive candles: candle i opens at bounds[i] at prices[i] and closes before bounds[i + 1] at
    prices[i + 1]; high, low and volumes are drawn from ``rand``. The hot loop of the stand-in, hence inlined."""
    d, pad = f".{profile.decimals}f", "0" * (8 - profile.decimals)
    texts = [f"{p:{d}}{pad}" for p in prices]
    trade_size = 200 + spec.quote_volume / 1e6
    lines = []
    for i in range(len(bounds) - 1):
        open_ms, end_ms, o, c = bounds[i], bounds[i + 1], prices[i], prices[i + 1]
        hi = (o if o > c else c) * (1 + rand() * step)
        lo = (c if o > c else o) * (1 - rand() * step)
        quote_volume = spec.quote_volume * (end_ms - open_ms) / DAY_MS * (0.25 + 1.5 * rand())
        volume = quote_volume * 4 / (o + c + hi + lo)
        taker = 0.3 + 0.4 * rand()
        if open_ms >= MICROSECONDS_FROM_MS:
            open_ms, end_ms = open_ms * 1000, end_ms * 1000
        lines.append(
            f"{open_ms},{texts[i]},{hi:{d}}{pad},{lo:{d}}{pad},{texts[i + 1]},{volume:.8f},{end_ms - 1},"
            f"{quote_volume:.8f},{1 + int(quote_volume / trade_size)},{volume * taker:.8f},{quote_volume * taker:.8f},0"
        )
    return lines


def _contract_lines(
    spec: ContractSpec, profile: _Profile, bounds: list[int], prices: list[float], rand, step: float
) -> list[str]:
    """A contract's candle lines (see ``_candle_lines``) as Binance prints futures klines: ms timestamps, prices at the
    tick's decimals only; USD-M volume in the base asset and notional in the quote; COIN-M volume and taker-buy volume
    in whole contracts, and base-asset volumes where USD-M has its quote volumes (8th and 11th fields)."""
    d, size = f".{profile.decimals}f", spec.contract_size
    trade_size = 2000 + spec.quote_volume / 1e6
    lines = []
    for i in range(len(bounds) - 1):
        open_ms, end_ms, o, c = bounds[i], bounds[i + 1], prices[i], prices[i + 1]
        hi = (o if o > c else c) * (1 + rand() * step)
        lo = (c if o > c else o) * (1 - rand() * step)
        notional = spec.quote_volume * (end_ms - open_ms) / DAY_MS * (0.25 + 1.5 * rand())
        taker = 0.3 + 0.4 * rand()
        mean = (o + c + hi + lo) / 4
        if size:
            contracts = max(1, round(notional / size))
            bought = round(contracts * taker)
            volume, volume_2, taker_volume, taker_volume_2 = (
                contracts, f"{contracts * size / mean:.8f}", bought, f"{bought * size / mean:.8f}")  # fmt: skip
        else:
            volume, volume_2 = f"{notional / mean:.3f}", f"{notional:.4f}"
            taker_volume, taker_volume_2 = f"{notional * taker / mean:.3f}", f"{notional * taker:.4f}"
        lines.append(
            f"{open_ms},{o:{d}},{hi:{d}},{lo:{d}},{c:{d}},{volume},{end_ms - 1},{volume_2},"
            f"{1 + int(notional / trade_size)},{taker_volume},{taker_volume_2},0"
        )
    return lines


_Walk = tuple[list[int], list[float], random.Random, float]  # bounds, prices, the generator, the step


def _bridge(anchor: str, profile: _Profile, interval: str, day: int, seed: str) -> _Walk:
    """One UTC day at an interval shorter than a day: the candles' open times (and the next 00:00), the prices at
    those instants (a Brownian bridge between the day anchors of ``anchor``), the generator seeded by ``seed`` that
    drew them (the candles' other draws follow from it) and the walk's step."""
    dur = INTERVAL_MS[interval]
    n = DAY_MS // dur
    start, end = _anchor(anchor, profile, day), _anchor(anchor, profile, day + 1)
    rng = random.Random(seed)
    step = profile.sigma * math.sqrt(dur / DAY_MS)
    gauss, walk = rng.gauss, [0.0] * (n + 1)
    for i in range(1, n + 1):
        walk[i] = walk[i - 1] + gauss(0.0, step)
    drift = (end - start - walk[n]) / n
    prices = [math.exp(start + walk[i] + drift * i) for i in range(n + 1)]
    bounds = list(range(day * DAY_MS, (day + 1) * DAY_MS + 1, dur))
    return bounds, prices, rng, step


def _span(anchor: str, profile: _Profile, interval: str, open_ms: int, seed: str) -> _Walk:
    """One candle of 1d, 3d, 1w or 1mo, as ``_bridge`` gives them: from the day anchors at its open and close."""
    end_ms = _candle_end(interval, open_ms)
    prices = [math.exp(_anchor(anchor, profile, t // DAY_MS)) for t in (open_ms, end_ms)]
    return [open_ms, end_ms], prices, random.Random(seed), profile.sigma * math.sqrt((end_ms - open_ms) / DAY_MS)


def _intraday_day(spec: PairSpec, interval: str, day: int) -> list[str]:
    """All candle lines of one UTC day for an interval shorter than a day: a Brownian bridge between day anchors.

    Seeded by (symbol, interval, day), so a daily archive and the monthly archive agree line for line.
    """
    profile = _profile(spec)
    bounds, prices, rng, step = _bridge(spec.symbol, profile, interval, day, f"{spec.symbol}|{interval}|{day}")
    return _candle_lines(spec, profile, bounds, prices, rng.random, step)



def _lines_at(times, interval: str, long_line, day_lines) -> list[tuple[int, str]]:
    """(open_time, CSV line) per time: ``long_line(t)`` for 1d and longer candles; intraday ones from
    ``day_lines(day)``, the whole day's lines made once per day."""
    if interval not in DAILY_INTERVALS or interval == "1d":
        return [(t, long_line(t)) for t in times]
    days: dict[int, list[str]] = {}
    dur = INTERVAL_MS[interval]
    out = []
    for t in times:
        day = t // DAY_MS
        if day not in days:
            days[day] = day_lines(day)
        out.append((t, days[day][(t - day * DAY_MS) // dur]))
    return out


def _long_line(spec: PairSpec, interval: str, open_ms: int) -> str:
    """One candle of 1d, 3d, 1w or 1mo: from the day anchors at its open and close."""
    profile = _profile(spec)
    bounds, prices, rng, step = _span(spec.symbol, profile, interval, open_ms, f"{spec.symbol}|{interval}|{open_ms}")
    return _candle_lines(spec, profile, bounds, prices, rng.random, step)[0]


def _contract_day(spec: ContractSpec, interval: str, day: int) -> list[str]:
    """``_intraday_day`` of a contract: its own walk between the day anchors of its base's spot pair."""
    anchor, profile = _contract_profile(spec)
    seed = f"{spec.futures}|{spec.symbol}|{interval}|{day}"
    bounds, prices, rng, step = _bridge(anchor, profile, interval, day, seed)
    return _contract_lines(spec, profile, bounds, prices, rng.random, step)


def _contract_long_line(spec: ContractSpec, interval: str, open_ms: int) -> str:
    anchor, profile = _contract_profile(spec)
    seed = f"{spec.futures}|{spec.symbol}|{interval}|{open_ms}"
    bounds, prices, rng, step = _span(anchor, profile, interval, open_ms, seed)
    return _contract_lines(spec, profile, bounds, prices, rng.random, step)[0]


def _open_times(interval: str, listed_ms: int, end_ms: int | None, gaps: list[tuple[int, int]], start_ms: int,
                stop_ms: int) -> Iterator[int]:  # fmt: skip
    """Open times (ms) in [start_ms, stop_ms) of an instrument trading from ``listed_ms`` until ``end_ms`` (None: still
    trading), gaps left out. A candle exists when it overlaps the life span: a 1w/1mo candle may open before the
    listing day, and the candle in which a contract is delivered (08:00) still opens."""
    end = min(stop_ms, end_ms if end_ms is not None else stop_ms)
    longest = INTERVAL_MS.get(interval, 31 * DAY_MS)  # 1mo: at most 31 days
    t = _align_up(interval, max(start_ms, listed_ms - longest + 1))
    for gap_start, gap_end in sorted(gaps) + [(end, end)]:
        stop = min(gap_start, end)
        if interval in INTERVAL_MS:  # fixed length: whole runs between gaps at once
            if t < stop:
                yield from range(t, stop, INTERVAL_MS[interval])
        else:
            while t < stop:
                if _candle_end(interval, t) > listed_ms:
                    yield t
                t = _candle_end(interval, t)
        t = max(t, _align_up(interval, gap_end))


def _archive_key(symbol: str, interval: str, period: str, futures: str | None) -> tuple:
    """How revisions and faults name an archive: (symbol, interval, period), and the futures market of a contract's."""
    return (symbol, interval, period) if futures is None else (symbol, interval, period, futures)


def _synthetic_bases(rng: random.Random, n: int) -> list[str]:
    """At least ``n`` base assets: the known ones (no stablecoins, no leveraged tokens), then made-up names."""
    bases = [b for b in _BASE_PRICES if b not in _STABLE and not b.endswith(("UP", "DOWN", "BULL", "BEAR"))]
    taken = set(bases)
    while len(bases) < n:
        name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 5)))
        if name not in taken and not name.endswith(("UP", "DOWN", "BULL", "BEAR", "USDT")):
            taken.add(name)
            bases.append(name)
    return bases


def _synthetic_range(first_month: str, last_month: str) -> tuple[int, int]:
    """(first day, the day after the last) of [first_month, last_month], as epoch days."""
    return _month_start_ms(first_month) // DAY_MS, _month_start_ms(_next_month(last_month)) // DAY_MS


def _movers(rng: random.Random, n: int) -> tuple[set[int], set[int]]:
    """(listed inside the range, delisted inside it): 10% each of ``n``, never the first five."""
    movers = list(range(5, n))
    rng.shuffle(movers)
    return set(movers[: n // 10]), set(movers[n // 10 : n // 5])


# --- the market ------------------------------------------------------------------------------------------------------
class Market:
    """The spot pairs and futures contracts, what Binance has published of them, and the ground truth of every archive.

    ``published_monthly_through`` ("YYYY-MM"): monthly archives (klines and funding) exist for months up to it.
    ``today`` ("YYYY-MM-DD"): daily archives exist for days before it, and pairs and contracts delisted (or delivered)
    by then leave exchangeInfo and the ticker. An archive exists only when it holds at least one row.
    ``listing_intervals`` bounds what the bucket listing shows (other intervals are still served on direct GET).
    Archive methods take ``futures="um"`` or ``"cm"`` for a contract's archives (default: spot's).
    """

    def __init__(self, pairs: list[PairSpec], published_monthly_through: str, today: str,
                 listing_intervals: tuple[str, ...] = DEFAULT_LISTING_INTERVALS,
                 contracts: list[ContractSpec] | None = None):  # fmt: skip
        self.pairs = pairs
        self.contracts = contracts if contracts is not None else []
        self.published_monthly_through = published_monthly_through
        self.today = today
        self.listing_intervals = listing_intervals
        self.revisions: dict[tuple, int] = {}  # archive key -> revision, bumped by republish(): new bytes, new CHECKSUM
        self._index: dict[str, PairSpec] = {}
        self._contract_index: dict[tuple[str, str], ContractSpec] = {}
        self._zips: OrderedDict[tuple, bytes] = OrderedDict()  # LRU of zip bodies, at most ZIP_CACHE_BYTES
        self._zip_bytes = 0
        self._digests: dict[tuple, tuple[str, str, int]] = {}  # key -> (sha256, md5, size), kept when evicted
        self._real: dict[str, bytes] = {}
        self._periods: dict[tuple, list[str]] = {}
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # one archive is built at a time (CPU-bound anyway): no duplicate work

    # --- markets -----------------------------------------------------------------------------------------------------
    @classmethod
    def default(cls) -> Market:
        """About 20 pairs for tests over 2024-10 .. 2025-12: majors, a mid-range listing (SYRUPUSDT 2025-05-14) and
        delisting (KMDUSDT 2025-03-10), leveraged tokens delisted in 2022 (listing only), BTCEUR and ETHBTC, a BREAK
        pair (ALPACAUSDT), a pair without spot trading (TUSDUSDT), and a maintenance gap in ETHUSDT on 2025-02-12."""
        gap = (_day_ms("2025-02-12") + 4 * 3_600_000, _day_ms("2025-02-12") + 12 * 3_600_000)
        P = PairSpec
        pairs = [
            P("BTCUSDT", "BTC", listed="2017-08-17", quote_volume=2.5e9),
            P("ETHUSDT", "ETH", listed="2017-08-17", quote_volume=1.2e9, gaps=[gap]),
            P("BNBUSDT", "BNB", listed="2017-11-06", quote_volume=3.0e8),
            P("SOLUSDT", "SOL", listed="2020-08-11", quote_volume=6.0e8),
            P("XRPUSDT", "XRP", listed="2018-05-04", quote_volume=5.0e8),
            P("DOGEUSDT", "DOGE", listed="2019-07-05", quote_volume=4.0e8),
            P("USDCUSDT", "USDC", listed="2018-12-15", quote_volume=9.0e8),
            P("PAXGUSDT", "PAXG", listed="2020-09-04", quote_volume=3.0e7),
            P("FETUSDT", "FET", listed="2019-02-28", quote_volume=5.0e7),
            P("AXSUSDT", "AXS", listed="2020-11-04", quote_volume=1.0e7),
            P("UNIUSDT", "UNI", listed="2020-09-17", quote_volume=4.0e7),
            P("JUPUSDT", "JUP", listed="2024-01-31", quote_volume=2.0e7),
            P("SYRUPUSDT", "SYRUP", listed="2025-05-14", quote_volume=8.0e6),
            P("KMDUSDT", "KMD", listed="2019-06-11", delisted="2025-03-10", quote_volume=1.5e6),
            P("ALPACAUSDT", "ALPACA", listed="2021-08-11", status="BREAK", quote_volume=1.0e6),
            P("TUSDUSDT", "TUSD", listed="2019-03-06", spot_allowed=False, quote_volume=2.0e6),
            P("BTCUPUSDT", "BTCUP", listed="2020-05-14", delisted="2022-03-31", quote_volume=5.0e6),
            P("BTCDOWNUSDT", "BTCDOWN", listed="2020-05-14", delisted="2022-03-31", quote_volume=5.0e6),
            P("ETHBULLUSDT", "ETHBULL", listed="2020-02-07", delisted="2022-01-14", quote_volume=1.0e6),
            P("XRPBEARUSDT", "XRPBEAR", listed="2020-03-06", delisted="2022-01-14", quote_volume=1.0e6),
            P("BTCEUR", "BTC", quote="EUR", listed="2020-01-03", quote_volume=4.0e7),
            P("ETHBTC", "ETH", quote="BTC", listed="2017-07-14", quote_volume=3.0e7),
        ]
        return cls(pairs, published_monthly_through="2025-12", today="2026-01-15",
                   contracts=cls.default_contracts())  # fmt: skip

    @staticmethod
    def default_contracts() -> list[ContractSpec]:
        """The futures of ``default()`` (today 2026-01-15, monthly archives through 2025-12).

        USD-M perpetuals: BTCUSDT, ETHUSDT, SOLUSDT (8 h funding), 1000PEPEUSDT (8 h, 4 h from 2025-03-14 16:00),
        SYRUPUSDT (onboard 2025-05-14, 1 h funding, 4 h from 2025-05-21), BTCUSDC (USDC-margined), ALPACAUSDT
        (delisted 2025-05-02) and FTTUSDT (delisted 2022-11-15); quarterlies BTCUSDT_250328 (delivered),
        BTCUSDT_260327 (current quarter), BTCUSDT_260626 (next quarter); ZAMAUSDT onboards after today (exchangeInfo
        only, PENDING_TRADING). COIN-M perpetuals: BTCUSD_PERP (100 USD contracts), ETHUSD_PERP, SOLUSD_PERP (8 h,
        4 h from 2025-11-03), LUNAUSD_PERP (delisted 2022-05-13); quarterlies BTCUSD_250328 (delivered),
        BTCUSD_260327 and ETHUSD_260327 (current quarters). Delisted and delivered contracts are in the bucket only.
        """
        C = ContractSpec
        return [
            C("BTCUSDT", "um", "BTC", listed="2019-09-08", quote_volume=1.5e10),
            C("ETHUSDT", "um", "ETH", listed="2019-11-27", quote_volume=8.0e9),
            C("SOLUSDT", "um", "SOL", listed="2020-09-14", quote_volume=2.0e9),
            C("1000PEPEUSDT", "um", "1000PEPE", listed="2023-05-05", quote_volume=5.0e8,
              funding=[("2025-03-14 16:00", 4)]),
            C("SYRUPUSDT", "um", "SYRUP", listed="2025-05-14", quote_volume=5.0e7, funding_interval_hours=1,
              funding=[("2025-05-21 00:00", 4)]),
            C("BTCUSDC", "um", "BTC", quote="USDC", listed="2024-01-09", quote_volume=1.0e9),
            C("ALPACAUSDT", "um", "ALPACA", listed="2021-08-11", delisted="2025-05-02", quote_volume=2.0e7),
            C("FTTUSDT", "um", "FTT", listed="2019-12-25", delisted="2022-11-15", quote_volume=1.0e8),
            C("BTCUSDT_250328", "um", "BTC", listed="2024-09-27", quote_volume=3.0e8),
            C("BTCUSDT_260327", "um", "BTC", listed="2025-09-26", quote_volume=3.0e8),
            C("BTCUSDT_260626", "um", "BTC", listed="2025-12-26", quote_volume=1.0e8),
            C("ZAMAUSDT", "um", "ZAMA", listed="2026-01-20", status="PENDING_TRADING", quote_volume=1.0e7),
            C("BTCUSD_PERP", "cm", "BTC", quote="USD", listed="2020-08-10", quote_volume=1.0e9),
            C("ETHUSD_PERP", "cm", "ETH", quote="USD", listed="2020-08-14", quote_volume=5.0e8),
            C("SOLUSD_PERP", "cm", "SOL", quote="USD", listed="2021-09-06", quote_volume=5.0e7,
              funding=[("2025-11-03 00:00", 4)]),
            C("LUNAUSD_PERP", "cm", "LUNA", quote="USD", listed="2021-06-07", delisted="2022-05-13", quote_volume=1e8),
            C("BTCUSD_250328", "cm", "BTC", quote="USD", listed="2024-09-27", quote_volume=1.0e8),
            C("BTCUSD_260327", "cm", "BTC", quote="USD", listed="2025-09-26", quote_volume=1.0e8),
            C("ETHUSD_260327", "cm", "ETH", quote="USD", listed="2025-09-26", quote_volume=3.0e7),
        ]  # fmt: skip

    @classmethod
    def synthetic(cls, n_pairs: int, first_month: str = "2024-10", last_month: str = "2025-12",
                  seed: int = 7, contracts: int = 0) -> Market:  # fmt: skip
        """``n_pairs`` USDT pairs for benchmarks: about 10% listed inside [first_month, last_month], 10% delisted
        inside it, the rest trading throughout. Monthly archives are published through ``last_month``; today is
        the 1st of the second month after it (so the month after ``last_month`` exists as daily archives).

        ``contracts``: that many USD-M perpetuals too (``synthetic_contracts``); none by default. They come from a
        random stream of their own: the pairs are the same with or without them."""
        rng = random.Random(seed)
        bases = _synthetic_bases(rng, n_pairs)
        range_start, range_end = _synthetic_range(first_month, last_month)
        listed_inside, delisted_inside = _movers(rng, n_pairs)
        pairs = []
        for i, base in enumerate(bases[:n_pairs]):
            listed = _day_str(rng.randint(_day_ms("2017-08-17") // DAY_MS, range_start - 30) * DAY_MS)
            delisted = None
            if i in listed_inside:
                listed = _day_str(rng.randint(range_start + 1, range_end - 20) * DAY_MS)
            elif i in delisted_inside:
                delisted = _day_str(rng.randint(range_start + 10, range_end - 1) * DAY_MS)
            volume = 10 ** (9.5 - i / 20) if i < 20 else 10 ** rng.uniform(5.0, 8.5)
            pairs.append(PairSpec(f"{base}USDT", base, listed=listed, delisted=delisted, quote_volume=round(volume, 2)))
        today = _next_month(_next_month(last_month)) + "-01"
        futures = cls.synthetic_contracts(contracts, first_month, last_month, seed) if contracts else []
        return cls(pairs, published_monthly_through=last_month, today=today, contracts=futures)

    @staticmethod
    def synthetic_contracts(n: int, first_month: str = "2024-10", last_month: str = "2025-12",
                            seed: int = 7) -> list[ContractSpec]:  # fmt: skip
        """``n`` USD-M perpetuals (``{BASE}USDT``, futures "um") for benchmarks, named like ``synthetic``'s pairs:
        about 10% onboard inside [first_month, last_month] and 10% delisted inside it (the first five always cover
        it); funding every 8 h for most, every 4 h throughout for about 15%, and 8 h switching to 4 h at a
        settlement inside the range for about 15%."""
        rng = random.Random(f"um-contracts-{seed}")
        bases = _synthetic_bases(rng, n)
        range_start, range_end = _synthetic_range(first_month, last_month)
        listed_inside, delisted_inside = _movers(rng, n)
        out = []
        for i, base in enumerate(bases[:n]):
            listed = _day_str(rng.randint(_day_ms("2019-09-08") // DAY_MS, range_start - 30) * DAY_MS)
            delisted = None
            if i in listed_inside:
                listed = _day_str(rng.randint(range_start + 1, range_end - 20) * DAY_MS)
            elif i in delisted_inside:
                delisted = _day_str(rng.randint(range_start + 10, range_end - 1) * DAY_MS)
            hours, changes, draw = 8, [], rng.random()
            if draw < 0.15:
                hours = 4
            elif draw < 0.30:
                day = rng.randint(max(range_start, _day_ms(listed) // DAY_MS + 1), range_end - 2)
                changes = [(f"{_day_str(day * DAY_MS)} {rng.choice((0, 8, 16)):02d}:00", 4)]
            volume = 10 ** (10.2 - i / 20) if i < 20 else 10 ** rng.uniform(6.0, 9.0)
            out.append(ContractSpec(f"{base}USDT", "um", base, listed=listed, delisted=delisted,
                                    quote_volume=round(volume, 2), funding_interval_hours=hours,
                                    funding=changes))  # fmt: skip
        return out

    # --- pairs and candles -------------------------------------------------------------------------------------------
    def pair(self, symbol: str) -> PairSpec:
        """The spec of ``symbol``; KeyError when the market has no such pair."""
        spec = self._index.get(symbol)
        if spec is None or spec.symbol != symbol:
            self._index = {p.symbol: p for p in self.pairs}
            spec = self._index[symbol]
        return spec

    def find_pair(self, symbol: str) -> PairSpec | None:
        """The spec of ``symbol``, None when the market has no such pair."""
        try:
            return self.pair(symbol)
        except KeyError:
            return None

    def contract(self, symbol: str, futures: str) -> ContractSpec:
        """The spec of ``symbol`` in ``futures`` ("um" or "cm"); KeyError when that market has no such contract."""
        spec = self._contract_index.get((futures, symbol))
        if spec is None or (spec.futures, spec.symbol) != (futures, symbol):
            self._contract_index = {(c.futures, c.symbol): c for c in self.contracts}
            spec = self._contract_index[(futures, symbol)]
        return spec

    def _spec(self, symbol: str, futures: str | None) -> PairSpec | ContractSpec:
        return self.pair(symbol) if futures is None else self.contract(symbol, futures)

    def invalidate(self) -> None:
        """Forget every cached archive (cache keys already follow PairSpec edits; this also frees the memory)."""
        with self._lock:
            self._zips.clear()
            self._digests.clear()
            self._zip_bytes = 0
            self._index = {}
            self._contract_index = {}
            self._periods.clear()

    def republish(self, symbol: str, interval: str, period: str, futures: str | None = None) -> None:
        """Binance re-publishes an archive: one row's volume (futures: trade count; funding: rate) changes, so its
        bytes and CHECKSUM change."""
        key = _archive_key(symbol, interval, period, futures)
        self.revisions[key] = self.revisions.get(key, 0) + 1

    def open_times(self, symbol: str, interval: str, start_ms: int, end_ms: int,
                   futures: str | None = None) -> Iterator[int]:  # fmt: skip
        """Open times (ms) of the pair's (or contract's) candles in [start_ms, end_ms), gaps left out.

        A candle exists when it overlaps the listed life span: for 1d and shorter that is exactly listed 00:00 ..
        delisted 00:00 (a quarterly contract: .. its delivery); a 1w/1mo candle may open before the listing day.
        """
        spec = self._spec(symbol, futures)
        return _open_times(interval, _day_ms(spec.listed), spec.end_ms, spec.gaps, start_ms, end_ms)

    def _has_candles(self, symbol: str, interval: str, period: str, futures: str | None = None) -> bool:
        return next(self.open_times(symbol, interval, *_period_range(period), futures), None) is not None

    def is_published(self, symbol: str, interval: str, period: str, futures: str | None = None) -> bool:
        """Whether Binance serves this archive: period published (see class doc) and at least one row in it.
        Funding (interval ``FUNDING``) is published monthly only, for perpetuals."""
        if interval not in INTERVAL_MS and interval != "1mo" and (interval != FUNDING or futures is None):
            return False
        try:
            spec = self._spec(symbol, futures)
        except KeyError:
            return False
        if interval == FUNDING:
            return (len(period) == 7 and period <= self.published_monthly_through and spec.perpetual
                    and bool(self.funding_rows(symbol, period, futures)))  # fmt: skip
        if len(period) == 7:
            published = period <= self.published_monthly_through
        else:
            published = interval in DAILY_INTERVALS and period < self.today
        return published and self._has_candles(symbol, interval, period, futures)

    def periods(self, symbol: str, interval: str, frequency: str, futures: str | None = None) -> list[str]:
        """The published archive periods of a pair or contract, ``frequency`` "monthly" (YYYY-MM) or "daily"
        (YYYY-MM-DD).

        Cached on everything the answer depends on (a listing asks for them on every page; building a daily list
        costs a candle scan per day, which made the stand-in, not the client, the cost of a warm benchmark run)."""
        spec = self._spec(symbol, futures)
        state = (spec.listed, spec.delisted, tuple(spec.gaps)) if futures is None else (futures, repr(spec))
        key = (symbol, interval, frequency, *state, self.published_monthly_through, self.today)
        cached = self._periods.get(key)
        if cached is None:
            cached = self._periods[key] = self._compute_periods(spec, symbol, interval, frequency, futures)
        return list(cached)

    def _compute_periods(self, spec: PairSpec | ContractSpec, symbol: str, interval: str, frequency: str,
                         futures: str | None) -> list[str]:  # fmt: skip
        if interval == FUNDING:
            if frequency != "monthly" or not spec.perpetual:
                return []
            end = min(_month_of_ms(spec.end_ms - 1), self.published_monthly_through) if spec.end_ms else (
                self.published_monthly_through)  # fmt: skip
            months, month = [], spec.listed[:7]
            while month <= end:
                months.append(month)
                month = _next_month(month)
            return [m for m in months if self.funding_rows(symbol, m, futures)]
        first = next(self.open_times(symbol, interval, 0, 2**62, futures), None)
        if first is None or (frequency == "daily" and interval not in DAILY_INTERVALS):
            return []
        last = spec.end_ms - 1 if spec.end_ms else None  # the last instant with candles
        if frequency == "monthly":
            out, month = [], _month_of_ms(first)
            stop = min(_month_of_ms(last), self.published_monthly_through) if last else self.published_monthly_through
            while month <= stop:
                out.append(month)
                month = _next_month(month)
        else:
            stop = _day_ms(self.today) // DAY_MS - 1
            stop = min(stop, last // DAY_MS) if last else stop
            out = [_day_str(d * DAY_MS) for d in range(first // DAY_MS, stop + 1)]
        return [p for p in out if self._has_candles(symbol, interval, p, futures)]

    def has_folder(self, symbol: str, frequency: str, interval: str | None = None, futures: str | None = None) -> bool:
        """Cheap existence test of a listing folder (the pair's first archive is published); ``interval`` FUNDING
        asks for a contract's ``fundingRate/`` folder."""
        spec = self._spec(symbol, futures)
        if interval == FUNDING:
            return frequency == "monthly" and spec.perpetual and spec.listed[:7] <= self.published_monthly_through
        if frequency == "monthly":
            return spec.listed[:7] <= self.published_monthly_through
        return spec.listed < self.today and (interval is None or interval in DAILY_INTERVALS)

    # --- archive contents --------------------------------------------------------------------------------------------
    def _clean_lines(self, symbol: str, interval: str, period: str,
                     futures: str | None = None) -> list[tuple[int, str]]:  # fmt: skip
        """(open_time ms, CSV line) of every candle in the period, without anomalies."""
        if futures is not None:
            return self._contract_candles(self.contract(symbol, futures), interval, period)
        month = period[:7]
        if (symbol, interval, month) in REAL_ARCHIVES:
            start, end = _period_range(period)
            return [(t, line) for t, line in self._real_lines(symbol, interval, month) if start <= t < end]
        spec = self.pair(symbol)
        times = self.open_times(symbol, interval, *_period_range(period))
        return _lines_at(times, interval, lambda t: _long_line(spec, interval, t),
                         lambda day: _intraday_day(spec, interval, day))  # fmt: skip

    def _contract_candles(self, spec: ContractSpec, interval: str, period: str) -> list[tuple[int, str]]:
        """``_clean_lines`` of a futures contract."""
        times = self.open_times(spec.symbol, interval, *_period_range(period), spec.futures)
        return _lines_at(times, interval, lambda t: _contract_long_line(spec, interval, t),
                         lambda day: _contract_day(spec, interval, day))  # fmt: skip

    def funding_rows(self, symbol: str, month: str, futures: str) -> list[tuple[int, int, int, str]]:
        """(settlement instant ms, calc_time ms, interval hours, rate text) of a perpetual's settlements in ``month``,
        as its funding archive lists them (whether or not the month is published yet); [] for a quarterly contract.

        calc_time is the settlement instant or a few ms after it; rates are 0.01% per 8 h (pro rata) about half the
        time, else anything from -0.02% to +0.06%."""
        spec = self.contract(symbol, futures)
        if not spec.perpetual:
            return []
        start, stop = _period_range(month)
        stop = min(stop, spec.end_ms or stop)
        t = max(start, _day_ms(spec.listed) + HOUR_MS)  # the first settlement is after the onboard instant
        revision = self.revisions.get(_archive_key(symbol, FUNDING, month, futures), 0)
        rows = []
        while t < stop:
            hours = spec.funding_hours_at(t)
            if t % (hours * HOUR_MS) == 0:
                late = _hash_unit("calc", futures, symbol, t)
                draw = _hash_unit("rate", futures, symbol, t)
                rate = 0.0001 * hours / 8 if draw < 0.5 else (draw - 0.5) * 0.0016 - 0.0002
                rate += 1e-8 * revision * (not rows)  # a re-publication changes the month's first rate
                text = f"{rate:.8f}"
                rows.append((t, t + (int(late * 40) % 10 if late < 0.7 else 0), hours,
                             "0.00000000" if float(text) == 0 else text))  # fmt: skip
            t += HOUR_MS
        return rows

    def _real_lines(self, symbol: str, interval: str, month: str) -> list[tuple[int, str]]:
        text = self._real_zip(symbol, interval, month)[1].decode()
        out = []
        for line in text.splitlines():
            ts = int(line.split(",", 1)[0])
            out.append((ts // 1000 if ts >= 10**15 else ts, line))
        return out

    def _real_zip(self, symbol: str, interval: str, month: str) -> tuple[bytes, bytes]:
        """(zip bytes, CSV member bytes) of a real Binance archive from ``fixtures/real``."""
        name = f"{symbol}-{interval}-{month}"
        if name not in self._real:
            self._real[name] = (FIXTURES / f"{name}.zip").read_bytes()
        body = self._real[name]
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return body, archive.read(f"{name}.csv")

    def archive_csv(self, symbol: str, interval: str, period: str, futures: str | None = None) -> bytes:
        """The CSV member of an archive exactly as served, anomalies and re-publications included (b"" if empty).

        ``period`` is "YYYY-MM" (monthly) or "YYYY-MM-DD" (daily). Real fixture months are served unaltered, except
        for re-publications. ``futures``: a contract's kline archive, or with ``interval`` FUNDING its funding archive.
        """
        if futures is not None:
            return self._contract_csv(symbol, interval, period, futures)
        revision = self.revisions.get((symbol, interval, period), 0)
        if (symbol, interval, period) in REAL_ARCHIVES and not revision:
            return self._real_zip(symbol, interval, period)[1]
        spec = self.pair(symbol)
        real = (symbol, interval, period[:7]) in REAL_ARCHIVES
        lines = []
        for t, line in self._clean_lines(symbol, interval, period):
            if not real and t in spec.malformed:
                line = spec.malformed[t]
            elif not real and t in spec.ohlc_violation:
                fields = line.split(",")
                fields[2] = f"{min(float(fields[1]), float(fields[4])) * 0.99:.8f}"
                line = ",".join(fields)
            lines.append(line)
            if not real and t in spec.duplicates:
                lines.append(line)
        if not lines:
            return b""
        if revision:
            fields = lines[0].split(",")
            fields[5] = f"{float(fields[5]) * (1 + 0.001 * revision):.8f}"
            lines[0] = ",".join(fields)
        if not real:
            if spec.header_row:
                lines.insert(0, FUTURES_HEADER)
            if spec.blank_lines:
                lines[len(lines) // 2 : len(lines) // 2] = ["", ""]
                lines.append("")
        newline = "\r\n" if spec.crlf and not real else "\n"
        return (newline.join(lines) + newline).encode()

    def _contract_csv(self, symbol: str, interval: str, period: str, futures: str) -> bytes:
        """A futures archive's CSV: funding rows behind their header, or klines (behind FUTURES_HEADER from 2022 on)."""
        if interval == FUNDING:
            rows = self.funding_rows(symbol, period, futures) if len(period) == 7 else []
            lines = [f"{calc},{hours},{rate}" for _, calc, hours, rate in rows]
            return "\n".join([FUNDING_HEADER, *lines, ""]).encode() if lines else b""
        lines = [line for _, line in self._clean_lines(symbol, interval, period, futures)]
        if not lines:
            return b""
        if revision := self.revisions.get(_archive_key(symbol, interval, period, futures), 0):
            fields = lines[0].split(",")
            fields[8] = str(int(fields[8]) + revision)
            lines[0] = ",".join(fields)
        if has_futures_header(period):
            lines.insert(0, FUTURES_HEADER)
        return "\n".join([*lines, ""]).encode()

    def archive_zip(self, symbol: str, interval: str, period: str, futures: str | None = None) -> bytes | None:
        """The zip as Binance serves it (one deflated member ``{name}.csv``), or None when it is not published."""
        if not self.is_published(symbol, interval, period, futures):
            return None
        key = self._cache_key(symbol, interval, period, futures)
        with self._lock:
            body = self._zips.get(key)
            if body is not None:
                self._zips.move_to_end(key)
                return body
        with self._build_lock:
            with self._lock:
                body = self._zips.get(key)
            if body is None:
                body = self._build_zip(symbol, interval, period, futures)
                self._remember(key, body)
        return body

    def archive_digest(self, symbol: str, interval: str, period: str,
                       futures: str | None = None) -> tuple[str, str, int] | None:  # fmt: skip
        """(sha256 hex, md5 hex, size) of the served zip; cached apart from the zip bodies (cheap re-checks)."""
        if not self.is_published(symbol, interval, period, futures):
            return None
        key = self._cache_key(symbol, interval, period, futures)
        with self._lock:
            digest = self._digests.get(key)
        if digest is None:
            body = self.archive_zip(symbol, interval, period, futures)
            if body is None:
                return None
            digest = (hashlib.sha256(body).hexdigest(), hashlib.md5(body).hexdigest(), len(body))
            with self._lock:
                self._digests[key] = digest
        return digest

    def warm(self, interval: str, months: list[str], symbols: list[str] | None = None,
             futures: str | None = None) -> int:  # fmt: skip
        """Build the monthly archives of ``months`` ahead of time (a benchmark then times the pipeline, not the
        stand-in; a 1m month of one pair takes about 0.3 s to build). Returns the number of archives built."""
        built = 0
        for symbol in symbols if symbols is not None else self._symbols(futures):
            for month in months:
                built += self.archive_digest(symbol, interval, month, futures) is not None
        return built

    def _symbols(self, futures: str | None) -> list[str]:
        """Every pair's symbol, or every contract's of ``futures``."""
        if futures is None:
            return [p.symbol for p in self.pairs]
        return [c.symbol for c in self.contracts if c.futures == futures]

    def _cache_key(self, symbol: str, interval: str, period: str, futures: str | None = None) -> tuple:
        # editing a spec changes the key, so stale archives are never served
        key = _archive_key(symbol, interval, period, futures)
        return *key, self.revisions.get(key, 0), repr(self._spec(symbol, futures))

    def _build_zip(self, symbol: str, interval: str, period: str, futures: str | None = None) -> bytes:
        real = futures is None and (symbol, interval, period) in REAL_ARCHIVES
        if real and not self.revisions.get((symbol, interval, period)):
            return self._real_zip(symbol, interval, period)[0]
        name = f"{symbol}-{interval}-{period}"
        start, _ = _period_range(period)
        stamp = datetime.fromtimestamp(start / 1000, UTC)
        info = zipfile.ZipInfo(f"{name}.csv", date_time=(stamp.year, stamp.month, stamp.day, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(info, self.archive_csv(symbol, interval, period, futures), compresslevel=1)  # 4x faster
        return buffer.getvalue()

    def _remember(self, key: tuple, body: bytes) -> None:
        with self._lock:
            self._zips[key] = body
            self._zip_bytes += len(body)
            while self._zip_bytes > ZIP_CACHE_BYTES and len(self._zips) > 1:
                _, old = self._zips.popitem(last=False)
                self._zip_bytes -= len(old)

    # --- ground truth ------------------------------------------------------------------------------------------------
    def served_periods(self, symbol: str, interval: str, month: str, futures: str | None = None) -> list[str]:
        """The archives a complete download of ``month`` uses: the monthly one when published, else the month's
        published daily archives (days before ``today``; never for funding, which is monthly only)."""
        if self.is_published(symbol, interval, month, futures):
            return [month]
        if month <= self.published_monthly_through or interval not in DAILY_INTERVALS:
            return []
        start, end = _period_range(month)
        days = (_day_str(ms) for ms in range(start, end, DAY_MS))
        return [d for d in days if self.is_published(symbol, interval, d, futures)]

    def expected(self, symbol: str, interval: str, month: str, futures: str | None = None) -> dict:
        """Ground truth of the CLEAN data a correct download of ``month`` holds (what Binance serves for it).

        ``{"rows", "first_open_time", "last_open_time", "open_times", "duplicates", "malformed", "ohlc_violations"}``:
        rows are the unique, well-formed open times (ms, also for µs archives); duplicated lines, malformed lines and
        rows with high < max(open, close) that the served files contain are counted apart. rows == 0 (and the
        times None) when the pair has no candle in the month or nothing of it is published. ``futures``: of a
        contract's klines (which carry no anomalies); its funding is ``funding_expected``.
        """
        times: list[int] = []
        for period in self.served_periods(symbol, interval, month, futures):
            times.extend(t for t, _ in self._clean_lines(symbol, interval, period, futures))
        if futures is not None:
            return {"rows": len(times), "first_open_time": times[0] if times else None,
                    "last_open_time": times[-1] if times else None, "open_times": times, "duplicates": 0,
                    "malformed": 0, "ohlc_violations": 0}  # fmt: skip
        spec = self.pair(symbol)
        real = (symbol, interval, month) in REAL_ARCHIVES
        present = set(times)
        malformed = 0 if real else len(present & set(spec.malformed))
        clean = times if real else [t for t in times if t not in spec.malformed]
        return {
            "rows": len(clean),
            "first_open_time": clean[0] if clean else None,
            "last_open_time": clean[-1] if clean else None,
            "open_times": clean,
            "duplicates": 0 if real else len(present & set(spec.duplicates)),
            "malformed": malformed,
            "ohlc_violations": 0 if real else len(present & set(spec.ohlc_violation) - set(spec.malformed)),
        }

    def ground_truth(self, interval: str, months: list[str], symbols: list[str] | None = None,
                     futures: str | None = None) -> dict:  # fmt: skip
        """Totals over ``months`` for ``symbols`` (default: every pair, or every contract of ``futures``): ``{"rows",
        "symbols", "per_symbol": {sym: {"rows", "first_open_time", "last_open_time", "months": [months with
        rows]}}}``; pairs without rows are left out of per_symbol."""
        per_symbol = {}
        for symbol in symbols if symbols is not None else self._symbols(futures):
            found = [(m, self.expected(symbol, interval, m, futures)) for m in sorted(months)]
            found = [(m, e) for m, e in found if e["rows"]]
            if found:
                per_symbol[symbol] = {
                    "rows": sum(e["rows"] for _, e in found),
                    "first_open_time": found[0][1]["first_open_time"],
                    "last_open_time": found[-1][1]["last_open_time"],
                    "months": [m for m, _ in found],
                }
        total = sum(s["rows"] for s in per_symbol.values())
        return {"rows": total, "symbols": len(per_symbol), "per_symbol": per_symbol}

    def funding_expected(self, symbol: str, month: str, futures: str) -> dict:
        """Ground truth of a month's funding archive, what a correct download holds: ``{"rows", "funding_times"
        (settlement instants, ms), "calc_times" (as published, ms), "interval_hours", "rates" (floats)}``, the lists
        in file order. rows == 0 when the archive is not published: the current month, a quarterly contract, a month
        outside the contract's life."""
        published = self.is_published(symbol, FUNDING, month, futures)
        rows = self.funding_rows(symbol, month, futures) if published else []
        return {"rows": len(rows), "funding_times": [r[0] for r in rows], "calc_times": [r[1] for r in rows],
                "interval_hours": [r[2] for r in rows], "rates": [float(r[3]) for r in rows]}  # fmt: skip

    def funding_ground_truth(self, months: list[str], futures: str, symbols: list[str] | None = None) -> dict:
        """Funding totals over ``months`` for ``symbols`` (default: every contract of ``futures``): ``{"rows",
        "symbols", "per_symbol": {sym: {"rows", "first_funding_time", "last_funding_time", "months"}}}``; contracts
        without funding rows (quarterlies, months not published) are left out of per_symbol."""
        per_symbol = {}
        for symbol in symbols if symbols is not None else self._symbols(futures):
            found = [(m, self.funding_expected(symbol, m, futures)) for m in sorted(months)]
            found = [(m, e) for m, e in found if e["rows"]]
            if found:
                per_symbol[symbol] = {
                    "rows": sum(e["rows"] for _, e in found),
                    "first_funding_time": found[0][1]["funding_times"][0],
                    "last_funding_time": found[-1][1]["funding_times"][-1],
                    "months": [m for m, _ in found],
                }
        return {"rows": sum(s["rows"] for s in per_symbol.values()), "symbols": len(per_symbol),
                "per_symbol": per_symbol}  # fmt: skip

    def contract_sets(self, futures: str) -> dict[str, set[str]]:
        """Which contracts of ``futures`` are which: ``perpetual`` and ``delivery`` (quarterly) by kind; ``listed``:
        with a monthly klines folder in the bucket listing; ``delisted``: delisted or delivered by ``today`` (in the
        listing, absent from exchangeInfo); ``pending``: onboard after ``today`` (in exchangeInfo only)."""
        contracts = [c for c in self.contracts if c.futures == futures]
        today = _day_ms(self.today)
        return {
            "perpetual": {c.symbol for c in contracts if c.perpetual},
            "delivery": {c.symbol for c in contracts if not c.perpetual},
            "listed": {c.symbol for c in contracts if self.has_folder(c.symbol, "monthly", futures=futures)},
            "delisted": {c.symbol for c in contracts if c.end_ms is not None and c.end_ms <= today},
            "pending": {c.symbol for c in contracts if c.listed > self.today},
        }

    # --- REST API payloads -------------------------------------------------------------------------------------------
    def listed_pairs(self) -> list[PairSpec]:
        """Pairs exchangeInfo and the ticker show: listed on or before ``today`` and not delisted by then."""
        return [p for p in self.pairs if p.listed <= self.today and (p.delisted is None or p.delisted > self.today)]

    def server_time(self) -> int:
        return _day_ms(self.today) + 3_600_000

    def exchange_info(self) -> dict:
        symbols = []
        for spec in self.listed_pairs():
            tick = f"{10 ** -_profile(spec).decimals:.8f}"
            symbols.append({
                "symbol": spec.symbol, "status": spec.status, "baseAsset": spec.base, "baseAssetPrecision": 8,
                "quoteAsset": spec.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": spec.spot_allowed,
                "isMarginTradingAllowed": False,
                "filters": [{"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000",
                             "tickSize": tick}],
                "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })  # fmt: skip
        return {
            "timezone": "UTC",
            "serverTime": self.server_time(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def tickers_24h(self) -> list[dict]:
        now = self.server_time()
        day = now // DAY_MS
        out = []
        for i, spec in enumerate(self.listed_pairs()):
            profile = _profile(spec)
            last, first = math.exp(_anchor(spec.symbol, profile, day)), math.exp(_anchor(spec.symbol, profile, day - 1))
            d = profile.decimals
            out.append({
                "symbol": spec.symbol, "priceChange": _fmt_price(last - first, d),
                "priceChangePercent": f"{(last - first) / first * 100:.3f}",
                "weightedAvgPrice": _fmt_price((last + first) / 2, d), "prevClosePrice": _fmt_price(first, d),
                "lastPrice": _fmt_price(last, d), "lastQty": "1.00000000",
                "bidPrice": _fmt_price(last, d), "bidQty": "10.00000000",
                "askPrice": _fmt_price(last, d), "askQty": "10.00000000",
                "openPrice": _fmt_price(first, d), "highPrice": _fmt_price(max(first, last) * 1.01, d),
                "lowPrice": _fmt_price(min(first, last) * 0.99, d),
                "volume": f"{spec.quote_volume * 2 / (first + last):.8f}", "quoteVolume": f"{spec.quote_volume:.8f}",
                "openTime": now - DAY_MS, "closeTime": now - 1,
                "firstId": i * 10**8, "lastId": i * 10**8 + int(spec.quote_volume / 1000),
                "count": int(spec.quote_volume / 1000) + 1,
            })  # fmt: skip
        return out

    def futures_exchange_info(self, futures: str) -> dict:
        """``/fapi/v1/exchangeInfo`` (um) or ``/dapi/v1/exchangeInfo`` (cm): the contracts neither delisted nor
        delivered by ``today``, PENDING_TRADING before their onboard day; contractType PERPETUAL, or CURRENT_QUARTER /
        NEXT_QUARTER by delivery within a pair. COIN-M names the status ``contractStatus`` and adds ``contractSize``,
        as Binance does."""
        today = _day_ms(self.today)
        live = [c for c in self.contracts if c.futures == futures and (c.end_ms is None or c.end_ms > today)]
        quarters: dict[str, list[str]] = {}
        for c in sorted((c for c in live if not c.perpetual), key=lambda c: c.delivery_ms):
            quarters.setdefault(c.pair, []).append(c.symbol)
        symbols = []
        for c in live:
            decimals = _contract_profile(c)[1].decimals
            tick = f"{10**-decimals:.{decimals}f}"
            kind = "PERPETUAL" if c.perpetual else ("CURRENT_QUARTER", "NEXT_QUARTER")[
                min(quarters[c.pair].index(c.symbol), 1)]  # fmt: skip
            entry = {
                "symbol": c.symbol, "pair": c.pair, "contractType": kind,
                "deliveryDate": c.delivery_ms or PERPETUAL_DELIVERY_MS, "onboardDate": _day_ms(c.listed),
                "status" if futures == "um" else "contractStatus":
                    "PENDING_TRADING" if c.listed > self.today else c.status,
                "baseAsset": c.base, "quoteAsset": c.quote, "marginAsset": c.quote if futures == "um" else c.base,
                "pricePrecision": decimals, "quantityPrecision": 3 if futures == "um" else 0,
                "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
                "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
                "filters": [{"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4529764", "tickSize": tick}],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                               "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }  # fmt: skip
            if futures == "cm":
                entry["contractSize"] = c.contract_size
            symbols.append(entry)
        payload = {
            "timezone": "UTC",
            "serverTime": self.server_time(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }
        if futures == "um":
            payload["assets"] = [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"}
                                 for a in ("USDT", "USDC", "BTC")]  # fmt: skip
        return payload


# --- faults ----------------------------------------------------------------------------------------------------------
def _selected(seed: str, path: str, fraction: float) -> bool:
    """Deterministic pick of ``fraction`` of all paths (same paths on every run)."""
    return fraction >= 1.0 or _hash_unit(seed, path) < fraction


@dataclass
class _OnceRule:
    action: str  # "fail", "rate_limit" or "reset"
    fraction: float
    kinds: tuple[str, ...]
    status: int = 503
    retry_after: int = 1
    fired: set[str] = field(default_factory=set)

    def applies(self, seed: str, kind: str, path: str) -> bool:
        return kind in self.kinds and path not in self.fired and _selected(seed, path, self.fraction)


class Faults:
    """Failures to inject, deterministic (paths picked by a hash of path and rule) and thread-safe.

    Transient ones fire once per distinct request path (path with query string); persistent ones until
    ``clear()``. Kinds are "zip", "checksum", "listing" and "api" (spot's API and the futures' fapi/dapi). The path
    rules apply to futures archives as to spot's; the per-archive ones name a contract's with ``futures="um"``/"cm".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._once: list[_OnceRule] = []
            self._always: list[tuple[str, int, int | None, tuple[str, ...] | None]] = []
            # archives by _archive_key
            self.checksum_mismatches: set[tuple] = set()
            self.corrupt_zips: set[tuple] = set()
            self.evil_names: list[str] = []
            self.geo_blocked = False
            self.hostile_zips: dict[tuple, str] = {}
            self.hostile_checksums: dict[tuple, str] = {}
            self._stalls: list[tuple[str, float, tuple[str, ...] | None]] = []

    def geo_block(self) -> None:
        """Every REST API request (api, fapi and dapi) answers HTTP 451 with Binance's geo-block body; archives and
        listing still work."""
        with self._lock:
            self.geo_blocked = True

    def hostile_zip(self, symbol: str, interval: str, period: str, kind: str, futures: str | None = None) -> None:
        """That archive is served as ``kind`` (one of HOSTILE_ZIPS), with a CHECKSUM (and listing size) that
        match the hostile bytes, so only the pipeline's own guards can refuse it."""
        if kind not in HOSTILE_ZIPS:
            raise ValueError(f"hostile zip {kind!r} is unknown; expected one of {HOSTILE_ZIPS}")
        with self._lock:
            self.hostile_zips[_archive_key(symbol, interval, period, futures)] = kind

    def hostile_checksum(self, symbol: str, interval: str, period: str, kind: str,
                         futures: str | None = None) -> None:  # fmt: skip
        """That archive's CHECKSUM is ``malformed`` (not ``<64 hex>  <name>``) or names ``other_name``."""
        if kind not in HOSTILE_CHECKSUMS:
            raise ValueError(f"hostile checksum {kind!r} is unknown; expected one of {HOSTILE_CHECKSUMS}")
        with self._lock:
            self.hostile_checksums[_archive_key(symbol, interval, period, futures)] = kind

    def stall(self, path_substring: str, seconds: float, kinds: tuple[str, ...] | None = None) -> None:
        """Every request (of ``kinds``, default all) whose path contains ``path_substring`` waits ``seconds`` before
        any byte is answered."""
        with self._lock:
            self._stalls.append((path_substring, seconds, None if kinds is None else tuple(kinds)))

    def stall_for(self, kind: str, path: str) -> float:
        with self._lock:
            return max((sec for sub, sec, kinds in self._stalls if sub in path and (kinds is None or kind in kinds)),
                       default=0.0)  # fmt: skip

    def fail_once(self, fraction: float, status: int = 503, kinds: tuple[str, ...] = ("zip", "checksum")) -> None:
        """That fraction of distinct paths answers ``status`` the first time, then normally."""
        with self._lock:
            self._once.append(_OnceRule("fail", fraction, tuple(kinds), status=status))

    def rate_limit_once(self, fraction: float, retry_after: int = 1,
                        kinds: tuple[str, ...] = ("zip", "checksum")) -> None:  # fmt: skip
        """That fraction of distinct paths answers 429 with ``Retry-After: <retry_after>`` once."""
        with self._lock:
            self._once.append(_OnceRule("rate_limit", fraction, tuple(kinds), status=429, retry_after=retry_after))

    def reset_once(self, fraction: float, kinds: tuple[str, ...] = ("zip",)) -> None:
        """Once per selected path: full headers (Content-Length of the whole body), half the body, connection cut."""
        with self._lock:
            self._once.append(_OnceRule("reset", fraction, tuple(kinds)))

    def always(self, path_substring: str, status: int = 503, retry_after: int | None = None,
               kinds: tuple[str, ...] | None = None) -> None:  # fmt: skip
        """Every request (of ``kinds``, default all) whose path (query included) contains ``path_substring`` answers
        ``status`` (with ``Retry-After`` when given)."""
        with self._lock:
            self._always.append((path_substring, status, retry_after, None if kinds is None else tuple(kinds)))

    def checksum_mismatch(self, symbol: str, interval: str, period: str, futures: str | None = None) -> None:
        """That archive's CHECKSUM names a wrong hash (the zip itself is fine)."""
        with self._lock:
            self.checksum_mismatches.add(_archive_key(symbol, interval, period, futures))

    def corrupt_zip(self, symbol: str, interval: str, period: str, futures: str | None = None) -> None:
        """That zip is truncated at origin and its CHECKSUM (and listing size) match the truncated bytes."""
        with self._lock:
            self.corrupt_zips.add(_archive_key(symbol, interval, period, futures))

    def evil_listing(self, names: list[str]) -> None:
        """Extra folders ``data/spot/monthly/klines/<name>/`` in the bucket listing (no files under them)."""
        with self._lock:
            self.evil_names.extend(names)

    def status_for(self, kind: str, path: str) -> tuple[int, dict[str, str]] | None:
        """(status, headers) when a fault answers this request instead of the service, else None."""
        with self._lock:
            for substring, status, retry_after, kinds in self._always:
                if substring in path and (kinds is None or kind in kinds):
                    return status, {} if retry_after is None else {"Retry-After": str(retry_after)}
            for i, rule in enumerate(self._once):
                if rule.action != "reset" and rule.applies(f"{rule.action}{i}", kind, path):
                    rule.fired.add(path)
                    headers = {"Retry-After": str(rule.retry_after)} if rule.action == "rate_limit" else {}
                    return rule.status, headers
        return None

    def fired(self) -> list[tuple[str, int, list[str]]]:
        """Per once-rule, in the order added: (action, status, the paths it fired on)."""
        with self._lock:
            return [(r.action, r.status, sorted(r.fired)) for r in self._once]

    def cut_body(self, kind: str, path: str) -> bool:
        """Whether this successful answer is cut off mid-body (consumes the once)."""
        with self._lock:
            for i, rule in enumerate(self._once):
                if rule.action == "reset" and rule.applies(f"reset{i}", kind, path):
                    rule.fired.add(path)
                    return True
        return False

    def configure(self, payload: dict) -> None:
        """Apply a JSON body of ``POST /_standin/faults``: keys are method names, values their keyword arguments,
        e.g. ``{"clear": true, "fail_once": {"fraction": 0.2, "status": 503}, "evil_listing": {"names": ["x"]}}``."""
        if payload.get("clear"):
            self.clear()
        for name, kwargs in payload.items():
            if name == "clear":
                continue
            if name not in {"fail_once", "rate_limit_once", "reset_once", "always", "checksum_mismatch",
                            "corrupt_zip", "evil_listing", "geo_block", "hostile_zip", "hostile_checksum",
                            "stall"}:  # fmt: skip
                raise ValueError(f"unknown fault {name!r}; expected a Faults method name")
            getattr(self, name)(**kwargs)


@functools.lru_cache(maxsize=8)  # the bomb takes ~0.3 s to deflate; its CHECKSUM, listing and GET reuse it
def _hostile_zip(kind: str, name: str, csv: bytes) -> bytes:
    """A zip of ``kind`` (see HOSTILE_ZIPS) standing in for the archive ``name`` whose real member is ``csv``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "two_members":
            archive.writestr(f"{name}.csv", csv)
            archive.writestr("README.txt", b"extra member")
        elif kind == "other_name":
            archive.writestr("klines.csv", csv)
        elif kind == "bomb":  # 64 MB of one byte deflates to ~64 KB: a ratio no kline CSV has
            archive.writestr(f"{name}.csv", b"1" * (64 << 20), compresslevel=9)
        elif kind == "empty_csv":
            archive.writestr(f"{name}.csv", b"")
        elif kind == "non_ascii":
            lines = csv.split(b"\n")
            lines[2] = lines[2].replace(b",", ",\u00e9".encode(), 1)
            archive.writestr(f"{name}.csv", b"\n".join(lines))
        elif kind == "wrong_fields":
            lines = csv.split(b"\n")
            lines[2] = lines[2].rsplit(b",", 1)[0]  # 11 fields
            archive.writestr(f"{name}.csv", b"\n".join(lines))
    return buffer.getvalue()  # "no_member": an empty zip


# --- the HTTP server -------------------------------------------------------------------------------------------------
@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/xml"
    headers: dict[str, str] = field(default_factory=dict)


def _no_such_key(key: str) -> _Answer:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
        f"<Message>The specified key does not exist.</Message><Key>{escape(key)}</Key>"
        f"<RequestId>{hashlib.md5(key.encode()).hexdigest()[:16].upper()}</RequestId>"
        "<HostId>standin</HostId></Error>"
    )
    return _Answer(404, body.encode())


def _error(kind: str, status: int, headers: dict[str, str]) -> _Answer:
    if kind == "api":
        body = json.dumps({"code": -1003 if status == 429 else -1001, "msg": f"stand-in fault: HTTP {status}"})
        return _Answer(status, body.encode(), "application/json", headers)
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code><Message>HTTP {status}'
    return _Answer(status, (body + "</Message></Error>").encode(), headers=headers)


def _json(payload: object, status: int = 200) -> _Answer:
    return _Answer(status, json.dumps(payload).encode(), "application/json")


def _kind(path: str) -> str:
    if path.startswith("/data/"):
        return "checksum" if path.endswith(".CHECKSUM") else "zip" if path.endswith(".zip") else "other"
    if path.rstrip("/") == "/bucket":
        return "listing"
    return "api" if path.startswith(("/api/", "/fapi/", "/dapi/")) else "other"


class StandIn:
    """A real HTTP server on ``host`` standing in for data.binance.vision, its S3 listing, api.binance.com, and the
    futures APIs fapi.binance.com and dapi.binance.com (``fapi_url``, ``dapi_url``: all on the one port).

    ``page_size``: entries (keys + folders) per listing page. ``latency``: seconds slept before each answer (settable
    at any time). Control routes (not counted in stats, never faulted): ``GET /_standin/stats``,
    ``POST /_standin/reset_stats``, ``POST /_standin/faults`` (see ``Faults.configure``), ``POST /_standin/publish``
    ``{"through": "YYYY-MM"}``, ``POST /_standin/today`` ``{"day": "YYYY-MM-DD"}``, ``POST /_standin/replace``
    ``{"symbol", "interval", "period"[, "futures"]}``.
    """

    def __init__(self, market: Market | None = None, *, host: str = "127.0.0.1", port: int = 0, page_size: int = 1000,
                 latency: float = 0.0):  # fmt: skip
        self.market = market or Market.default()
        self.host, self.port, self.page_size, self.latency = host, port, page_size, latency
        self.faults = Faults()
        self._stats_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset_stats()

    # --- lifecycle ---------------------------------------------------------------------------------------------------
    def start(self) -> StandIn:
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="binance-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def data_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def listing_url(self) -> str:
        return f"http://{self.host}:{self.port}/bucket"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def fapi_url(self) -> str:
        """The USD-M futures API (``/fapi/v1/exchangeInfo``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def dapi_url(self) -> str:
        """The COIN-M futures API (``/dapi/v1/exchangeInfo``)."""
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        return {"BINANCE_DATA_URL": self.data_url, "BINANCE_LISTING_URL": self.listing_url,
                "BINANCE_API_URL": self.api_url, "BINANCE_FAPI_URL": self.fapi_url,
                "BINANCE_DAPI_URL": self.dapi_url}  # fmt: skip

    # --- steering ----------------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        """``{"requests", "by_kind": {zip, checksum, listing, api, other}, "zip_bytes", "by_path": {path: n},
        "listing_prefixes": {prefix: n}}`` since the last reset; zip_bytes counts zip body bytes actually sent,
        paths are without query string (a listing's prefix is counted in listing_prefixes)."""
        with self._stats_lock:
            return json.loads(json.dumps(self._stats))

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats = {"requests": 0, "by_kind": dict.fromkeys(KINDS, 0), "zip_bytes": 0, "by_path": {},
                           "listing_prefixes": {}}  # fmt: skip

    def replace_archive(self, symbol: str, interval: str, period: str, futures: str | None = None) -> None:
        """Binance re-publishes the archive: its content and CHECKSUM change."""
        self.market.republish(symbol, interval, period, futures)

    def publish_monthly(self, through: str) -> None:
        self.market.published_monthly_through = through

    def set_today(self, day: str) -> None:
        self.market.today = day

    # --- answering ---------------------------------------------------------------------------------------------------
    def _count(self, kind: str, path: str, zip_bytes: int = 0, target: str = "") -> None:
        with self._stats_lock:
            self._stats["requests"] += 1
            self._stats["by_kind"][kind] += 1
            self._stats["by_path"][path] = self._stats["by_path"].get(path, 0) + 1
            if kind == "listing":
                prefix = parse_qs(urlsplit(target).query).get("prefix", [""])[0]
                prefixes = self._stats["listing_prefixes"]
                prefixes[prefix] = prefixes.get(prefix, 0) + 1
            self._stats["zip_bytes"] += zip_bytes

    def answer(self, method: str, target: str, body: bytes) -> tuple[_Answer, bool]:
        """The answer to one request and whether its body is to be cut off (reset fault)."""
        path = urlsplit(target).path
        if path.startswith("/_standin/"):
            return self._control(method, path, body), False
        kind = _kind(path)
        if self.latency:
            time.sleep(self.latency)
        if stall := self.faults.stall_for(kind, target):
            time.sleep(stall)
        if kind == "api" and self.faults.geo_blocked:
            return _Answer(451, GEO_BLOCK_BODY, "application/json"), False
        fault = self.faults.status_for(kind, target) if kind != "other" else None
        if fault is not None:
            return _error(kind, *fault), False
        if kind in ("zip", "checksum"):
            answer = self._archive(path)
        elif kind == "listing":
            answer = self._listing(parse_qs(urlsplit(target).query, keep_blank_values=True))
        elif path == "/api/v3/exchangeInfo":
            answer = _json(self.market.exchange_info())
        elif path == "/api/v3/ticker/24hr":
            answer = _json(self.market.tickers_24h())
        elif path in (EXCHANGE_INFO_PATHS["um"], EXCHANGE_INFO_PATHS["cm"]):
            answer = _json(self.market.futures_exchange_info("um" if path.startswith("/fapi/") else "cm"))
        elif kind == "api":
            answer = _json({"code": -1100, "msg": f"unknown endpoint {path}"}, 404)
        else:
            answer = _no_such_key(path.lstrip("/"))
        cut = answer.status == 200 and kind != "other" and self.faults.cut_body(kind, target)
        return answer, cut

    def _parse_archive_path(self, path: str) -> tuple[str, str, str, bool, str | None] | None:
        """(symbol, interval, period, is_checksum, futures) of a well-formed archive path, else None: spot's
        ``/data/spot/{frequency}/klines/{SYM}/{interval}/{name}``, a contract's
        ``/data/futures/{um|cm}/{frequency}/klines/{SYM}/{interval}/{name}`` or its funding's
        ``/data/futures/{um|cm}/{frequency}/fundingRate/{SYM}/{name}`` (interval FUNDING)."""
        parts = path.split("/")
        futures = parts[3] if len(parts) > 3 and parts[1:3] == ["data", "futures"] and parts[3] in FUTURES else None
        if futures is not None:
            parts = parts[:2] + parts[3:]  # the market's level in place of spot's
            if len(parts) == 7 and parts[4] == FUNDING:
                parts = [*parts[:6], FUNDING, parts[6]]
        elif parts[1:3] != ["data", "spot"]:
            return None
        if len(parts) != 8 or parts[4] not in ("klines", FUNDING) or (parts[4] == FUNDING) != (parts[6] == FUNDING):
            return None
        frequency, symbol, interval, name = parts[3], parts[5], parts[6], parts[7]
        checksum = name.endswith(".zip.CHECKSUM")
        stem = name.removesuffix(".CHECKSUM").removesuffix(".zip")
        period = stem.removeprefix(f"{symbol}-{interval}-")
        length = {"monthly": 7, "daily": 10}.get(frequency)
        if period == stem or len(period) != length or not name.endswith((".zip", ".zip.CHECKSUM")):
            return None
        try:
            date.fromisoformat(period if length == 10 else f"{period}-01")
        except ValueError:
            return None
        return symbol, interval, period, checksum, futures

    def served_zip(self, symbol: str, interval: str, period: str, futures: str | None = None) -> bytes | None:
        """The zip bytes as served, ``corrupt_zip`` and ``hostile_zip`` applied."""
        key = _archive_key(symbol, interval, period, futures)
        body = self.market.archive_zip(symbol, interval, period, futures)
        if body is not None and key in self.faults.corrupt_zips:
            body = body[: len(body) * 2 // 3]
        hostile = self.faults.hostile_zips.get(key)
        if body is not None and hostile:
            body = _hostile_zip(
                hostile, f"{symbol}-{interval}-{period}", self.market.archive_csv(symbol, interval, period, futures)
            )
        return body

    def _served_digest(self, symbol: str, interval: str, period: str,
                       futures: str | None = None) -> tuple[str, str, int] | None:  # fmt: skip
        key = _archive_key(symbol, interval, period, futures)
        if key in self.faults.corrupt_zips or key in self.faults.hostile_zips:
            body = self.served_zip(symbol, interval, period, futures)
            return body and (hashlib.sha256(body).hexdigest(), hashlib.md5(body).hexdigest(), len(body))
        return self.market.archive_digest(symbol, interval, period, futures)

    def _checksum_body(self, symbol: str, interval: str, period: str, futures: str | None = None) -> bytes | None:
        digest = self._served_digest(symbol, interval, period, futures)
        if digest is None:
            return None
        sha = digest[0]
        key = _archive_key(symbol, interval, period, futures)
        if key in self.faults.checksum_mismatches:
            sha = hashlib.sha256(f"stale {sha}".encode()).hexdigest()
        hostile = self.faults.hostile_checksums.get(key)
        if hostile == "malformed":
            return f"{sha[:40]} {symbol}-{interval}-{period}".encode()
        if hostile == "other_name":
            return f"{sha}  {symbol}-{interval}-{_next_month(period[:7])}.zip".encode()
        return f"{sha}  {symbol}-{interval}-{period}.zip".encode()

    def _archive(self, path: str) -> _Answer:
        parsed = self._parse_archive_path(path)
        if parsed is not None:
            symbol, interval, period, checksum, futures = parsed
            body = (self._checksum_body if checksum else self.served_zip)(symbol, interval, period, futures)
            if body is not None:
                return _Answer(200, body, "text/plain" if checksum else "application/zip")
        return _no_such_key(path.lstrip("/"))

    # --- bucket listing ----------------------------------------------------------------------------------------------
    def _children(self, folder: str, only: str | None = None) -> list[tuple[str, bool]]:
        """Sorted (path, is_key) children of a folder of the virtual key space. ``only``: the one sub-folder name
        the listed prefix goes through (a pair folder is then looked up, not found among every pair's: a listing
        of one pair's folder costs the same for 600 pairs as for 6)."""
        parts = folder.split("/")[:-1]
        if folder == "":
            return [("data/", False)]
        if folder == "data/":
            return [("data/futures/", False), ("data/spot/", False)]
        if folder.startswith("data/futures/"):
            return self._futures_children(folder, only)
        if folder == "data/spot/":
            return [("data/spot/daily/", False), ("data/spot/monthly/", False)]
        if len(parts) == 3:
            return [(folder + "klines/", False)]
        frequency = parts[2]
        if len(parts) == 4:  # data/spot/{frequency}/klines/ -> pair folders (and hostile ones)
            pairs = self.market.pairs if only is None else [p for p in [self.market.find_pair(only)] if p]
            names = [p.symbol for p in pairs if self.market.has_folder(p.symbol, frequency)]
            if frequency == "monthly":
                names += [n for n in self.faults.evil_names if n not in names and only in (None, n)]
            return sorted((f"{folder}{n}/", False) for n in names)
        symbol = parts[4]
        if symbol in self.faults.evil_names:
            return []
        if len(parts) == 5:  # one pair -> interval folders
            return sorted((f"{folder}{i}/", False) for i in self.market.listing_intervals
                          if self.market.has_folder(symbol, frequency, i))  # fmt: skip
        interval = parts[5]
        keys = []
        for period in self.market.periods(symbol, interval, frequency):
            name = f"{folder}{symbol}-{interval}-{period}.zip"
            keys += [(name, True), (name + ".CHECKSUM", True)]
        return sorted(keys)

    def _futures_children(self, folder: str, only: str | None = None) -> list[tuple[str, bool]]:
        """``_children`` below ``data/futures/``: {um,cm}/{daily,monthly}/klines/{SYM}/{interval}/ and
        {um,cm}/monthly/fundingRate/{SYM}/ (no daily funding)."""
        parts = folder.split("/")[:-1]  # data, futures, market, frequency, dataset, symbol, interval
        if len(parts) == 2:
            return [(f"{folder}{f}/", False) for f in sorted(FUTURES)]
        futures = parts[2]
        if futures not in FUTURES:
            return []
        if len(parts) == 3:
            return [(folder + "daily/", False), (folder + "monthly/", False)]
        frequency = parts[3]
        if len(parts) == 4:
            return [(folder + FUNDING + "/", False)] * (frequency == "monthly") + [(folder + "klines/", False)]
        dataset = parts[4]
        interval = FUNDING if dataset == FUNDING else None
        contracts = [c for c in self.market.contracts if c.futures == futures]
        if len(parts) == 5:  # -> contract folders
            return sorted((f"{folder}{c.symbol}/", False) for c in contracts if only in (None, c.symbol)
                          if self.market.has_folder(c.symbol, frequency, interval, futures))  # fmt: skip
        symbol = parts[5]
        if symbol not in {c.symbol for c in contracts}:
            return []
        if len(parts) == 6 and dataset == "klines":  # one contract -> interval folders
            return sorted((f"{folder}{i}/", False) for i in self.market.listing_intervals
                          if self.market.has_folder(symbol, frequency, i, futures))  # fmt: skip
        interval = FUNDING if dataset == FUNDING else parts[6]
        keys = []
        for period in self.market.periods(symbol, interval, frequency, futures):
            name = f"{folder}{symbol}-{interval}-{period}.zip"
            keys += [(name, True), (name + ".CHECKSUM", True)]
        return sorted(keys)

    def _walk(self, folder: str, prefix: str, delimiter: str, marker: str) -> Iterator[tuple[str, bool]]:
        """(key or common prefix, is_key) under ``folder`` in S3 order: keys > marker starting with prefix, with
        folders below the prefix folded into common prefixes when a delimiter is given."""
        rest = prefix[len(folder) :] if prefix.startswith(folder) else ""
        for path, is_key in self._children(folder, rest.split("/", 1)[0] if "/" in rest else None):
            if not (path.startswith(prefix) or prefix.startswith(path)):
                continue
            if is_key:
                if path > marker:
                    yield path, True
            elif delimiter and path.startswith(prefix) and len(path) > len(prefix):
                if path > marker:
                    yield path, False  # folded: nothing below is listed
            elif path > marker or marker.startswith(path):
                yield from self._walk(path, prefix, delimiter, marker)

    def _listing(self, query: dict[str, list[str]]) -> _Answer:
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        marker = query.get("marker", [""])[0]
        try:
            max_keys = min(int(query.get("max-keys", [self.page_size])[0]), self.page_size)
        except ValueError:
            return _Answer(400, b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code></Error>')
        if delimiter not in ("", "/"):
            delimiter = ""  # the stand-in folds on "/" only
        entries = []
        for entry in self._walk("", prefix, delimiter, marker):
            entries.append(entry)
            if len(entries) > max_keys:
                break
        truncated = len(entries) > max_keys
        entries = entries[:max_keys]
        xml = [f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{S3_NAMESPACE}">',
               f"<Name>{BUCKET}</Name><Prefix>{escape(prefix)}</Prefix><Marker>{escape(marker)}</Marker>",
               f"<MaxKeys>{max_keys}</MaxKeys>"]  # fmt: skip
        if delimiter:
            xml.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
        xml.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if truncated and delimiter and entries:
            xml.append(f"<NextMarker>{escape(entries[-1][0])}</NextMarker>")
        for key, _ in (e for e in entries if e[1]):
            xml.append(self._contents(key))
        for folder, _ in (e for e in entries if not e[1]):
            xml.append(f"<CommonPrefixes><Prefix>{escape(folder)}</Prefix></CommonPrefixes>")
        xml.append("</ListBucketResult>")
        return _Answer(200, "".join(xml).encode())

    def _contents(self, key: str) -> str:
        symbol, interval, period, checksum, futures = self._parse_archive_path("/" + key)
        body = self._checksum_body(symbol, interval, period, futures) if checksum else None
        if checksum:
            md5, size = hashlib.md5(body).hexdigest(), len(body)
        else:
            _, md5, size = self._served_digest(symbol, interval, period, futures)
        _, end = _period_range(period)
        revision = self.market.revisions.get(_archive_key(symbol, interval, period, futures), 0)
        modified = datetime.fromtimestamp(end / 1000 + 6 * 3600 + revision * DAY_MS / 1000, UTC)
        return (f"<Contents><Key>{escape(key)}</Key><LastModified>{modified:%Y-%m-%dT%H:%M:%S.000Z}</LastModified>"
                f'<ETag>"{md5}"</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>')  # fmt: skip

    # --- control routes ----------------------------------------------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> _Answer:
        try:
            payload = json.loads(body or b"{}")
            if method == "GET" and path == "/_standin/stats":
                return _json(self.stats())
            if method != "POST":
                return _json({"error": f"{method} {path}: expected POST"}, 405)
            if path == "/_standin/reset_stats":
                self.reset_stats()
            elif path == "/_standin/faults":
                self.faults.configure(payload)
            elif path == "/_standin/publish":
                self.publish_monthly(payload["through"])
            elif path == "/_standin/today":
                self.set_today(payload["day"])
            elif path == "/_standin/replace":
                self.replace_archive(payload["symbol"], payload["interval"], payload["period"], payload.get("futures"))
            else:
                return _json({"error": f"unknown control route {path}"}, 404)
        except (ValueError, KeyError, TypeError) as exc:
            return _json({"error": f"{path}: {exc!r}"}, 400)
        return _json({"ok": True})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | socket.timeout):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, every answer has a Content-Length
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK of the
    # headers (~40 ms on Linux loopback), a stall per request that a real server does not have.
    disable_nagle_algorithm = True
    server_version = "AmazonS3"
    sys_version = ""
    timeout = 60
    owner: StandIn

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer, cut = self.owner.answer(method, self.path, body)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        sent = 0 if method == "HEAD" else len(answer.body) // 2 if cut else len(answer.body)
        path = urlsplit(self.path).path
        if not path.startswith("/_standin/"):  # counted before the body goes out: a client never sees stale stats
            kind = _kind(path)
            self.owner._count(kind, path, sent if kind == "zip" and answer.status == 200 else 0, self.path)
        self.wfile.write(answer.body[:sent])
        if cut:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


# --- command line ----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a local, synthetic stand-in for Binance's public data.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--pairs", type=int, default=0, help="synthetic market of N pairs (default: Market.default())")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sleep per request, as a network round trip")
    parser.add_argument("--page-size", type=int, default=1000, help="entries per bucket-listing page")
    args = parser.parse_args(argv)
    market = Market.synthetic(args.pairs) if args.pairs else Market.default()
    standin = StandIn(market, host=args.host, port=args.port, page_size=args.page_size,
                      latency=args.latency_ms / 1000).start()  # fmt: skip
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    for name, value in standin.env().items():
        print(f"export {name}={value}")
    print(f"# Binance stand-in on {standin.data_url}: {len(market.pairs)} pairs, SYNTHETIC data (except BTCUSDT 5m "
          f"2024-12/2025-01); monthly archives through {market.published_monthly_through}, today {market.today}. "
          "Ctrl-C stops it.")  # fmt: skip
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
