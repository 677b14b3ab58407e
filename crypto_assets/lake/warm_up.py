"""A warm-up for a fresh Spark Connect server: the lake's own write and read-back queries on a small made-up month,
so the first real run finds the server's JIT-compiled code instead of paying for it (a cold server took 26 s for a
write that takes 5.6 s warm).

    python -m crypto_assets.lake.warm_up sc://127.0.0.1:15002

It runs in a process of its own (``spark_server.warm_up``): a Connect session turns the whole Python process into a
Connect client, which a caller that also runs local-mode Spark must not become.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
import time
from pathlib import Path

from crypto_assets.binance.klines import KLINE_HEADER
from crypto_assets.lake.csv import CSV_FORMAT
from crypto_assets.lake.manifest import write_json
from crypto_assets.layout import Layout
from crypto_assets.months import INTERVAL_MS, Month

_MONTH = Month(2025, 1)
_INTERVAL = "1m"
_SYMBOLS = ("WARMAUSDT", "WARMBUSDT")
_DAYS = 3  # enough rows for the code paths to be compiled, little enough to cost a few seconds


def made_up_lake(root: Path) -> Layout:
    """A lake with one month of normalized CSVs for ``_SYMBOLS`` (Binance's µs rows, a steady made-up price)."""
    layout = Layout.at(root, _INTERVAL)
    layout.csv_dir(_MONTH).mkdir(parents=True)
    step, pairs = INTERVAL_MS[_INTERVAL], {}
    count = _DAYS * 86_400_000 // step
    for n, symbol in enumerate(_SYMBOLS):
        lines = [KLINE_HEADER]
        for i in range(count):
            t = _MONTH.start_ms + i * step
            price = 100 + n + (i % 50) / 100
            lines.append(f"{t * 1000},{price:.8f},{price + 1:.8f},{price - 1:.8f},{price:.8f},1.5,"
                         f"{(t + step - 1) * 1000},{price * 1.5:.8f},{i % 7},0.5,{price / 2:.8f},0")  # fmt: skip
        data = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1, mtime=0)
        layout.csv_file(_MONTH, symbol).write_bytes(data)
        pairs[symbol] = {"rows": count, "bytes": len(data), "members": 1, "crc_ok": True, "source": "monthly",
                         "source_sha256": "made-up", "format": CSV_FORMAT}  # fmt: skip
    write_json(layout.csv_manifest(_MONTH), {"month": str(_MONTH), "interval": _INTERVAL, "pairs": pairs})
    return layout


def warm_up(remote: str) -> float:
    """Run the lake's Parquet write and both read-backs once through the server at ``remote``; seconds taken."""
    from crypto_assets.lake.parquet import write_months
    from crypto_assets.lake.report import refresh_partials
    from crypto_assets.lake.spark import connect_session, spark_conf

    began = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="crypto-warm-up-"))
    try:
        session = connect_session(remote, spark_conf())
        layout = made_up_lake(root)
        written = write_months(lambda: session, layout, [_MONTH])
        if written[_MONTH].rows != len(_SYMBOLS) * _DAYS * 86_400_000 // INTERVAL_MS[_INTERVAL]:
            raise RuntimeError(f"warm-up wrote {written[_MONTH].rows} rows; the server is not working as expected")
        refresh_partials(lambda: session, layout, [_MONTH])
        session.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return time.perf_counter() - began


if __name__ == "__main__":
    print(f"warm-up done in {warm_up(sys.argv[1]):.1f} s", file=sys.stderr)
