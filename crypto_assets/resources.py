"""Dagster resources: the Binance HTTP session, the lake's location and options, and the SparkSession."""

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import PrivateAttr

from crypto_assets.binance.client import BinanceClient
from crypto_assets.lake.jvm_classes import ClassArchive
from crypto_assets.lake.spark import build_session, spark_conf
from crypto_assets.layout import Layout
from crypto_assets.settings import Settings


class BinanceResource(dg.ConfigurableResource):
    """Binance's public data over one pooled, retrying HTTP session per run (archives, bucket listing, REST API)."""

    data_url: str
    listing_url: str
    api_url: str
    download_workers: int = 32
    synthetic: bool = False  # CRYPTO_DEMO: the URLs serve the local stand-in's made-up market
    retries: int = 6  # per request, for connection errors, 5xx, 429 and 418
    backoff: float = 0.25  # seconds before the first retry, doubling
    read_timeout: float = 60.0  # seconds without a byte before a request is retried
    _client: BinanceClient | None = PrivateAttr(default=None)

    def _new_client(self) -> BinanceClient:
        return BinanceClient(self.data_url, self.listing_url, self.api_url, pool_size=self.download_workers,
                             retries=self.retries, backoff=self.backoff, timeout=(10.0, self.read_timeout))  # fmt: skip

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = self._new_client()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> BinanceClient:
        if self._client is None:  # used outside a run (e.g. in a test): make one on first use
            self._client = self._new_client()
        return self._client


class LakeResource(dg.ConfigurableResource):
    """Where the lake lives (CRYPTO_DATA_DIR), its kline interval, and the pair-universe defaults."""

    data_dir: str
    interval: str = "4h"
    quote: str = "USDT"
    pair_mode: str = "historical-usdt"
    target_pairs: int = 300
    symbols: list[str] = []
    include_leveraged: bool = False

    @property
    def layout(self) -> Layout:
        return Layout.at(self.data_dir, self.interval)


class SparkResource(LazyPySparkResource):
    """A SparkSession started on first use (runs with nothing to write never pay for a JVM) and stopped at the
    end of the run (the stock resource never stops it). The driver JVM starts from a class-data archive kept in
    ``class_cache`` (CRYPTO_SPARK_CLASS_CACHE; empty = the user's cache folder, ``off`` = none)."""

    class_cache: str = ""

    def _init_session(self) -> None:
        if self._spark_session is None:
            self._spark_session = build_session(self.spark_config, ClassArchive.at(self.class_cache or None))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._spark_session is not None:
            self._spark_session.stop()
            self._spark_session = None


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "binance": BinanceResource(
            data_url=settings.data_url,
            listing_url=settings.listing_url,
            api_url=settings.api_url,
            download_workers=settings.download_workers,
            synthetic=settings.synthetic,
        ),
        "lake": LakeResource(
            data_dir=settings.data_dir,
            interval=settings.interval,
            quote=settings.quote,
            pair_mode=settings.pair_mode,
            target_pairs=settings.target_pairs,
            symbols=list(settings.symbols),
            include_leveraged=settings.include_leveraged,
        ),
        "spark": SparkResource(
            spark_config=spark_conf(settings.spark_master, settings.spark_conf), class_cache=settings.spark_class_cache
        ),
    }
