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
from crypto_assets.lake.manifest import read_json, write_json
from crypto_assets.layout import Layout
from crypto_assets.months import INTERVAL_MS, Month

# Two shapes, the two write paths of ``lake.parquet``: many small 4h files over two months (one job, shuffled and
# sorted by month) and one month of 1m candles (a job per month). A few hundred files and ~10k rows each are what it
# takes for the JIT to compile the per-file and per-row code the real runs spend their time in.
_SHAPES = (
    ("4h", (Month(2024, 12), Month(2025, 1)), tuple(f"WARM{n:03d}USDT" for n in range(200)), 31),
    ("1m", (Month(2025, 1),), ("WARMAUSDT", "WARMBUSDT"), 3),
)


def made_up_lake(root: Path, interval: str, months: tuple[Month, ...], symbols: tuple[str, ...], days: int
                 ) -> Layout:  # fmt: skip
    """A lake with ``days`` days of normalized CSVs per month for ``symbols`` (Binance's rows: ms before 2025, µs
    from 2025 on; a steady made-up price)."""
    layout = Layout.at(root, interval)
    step = INTERVAL_MS[interval]
    for month in months:
        layout.csv_dir(month).mkdir(parents=True)
        pairs, count = {}, min(days * 86_400_000, month.end_ms - month.start_ms) // step
        unit = 1000 if month.year >= 2025 else 1  # Binance's spot archives: µs from 2025 on
        for n, symbol in enumerate(symbols):
            lines = [KLINE_HEADER]
            for i in range(count):
                t = month.start_ms + i * step
                price = 100 + n + (i % 50) / 100
                lines.append(f"{t * unit},{price:.8f},{price + 1:.8f},{price - 1:.8f},{price:.8f},1.5,"
                             f"{(t + step - 1) * unit},{price * 1.5:.8f},{i % 7},0.5,{price / 2:.8f},0")  # fmt: skip
            data = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1, mtime=0)
            layout.csv_file(month, symbol).write_bytes(data)
            pairs[symbol] = {"rows": count, "bytes": len(data), "members": 1, "crc_ok": True, "source": "monthly",
                             "source_sha256": "made-up", "format": CSV_FORMAT}  # fmt: skip
        write_json(layout.csv_manifest(month), {"month": str(month), "interval": interval, "pairs": pairs})
    return layout


def warm_up(remote: str) -> float:
    """Run the lake's Parquet writes and read-backs once per shape through the server at ``remote``; seconds."""
    from crypto_assets.lake.parquet import write_months
    from crypto_assets.lake.report import refresh_partials
    from crypto_assets.lake.spark import connect_session, spark_conf

    began = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="crypto-warm-up-"))
    try:
        session = connect_session(remote, spark_conf())
        for n, (interval, months, symbols, days) in enumerate(_SHAPES):
            layout = made_up_lake(root / str(n), interval, months, symbols, days)
            written = write_months(lambda: session, layout, months)
            expected = sum(p["rows"] for m in months for p in read_json(layout.csv_manifest(m))["pairs"].values())
            if sum(w.rows for w in written.values()) != expected:
                raise RuntimeError(f"warm-up wrote {sum(w.rows for w in written.values())} of {expected} rows; "
                                   "the server is not working as expected")  # fmt: skip
            refresh_partials(lambda: session, layout, list(months))
        session.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return time.perf_counter() - began


if __name__ == "__main__":
    print(f"warm-up done in {warm_up(sys.argv[1]):.1f} s", file=sys.stderr)
