"""The Spark settings the lake is built with, and a SparkSession made from them.

Everything that makes results independent of the machine is pinned here: the SQL session time zone and both JVMs'
default time zone are UTC, dynamic partition overwrite is on (rewriting a month replaces only its folder), and
Parquet timestamps are written as standard ``TIMESTAMP_MICROS`` (UTC-adjusted) instead of Spark's legacy INT96.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

APP_NAME = "crypto_assets"
# A month is one task's output; past this many rows it is split into several files (about 150-200 MB each).
MAX_RECORDS_PER_FILE = 5_000_000
# What opening a file "costs" in bytes when Spark packs files into read tasks. Normalized CSVs are small local
# files (tens of KB for 4h candles), so a low cost packs hundreds of them into a few tasks instead of one per ~32.
OPEN_COST_BYTES = 128 * 1024
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def spark_conf(
    master: str = "local[*]", extra: dict[str, str] | None = None, driver_memory: str = "2g"
) -> dict[str, str]:
    """The Spark settings the lake runs with, for ``master`` (``local[*]``, ``local[2]``, ``spark://host:port``).

    ``extra`` entries override ours (e.g. ``{"spark.executor.memory": "4g"}``). Driver JVM options (memory, time
    zone) only take effect if no JVM was started yet in this process.
    """
    utc_jvm = "-Duser.timezone=UTC"
    conf = {
        "spark.master": master,
        "spark.app.name": APP_NAME,
        "spark.driver.memory": driver_memory,
        "spark.driver.extraJavaOptions": utc_jvm,
        "spark.executor.extraJavaOptions": utc_jvm,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.parquet.compression.codec": "snappy",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.files.maxRecordsPerFile": str(MAX_RECORDS_PER_FILE),
        "spark.sql.files.openCostInBytes": str(OPEN_COST_BYTES),
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


def build_session(conf: dict[str, str]) -> SparkSession:
    """A SparkSession with ``conf`` (see ``spark_conf``), log level WARN. Reuses this process's active session if
    there is one (Spark's ``getOrCreate``), in which case settings that need a new JVM are not applied."""
    from pyspark.sql import SparkSession

    prepare_environment(conf.get("spark.master", "local[*]"))
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
