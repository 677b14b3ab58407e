"""Every knob of the pipeline, read from the environment in this one place and validated up front.

Defaults reproduce the study (4h USDT klines from 2024-10 on, historical pair discovery). An invalid value fails
fast with a message naming the variable, the value, and what is allowed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from crypto_assets.binance.client import CONNECTIONS
from crypto_assets.months import INTERVALS, Month

PAIR_MODES = ("top100", "diversified", "all-usdt", "historical-usdt", "symbols")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable and what is allowed."""


@dataclass(frozen=True)
class Settings:
    data_url: str = "https://data.binance.vision"
    listing_url: str = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
    api_url: str = "https://api.binance.com"
    data_dir: str = "./data"
    interval: str = "4h"
    start_month: str = "2024-10"
    end_month: str = ""
    quote: str = "USDT"
    pair_mode: str = "historical-usdt"
    target_pairs: int = 300
    symbols: tuple[str, ...] = ()
    include_leveraged: bool = False
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
            data_dir=_local_dir("CRYPTO_DATA_DIR", get("CRYPTO_DATA_DIR", d.data_dir) or d.data_dir),
            interval=_choice("CRYPTO_INTERVAL", get("CRYPTO_INTERVAL", d.interval), INTERVALS),
            start_month=_month("CRYPTO_START_MONTH", get("CRYPTO_START_MONTH", d.start_month)),
            end_month=_month("CRYPTO_END_MONTH", get("CRYPTO_END_MONTH", d.end_month), optional=True),
            quote=_quote(get("CRYPTO_QUOTE", d.quote)),
            pair_mode=_choice("CRYPTO_PAIR_MODE", get("CRYPTO_PAIR_MODE", d.pair_mode), PAIR_MODES),
            target_pairs=_int("CRYPTO_TARGET_PAIRS", get("CRYPTO_TARGET_PAIRS", str(d.target_pairs)), 1, 100_000),
            symbols=parse_symbols("CRYPTO_SYMBOLS", get("CRYPTO_SYMBOLS", "")),
            include_leveraged=_bool("CRYPTO_INCLUDE_LEVERAGED", get("CRYPTO_INCLUDE_LEVERAGED", "false")),
            download_workers=_int(
                "CRYPTO_DOWNLOAD_WORKERS", get("CRYPTO_DOWNLOAD_WORKERS", str(d.download_workers)), 1, 256
            ),
            spark_master=get("SPARK_MASTER", d.spark_master) or d.spark_master,
            spark_remote=_remote("SPARK_REMOTE", get("SPARK_REMOTE", d.spark_remote)),
            spark_conf=_json_object("CRYPTO_SPARK_CONF", get("CRYPTO_SPARK_CONF", "")),
            spark_class_cache=get("CRYPTO_SPARK_CLASS_CACHE", d.spark_class_cache),
            synthetic=_bool("CRYPTO_DEMO", get("CRYPTO_DEMO", "false")),
        )
        if settings.end_month and Month.parse(settings.end_month) < Month.parse(settings.start_month):
            raise SettingsError(
                f"CRYPTO_END_MONTH={settings.end_month!r} is before CRYPTO_START_MONTH={settings.start_month!r}; "
                "expected an end month at or after the start month (or empty for 'up to the current month')"
            )
        if settings.pair_mode == "symbols" and not settings.symbols:
            raise SettingsError("CRYPTO_PAIR_MODE='symbols' needs CRYPTO_SYMBOLS, e.g. CRYPTO_SYMBOLS=BTCUSDT,ETHUSDT")
        return settings


def parse_symbols(name: str, text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    for symbol in symbols:
        if not SYMBOL_RE.match(symbol):
            raise SettingsError(f"{name} contains {symbol!r}; expected Binance symbols matching {SYMBOL_RE.pattern}")
    return symbols


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


def _quote(value: str) -> str:
    if not re.match(r"^[A-Z0-9]{2,10}$", value):
        raise SettingsError(f"CRYPTO_QUOTE={value!r} is not an asset symbol; expected e.g. USDT")
    return value


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
