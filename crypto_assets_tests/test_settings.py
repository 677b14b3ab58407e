"""Configuration: defaults reproduce the study; invalid values fail fast naming the variable and what is allowed."""

import re
from pathlib import Path

import pytest

from crypto_assets.settings import Settings, SettingsError

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_reproduce_the_study():
    s = Settings.from_env({})
    u = s.universe
    assert (s.interval, s.start_month, u.quote, u.mode) == ("4h", "2024-10", "USDT", "historical-usdt")
    # The endpoints default to the ones the README documents (the tests themselves only ever talk to 127.0.0.1).
    documented = dict(re.findall(r"^\| `(BINANCE_\w+_URL)` \| `([^`]+)` \|", README.read_text(), re.M))
    assert (s.data_url, s.listing_url, s.api_url) == (
        documented["BINANCE_DATA_URL"], documented["BINANCE_LISTING_URL"], documented["BINANCE_API_URL"])  # fmt: skip
    assert s.end_month == "" and u.target_pairs == 300 and u.include_leveraged is False
    assert s.synthetic is False and Settings.from_env({"CRYPTO_DEMO": "1"}).synthetic is True


def test_values_are_read_and_normalized():
    s = Settings.from_env({"CRYPTO_INTERVAL": "1m", "CRYPTO_SYMBOLS": "btcusdt, ETHUSDT", "CRYPTO_PAIR_MODE": "symbols",
                           "BINANCE_DATA_URL": "http://127.0.0.1:9/", "CRYPTO_SPARK_CONF": '{"spark.x": 1}'})
    assert s.interval == "1m" and s.universe.symbols == ("BTCUSDT", "ETHUSDT") and s.data_url == "http://127.0.0.1:9"
    assert s.spark_conf == {"spark.x": "1"}


@pytest.mark.parametrize(
    "env, words",
    [
        ({"CRYPTO_INTERVAL": "4H"}, ["CRYPTO_INTERVAL", "'4H'", "1s", "1mo"]),
        ({"CRYPTO_START_MONTH": "2024-13"}, ["CRYPTO_START_MONTH", "'2024-13'", "YYYY-MM"]),
        ({"CRYPTO_END_MONTH": "2024/12"}, ["CRYPTO_END_MONTH", "YYYY-MM"]),
        ({"CRYPTO_END_MONTH": "2024-01"}, ["CRYPTO_END_MONTH", "before CRYPTO_START_MONTH"]),
        ({"CRYPTO_PAIR_MODE": "top200"}, ["CRYPTO_PAIR_MODE", "'top200'", "historical-usdt"]),
        ({"BINANCE_API_URL": "127.0.0.1:8765"}, ["BINANCE_API_URL", "not a URL", "http"]),
        ({"CRYPTO_DOWNLOAD_WORKERS": "0"}, ["CRYPTO_DOWNLOAD_WORKERS", "1 to 256"]),
        ({"CRYPTO_INCLUDE_LEVERAGED": "maybe"}, ["CRYPTO_INCLUDE_LEVERAGED", "true or false"]),
        ({"CRYPTO_SYMBOLS": "BTC/USDT"}, ["CRYPTO_SYMBOLS", "BTC/USDT"]),
        ({"CRYPTO_PAIR_MODE": "symbols"}, ["CRYPTO_SYMBOLS"]),
        ({"CRYPTO_SPARK_CONF": "[1]"}, ["CRYPTO_SPARK_CONF", "JSON object"]),
        ({"CRYPTO_DEMO": "sure"}, ["CRYPTO_DEMO", "true or false"]),
        ({"CRYPTO_DATA_DIR": "s3a://bucket/lake"}, ["CRYPTO_DATA_DIR", "'s3a://bucket/lake'", "POSIX path", "mounts"]),
    ],
)
def test_invalid_values_name_the_variable_and_what_is_allowed(env, words):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    for word in words:
        assert word in str(error.value)
