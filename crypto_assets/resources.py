"""Dagster resources: the Binance HTTP session, the lake's location, pair_universe's options, and the SparkSession."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import PrivateAttr

from crypto_assets.binance.archives import MarketType
from crypto_assets.binance.client import BACKOFF, CONNECT_TIMEOUT, READ_TIMEOUT, RETRIES, BinanceClient
from crypto_assets.binance.universe import UniverseOptions
from crypto_assets.lake.jvm_classes import ClassArchive
from crypto_assets.lake.relocate import RelocationError, relocate_legacy_spot
from crypto_assets.lake.spark import build_session, connect_session, import_connect_client_in_background, spark_conf
from crypto_assets.lake.spark_server import SparkServerError
from crypto_assets.layout import Layout
from crypto_assets.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# What a resource made without a value (in a test, in the launchpad) takes: the documented defaults of settings.py.
_DEFAULT = Settings()


class BinanceResource(dg.ConfigurableResource):
    """Binance's public data over one pooled, retrying HTTP session per run (archives, bucket listing, REST API)."""

    data_url: str
    listing_url: str
    api_url: str
    fapi_url: str = _DEFAULT.fapi_url
    dapi_url: str = _DEFAULT.dapi_url
    download_workers: int = _DEFAULT.download_workers
    synthetic: bool = _DEFAULT.synthetic  # CRYPTO_DEMO: the URLs serve the local stand-in's made-up market
    retries: int = RETRIES
    backoff: float = BACKOFF
    read_timeout: float = READ_TIMEOUT
    _client: BinanceClient | None = PrivateAttr(default=None)

    def _new_client(self) -> BinanceClient:
        return BinanceClient(self.data_url, self.listing_url, self.api_url, pool_size=self.download_workers,
                             retries=self.retries, backoff=self.backoff,
                             timeout=(CONNECT_TIMEOUT, self.read_timeout))  # fmt: skip

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = self._new_client()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()

    def rest_url(self, market: MarketType) -> str:
        """The REST host of ``market``: api (spot), fapi (USD-M) or dapi (COIN-M)."""
        return {MarketType.SPOT: self.api_url, MarketType.UM: self.fapi_url, MarketType.CM: self.dapi_url}[market]

    @property
    def client(self) -> BinanceClient:
        if self._client is None:  # used outside a run (e.g. in a test): make one on first use
            self._client = self._new_client()
        return self._client


class LakeResource(dg.ConfigurableResource):
    """Where the lake lives (CRYPTO_DATA_DIR) and its kline interval (CRYPTO_INTERVAL)."""

    data_dir: str
    interval: str = _DEFAULT.interval

    @property
    def layout(self) -> Layout:
        """Spot's kline dataset; ``layout.for_market(m)`` and ``.funding`` give the others."""
        return Layout.at(self.data_dir, self.interval)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """A lake written before the market level is moved to its place (renames only) before any run reads it."""
        try:
            moved = relocate_legacy_spot(self.layout)
        except RelocationError as exc:
            raise dg.Failure(description=str(exc)) from None
        if moved:
            context.log.info("moved the spot lake under its market level (renames, nothing rewritten): "
                             + ", ".join(moved))  # fmt: skip


class UniverseResource(dg.ConfigurableResource):
    """pair_universe's options for this deployment (CRYPTO_PAIR_MODE, CRYPTO_QUOTE, CRYPTO_TARGET_PAIRS,
    CRYPTO_SYMBOLS, CRYPTO_INCLUDE_LEVERAGED); a run's config may set its own mode, target, symbols and leveraged
    tokens. The futures universes take the quote (USD-M) and CRYPTO_INCLUDE_DELIVERY."""

    mode: str = _DEFAULT.universe.mode
    quote: str = _DEFAULT.universe.quote
    target_pairs: int = _DEFAULT.universe.target_pairs
    symbols: list[str] = list(_DEFAULT.universe.symbols)
    include_leveraged: bool = _DEFAULT.universe.include_leveraged
    include_delivery: bool = _DEFAULT.include_delivery  # futures: quarterly contracts too (CRYPTO_INCLUDE_DELIVERY)

    def options(self, **given: object) -> UniverseOptions:
        """These options with those ``given`` in their place; OptionError when the result is not allowed."""
        mine = {"mode": self.mode, "quote": self.quote, "target_pairs": self.target_pairs,
                "symbols": tuple(self.symbols), "include_leveraged": self.include_leveraged}  # fmt: skip
        return UniverseOptions(**{**mine, **given})


class SparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy SparkSession resource: made on first use (runs with nothing to write never pay for
    Spark) and, unlike the stock one, released at the end of the run. It overrides the public ``spark_session`` only:
    the stock resource cannot make a Spark Connect session, nor start its JVM from a class-data archive. (Importing
    dagster-pyspark imports pyspark, ~0.15 s of each run process's start, also of runs that never start Spark: the
    price of building on the design's SparkSession resource.)

    With ``remote`` (SPARK_REMOTE, ``sc://host:port``) the session is a client of a long-lived Spark Connect server
    shared by runs (see ``lake.spark_server``); releasing it leaves the server running. Without it, the run starts
    its own local-mode (or ``spark://`` cluster) driver JVM from ``spark_config``, mapping the class-data archive
    kept in ``class_cache`` (CRYPTO_SPARK_CLASS_CACHE; empty = the user's cache folder, ``off`` = none), and stops
    it at the end of the run."""

    remote: str = _DEFAULT.spark_remote
    class_cache: str = _DEFAULT.spark_class_cache
    _session: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """At the run's start (in-process runs set their resources up once): a Connect run that materializes more
        than one asset imports the Connect client (pyarrow, pandas, gRPC: ~0.5 s of CPU) in the background while its
        first steps (downloads) wait on the network, so its Spark step finds its session in ~0.05 s instead of ~0.45 s
        (the study in the benchmark: parquet_candles 4.3 s against 4.8-5.0 s). A run of one asset has nothing to
        overlap it with: there the import would only compete with its own step (dataset_report's run took
        0.25-0.35 s against 0.1 s when it did)."""
        run = context.run
        assets = len(run.asset_selection or ()) or len(run.step_keys_to_execute or ()) if run is not None else 0
        if self.remote and assets > 1:
            import_connect_client_in_background()

    @property
    def spark_session(self) -> SparkSession:
        if self._session is None:
            began = time.perf_counter()
            if self.remote:
                try:
                    self._session = connect_session(self.remote, self.spark_config)
                except SparkServerError as exc:
                    raise dg.Failure(description=str(exc)) from None
            else:
                self._session = build_session(self.spark_config, ClassArchive.at(self.class_cache or None))
            self.session_started(time.perf_counter() - began)
        return self._session

    def session_started(self, seconds: float) -> None:
        """Called once a run's session is ready, with the seconds it took (JVM start or Connect handshake): a hook
        for whoever times it (the benchmark)."""

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._session is not None:
            self._session.stop()  # local: stops the driver JVM; Connect: closes only this client's session
            self._session = None


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location, from the settings the environment gave."""
    universe = settings.universe
    return {
        "binance": BinanceResource(
            data_url=settings.data_url,
            listing_url=settings.listing_url,
            api_url=settings.api_url,
            fapi_url=settings.fapi_url,
            dapi_url=settings.dapi_url,
            download_workers=settings.download_workers,
            synthetic=settings.synthetic,
        ),
        "lake": LakeResource(data_dir=settings.data_dir, interval=settings.interval),
        "universe": UniverseResource(
            mode=universe.mode,
            quote=universe.quote,
            target_pairs=universe.target_pairs,
            symbols=list(universe.symbols),
            include_leveraged=universe.include_leveraged,
            include_delivery=settings.include_delivery,
        ),
        "spark": SparkResource(
            spark_config=spark_conf(settings.spark_master, settings.spark_conf),
            remote=settings.spark_remote,
            class_cache=settings.spark_class_cache,
        ),
    }
