"""Every knob of the pipeline, read from the environment in this one place and validated up front.

Defaults reproduce the study (4h USDT klines from 2024-10 on, historical pair discovery). An invalid value fails
fast with a message naming the variable, the value, and what is allowed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from crypto_assets.binance.archives import MarketType
from crypto_assets.binance.client import CONNECTIONS
from crypto_assets.binance.universe import OptionError, UniverseOptions
from crypto_assets.months import INTERVALS, Month

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
# The variable behind each universe option, to name it when its value is not allowed.
UNIVERSE_VARIABLES = {"mode": "CRYPTO_PAIR_MODE", "quote": "CRYPTO_QUOTE", "target_pairs": "CRYPTO_TARGET_PAIRS",
                      "symbols": "CRYPTO_SYMBOLS", "include_leveraged": "CRYPTO_INCLUDE_LEVERAGED"}  # fmt: skip


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable and what is allowed."""


@dataclass(frozen=True)
class Settings:
    data_url: str = "https://data.binance.vision"
    listing_url: str = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
    api_url: str = "https://api.binance.com"
    fapi_url: str = "https://fapi.binance.com"  # USD-M futures REST (exchangeInfo)
    dapi_url: str = "https://dapi.binance.com"  # COIN-M futures REST (exchangeInfo)
    # The markets the lake covers, in CRYPTO_MARKETS order: spot, um (USD-M futures), cm (COIN-M futures).
    markets: tuple[MarketType, ...] = (MarketType.SPOT,)
    # Quarterly (delivery) futures contracts too, not only perpetuals.
    include_delivery: bool = False
    data_dir: str = "./data"
    interval: str = "4h"
    start_month: str = "2024-10"
    end_month: str = ""
    universe: UniverseOptions = field(default_factory=UniverseOptions)
    download_workers: int = CONNECTIONS
    spark_master: str = "local[*]"
    # Spark Connect server the runs use (sc://host:port); empty = a local-mode driver JVM in each run's process.
    spark_remote: str = ""
    spark_conf: dict[str, str] = field(default_factory=dict)
    # Folder of the Spark driver JVM's class-data archive; empty = ~/.cache/crypto_assets/spark-classes, "off" = none.
    spark_class_cache: str = ""
    # CRYPTO_DEMO=1 (set by `make demo`): the URLs point at the local stand-in; everything is labelled SYNTHETIC.
    synthetic: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        d = cls()

        def get(name: str, default: str) -> str:
            return env.get(name, default).strip()

        settings = cls(
            data_url=_url("BINANCE_DATA_URL", get("BINANCE_DATA_URL", d.data_url)),
            listing_url=_url("BINANCE_LISTING_URL", get("BINANCE_LISTING_URL", d.listing_url)),
            api_url=_url("BINANCE_API_URL", get("BINANCE_API_URL", d.api_url)),
            fapi_url=_url("BINANCE_FAPI_URL", get("BINANCE_FAPI_URL", d.fapi_url)),
            dapi_url=_url("BINANCE_DAPI_URL", get("BINANCE_DAPI_URL", d.dapi_url)),
            markets=_markets("CRYPTO_MARKETS", get("CRYPTO_MARKETS", ",".join(d.markets))),
            include_delivery=_bool("CRYPTO_INCLUDE_DELIVERY", get("CRYPTO_INCLUDE_DELIVERY", str(d.include_delivery))),
            data_dir=_local_dir("CRYPTO_DATA_DIR", get("CRYPTO_DATA_DIR", d.data_dir) or d.data_dir),
            interval=_choice("CRYPTO_INTERVAL", get("CRYPTO_INTERVAL", d.interval), INTERVALS),
            start_month=_month("CRYPTO_START_MONTH", get("CRYPTO_START_MONTH", d.start_month)),
            end_month=_month("CRYPTO_END_MONTH", get("CRYPTO_END_MONTH", d.end_month), optional=True),
            universe=_universe(get, d.universe),
            download_workers=_int(
                "CRYPTO_DOWNLOAD_WORKERS", get("CRYPTO_DOWNLOAD_WORKERS", str(d.download_workers)), 1, 256
            ),
            spark_master=get("SPARK_MASTER", d.spark_master) or d.spark_master,
            spark_remote=_remote("SPARK_REMOTE", get("SPARK_REMOTE", d.spark_remote)),
            spark_conf=_json_object("CRYPTO_SPARK_CONF", get("CRYPTO_SPARK_CONF", "")),
            spark_class_cache=get("CRYPTO_SPARK_CLASS_CACHE", d.spark_class_cache),
            synthetic=_bool("CRYPTO_DEMO", get("CRYPTO_DEMO", str(d.synthetic))),
        )
        if settings.end_month and Month.parse(settings.end_month) < Month.parse(settings.start_month):
            raise SettingsError(
                f"CRYPTO_END_MONTH={settings.end_month!r} is before CRYPTO_START_MONTH={settings.start_month!r}; "
                "expected an end month at or after the start month (or empty for 'up to the current month')"
            )
        return settings


def _universe(get: Callable[[str, str], str], default: UniverseOptions) -> UniverseOptions:
    """The universe options from CRYPTO_PAIR_MODE, CRYPTO_QUOTE, CRYPTO_TARGET_PAIRS, CRYPTO_SYMBOLS (a comma list)
    and CRYPTO_INCLUDE_LEVERAGED."""
    v, d = UNIVERSE_VARIABLES, default
    try:
        return UniverseOptions(
            mode=get(v["mode"], d.mode),
            quote=get(v["quote"], d.quote),
            target_pairs=_int(v["target_pairs"], get(v["target_pairs"], str(d.target_pairs)), 1, 100_000),
            symbols=tuple(get(v["symbols"], ",".join(d.symbols)).split(",")),
            include_leveraged=_bool(v["include_leveraged"], get(v["include_leveraged"], str(d.include_leveraged))),
        )
    except OptionError as exc:
        raise SettingsError(f"{v[exc.option]}={exc.value!r} {exc.expected}") from None


def _markets(name: str, value: str) -> tuple[MarketType, ...]:
    """A comma list of markets, each once, in the order given."""
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    allowed = ", ".join(m.value for m in MarketType)
    unknown = [n for n in names if n not in {m.value for m in MarketType}]
    if not names or unknown:
        what = f"names unknown markets ({', '.join(unknown)})" if unknown else "names no market"
        raise SettingsError(f"{name}={value!r} {what}; expected a comma list of: {allowed} (e.g. spot,um)")
    return tuple(MarketType(n) for n in dict.fromkeys(names))


def _local_dir(name: str, value: str) -> str:
    if "://" in value:  # the Dagster side reads manifests and swaps months through local paths
        raise SettingsError(
            f"{name}={value!r} is a URI; expected a POSIX path (on a cluster: one every Spark node mounts at the same "
            "place, e.g. an NFS mount). HDFS/S3A URIs are not supported"
        )
    return value


def _url(name: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{name}={value!r} is not a URL; expected http(s)://host[:port][/path]")
    return value.rstrip("/")


def _remote(name: str, value: str) -> str:
    if not value:
        return ""
    parsed = urlparse(value)
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if parsed.scheme != "sc" or not parsed.hostname or port == 0:
        raise SettingsError(
            f"{name}={value!r} is not a Spark Connect URL; expected sc://host:port (e.g. sc://127.0.0.1:15002), "
            "or empty for a local-mode Spark in each run"
        )
    return value


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} is not allowed; expected one of: {', '.join(allowed)}")
    return value


def _month(name: str, value: str, optional: bool = False) -> str:
    if optional and not value:
        return ""
    try:
        return str(Month.parse(value))
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a month; expected YYYY-MM, e.g. 2025-01") from None


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise SettingsError(f"{name}={value!r} is not allowed; expected a whole number from {low} to {high}")
    return number


def _bool(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise SettingsError(f"{name}={value!r} is not a boolean; expected true or false")


def _json_object(name: str, value: str) -> dict[str, str]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name} is not valid JSON ({exc}); expected an object of Spark settings") from None
    if not isinstance(parsed, dict):
        raise SettingsError(f'{name}={value!r} is not a JSON object; expected e.g. {{"spark.executor.memory": "4g"}}')
    return {str(k): str(v) for k, v in parsed.items()}
