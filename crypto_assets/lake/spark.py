"""The Spark settings the lake is built with, and a SparkSession made from them.

Everything that makes results independent of the machine is pinned here: the SQL session time zone and both JVMs'
default time zone are UTC, dynamic partition overwrite is on (rewriting a month replaces only its folder), and
Parquet timestamps are written as standard ``TIMESTAMP_MICROS`` (UTC-adjusted) instead of Spark's legacy INT96.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from crypto_assets.lake.jvm_classes import ClassArchive

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

APP_NAME = "crypto_assets"
# A month is one task's output; past this many rows it is split into several files (about 150-200 MB each).
MAX_RECORDS_PER_FILE = 5_000_000
# What opening a file "costs" in bytes when Spark packs files into read tasks. Normalized CSVs are small local
# files (tens of KB for 4h candles), so a low cost packs hundreds of them into a few tasks instead of one per ~32.
OPEN_COST_BYTES = 128 * 1024
# The share of the heap above Spark's reserved 300 MB that sorts, shuffles and aggregations may fill before they
# spill: 30% (~49 MB of a 480m heap), not Spark's 60% (~98 MB). A month-sorted write of 600 pairs x 15 months fills
# whatever it is given, and the heap grew with it: the server JVM's peak after that write 730-765 -> 645-701 MB
# (four runs each), the write 10.0-11.1 s either way, a 1m month's write (no sort) within ~1 s.
MEMORY_FRACTION = "0.3"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The driver's heap (in local mode also the executor's, and the Connect server's): the smallest Spark accepts (it
# needs 450m), so run process plus JVM stay under 1 GB on a small machine, with the serial collector (G1 and a larger
# heap more than doubled the JVM's resident memory for no speed). A month that does not fit in execution memory
# spills to disk. Raise it for a big cluster driver or very fine intervals:
# CRYPTO_SPARK_CONF='{"spark.driver.memory": "2g"}'.
DRIVER_MEMORY = "480m"
# The heap starts small and grows only while under 20% of it is free after a collection: the JVM's defaults (start at
# 1/64 of the machine's memory, grow under 40% free, shrink over 70%) made it resident at its maximum whatever a run
# needed. It shrinks back only past 50% free: kept within 10-20% free, the old generation filled again within a second
# with the Parquet writers' buffers (they outlive young collections) and a 1m write ran ~35 full collections of ~150 ms
# each; at 20-50%, half as many, and C's parquet_candles 23.5 and 20.1 s -> 17.6 and 19.0 s in the benchmark
# (interleaved), for +35-48 MB of server JVM at C and +9-25 MB at U (both still under 1 GB with the run process).
_JVM_OPTIONS = "-Duser.timezone=UTC -XX:+UseSerialGC -Xms64m -XX:MinHeapFreeRatio=20 -XX:MaxHeapFreeRatio=50"


def spark_conf(
    master: str = "local[*]", extra: dict[str, str] | None = None, driver_memory: str = DRIVER_MEMORY
) -> dict[str, str]:
    """The Spark settings the lake runs with, for ``master`` (``local[*]``, ``local[2]``, ``spark://host:port``).

    ``extra`` entries override ours (e.g. ``{"spark.executor.memory": "4g"}``). Driver JVM options (memory, time
    zone) only take effect if no JVM was started yet in this process.
    """
    utc_jvm = _JVM_OPTIONS
    conf = {
        "spark.master": master,
        "spark.app.name": APP_NAME,
        "spark.driver.memory": driver_memory,
        "spark.driver.extraJavaOptions": utc_jvm,
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",  # executors keep their default collector
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.shuffle.partitions": "8",
        "spark.memory.fraction": MEMORY_FRACTION,
        "spark.sql.parquet.compression.codec": "snappy",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.files.maxRecordsPerFile": str(MAX_RECORDS_PER_FILE),
        "spark.sql.files.openCostInBytes": str(OPEN_COST_BYTES),
        # Parquet's vectored reads go through an AsynchronousFileChannel, whose NIO layer copies each read (a whole
        # column chunk: ~130 MB for a month of 1m candles) through a temporary direct buffer that the JDK then keeps
        # cached per thread: 265 MB of off-heap memory held for the rest of the run. Plain stream reads do not.
        "spark.hadoop.parquet.hadoop.vectored.io.enabled": "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    conf.update(extra or {})
    return conf


def prepare_environment(master: str) -> None:
    """Bind Spark to the loopback interface (``SPARK_LOCAL_IP=127.0.0.1``, unless already set) when the master is
    local or a standalone master on this machine's loopback address, so no network interface is needed."""
    if master.startswith("local") or urlparse(master).hostname in _LOOPBACK_HOSTS:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def build_session(conf: dict[str, str], class_archive: ClassArchive | None = None) -> SparkSession:
    """A SparkSession with ``conf`` (see ``spark_conf``), log level WARN. Reuses this process's active session if
    there is one (Spark's ``getOrCreate``), in which case settings that need a new JVM are not applied.

    ``class_archive``: when this call starts the driver JVM, it maps that class-data archive (or writes it at exit),
    which takes about 3 s off the JVM start and its first query (see ``jvm_classes``)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    prepare_environment(conf.get("spark.master", "local[*]"))
    if not os.environ.get("SPARK_REMOTE"):
        os.environ.pop("SPARK_REMOTE", None)  # pyspark takes a present but empty SPARK_REMOTE for Connect mode
    # pyspark has no public way to ask whether this process already runs a driver JVM, nor for that JVM's pid (which
    # the class-data archive needs to know when its dump is complete): these two private attributes, here only.
    if SparkContext._gateway is None:  # this call starts the driver JVM
        # glibc gives every busy thread of the JVM its own malloc arena; two are plenty for a driver whose memory is
        # on the heap, and keep ~30 MB of native fragments out of its peak (read by the JVM at its start only).
        os.environ.setdefault("MALLOC_ARENA_MAX", "2")
        if class_archive is not None:
            options = class_archive.java_options()
            driver_options = conf.get("spark.driver.extraJavaOptions", "")
            conf = {**conf, "spark.driver.extraJavaOptions": f"{driver_options} {options}".strip()}
    else:
        class_archive = None  # the running JVM already has its classes
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    if class_archive is not None:
        class_archive.started(session._jvm.java.lang.ProcessHandle.current().pid())
    return session


def connect_session(url: str, conf: dict[str, str]) -> SparkSession:
    """A Spark Connect session on the server at ``url`` (``sc://host:port``) with the SQL settings of ``conf`` that
    a session may change (time zone, partition overwrite, Parquet output, file sizes, shuffle partitions): a server
    we did not start still writes the lake the same way. Fails at once, naming the URL, if nothing answers there.

    A URL with ``/;session_id=<uuid>`` (our server's, see ``spark_server``) joins that session, shared with the other
    runs and left open when this run's client stops; if the server has closed it, the run gets a session of its own.

    pyspark switches the whole process to Connect mode (``pyspark.sql.functions`` then build Connect columns), so a
    process uses either this or ``build_session``, not both."""
    from pyspark.sql import SparkSession

    from crypto_assets.lake.spark_server import SparkServerError, parse_remote, port_open

    host, port = parse_remote(url)
    _arrow_on_malloc()
    if not port_open(host, port, timeout=3.0):
        raise SparkServerError(
            f"no Spark Connect server answers at SPARK_REMOTE={url}: start one with `make spark` (or `python -m "
            f"crypto_assets.lake.spark_server start --port {port}`), or unset SPARK_REMOTE to run Spark in local mode"
        )
    shared = shared_session(url) is not None
    try:
        session = _configured(SparkSession.builder.remote(url).getOrCreate(), conf)
    except Exception as error:
        if not shared or "SESSION_CLOSED" not in str(error):
            raise
        # The server closed the shared session (idle past its timeout, or released): this run gets one of its own.
        SparkSession.builder.remote(url).getOrCreate().stop()
        url, shared = _without_session(url), False
        session = _configured(SparkSession.builder.remote(url).getOrCreate(), conf)
    if shared:
        # Another run's, or the warm-up's: closing this client must leave it open on the server (pyspark releases a
        # session it stops unless told not to; this public attribute of its Connect session is the way to say so).
        session.release_session_on_close = False
    return session


def import_connect_client_in_background() -> None:
    """Start importing pyspark's Connect client (pyarrow, pandas, gRPC: ~0.5 s of CPU) in a daemon thread, so that a
    later ``connect_session`` finds it loaded. An import error is left for that call to report."""
    threading.Thread(target=_import_connect_client, name="import-spark-connect", daemon=True).start()


def _import_connect_client() -> None:
    try:
        import pyspark.sql.connect.session  # noqa: F401
    except Exception:  # noqa: BLE001 - connect_session's own import reports it
        pass


def _arrow_on_malloc() -> None:
    """The Connect client moves every result and every local table through pyarrow, whose default allocator (mimalloc)
    keeps what it has freed in per-thread heaps: U's funding step, when it still sent each month as an Arrow table
    (built in a parsing thread while the main thread sent the previous one), peaked 49 MB over the run process's
    start on the system allocator against 61-69 MB on mimalloc."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def shared_session(url: str) -> str | None:
    """The Connect session id a ``sc://host:port/;session_id=<uuid>`` URL names (our server's runs share one, see
    ``spark_server``); None when the URL names none and each run gets a session of its own."""
    for param in url.split("/;", 1)[1].split(";") if "/;" in url else ():
        key, _, value = param.partition("=")
        if key == "session_id" and value:
            return value
    return None


def _without_session(url: str) -> str:
    address, _, params = url.partition("/;")
    kept = [p for p in params.split(";") if p and not p.startswith("session_id=")]
    return address + ("/;" + ";".join(kept) if kept else "")


def _configured(session: SparkSession, conf: dict[str, str]) -> SparkSession:
    for key, value in conf.items():
        if key.startswith("spark.sql.") and session.conf.isModifiable(key):
            session.conf.set(key, value)
    # Connect caches the analyzed plan of a read by its request: the same folders read again in the same session
    # (the month summary after a rewrite, a later run's read of a month it rewrote) would list the files of the first
    # read, which the rewrite swapped out.
    session.conf.set("spark.connect.session.planCache.enabled", "false")
    return session
