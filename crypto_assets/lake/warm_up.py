"""A warm-up for a fresh Spark Connect server: the lake's own write and read-back queries on a small made-up month,
so the first real run finds the server's JIT-compiled code instead of paying for it (a cold server took 26 s for a
write that takes 5.6 s warm).

    python -m crypto_assets.lake.warm_up sc://127.0.0.1:15002 [FOLDER]

It runs in a process of its own (``spark_server.warm_up``): a Connect session turns the whole Python process into a
Connect client, which a caller that also runs local-mode Spark must not become. The server passes a FOLDER beside its
pid file: the made-up CSVs are written there once and kept for its next starts (only the Parquet is written again),
so a start neither writes nor deletes a thousand small files. Deleting many files slows the next file creations on
this folder's disk for a while (ext4 without a journal skips recently freed inodes one by one): the runs that follow
a start would pay for it.
"""

from __future__ import annotations

import gzip
import json
import random
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

# Two shapes, the two write paths of ``lake.parquet``: many small 4h files over the study's 15 months (one job,
# shuffled and sorted by month; both timestamp units) and one month of 1m candles (a job per month). Files and rows
# in these numbers are what it takes for the JIT to compile the per-file and per-row code the real runs spend their
# time in: with 2 months of 200 pairs instead, the study's first write and read-back took ~0.8 s longer (medians of
# 3-4 server starts, 4.2 against 3.4 s). The 4h shape is written three times: the JIT was still compiling after one
# pass (the study's first write and read-back after it 4.1-4.5 s, the next ones ~3.1 s; after two passes 3.5-3.7 s,
# after three 3.0-3.2 s, each pass ~2.5-3 s more of the server's start). The 1m shape stays small: a made-up 1m
# warm-up of C's size (3 months x 50 pairs x 7 days) took C's first write and read-back from ~20 to ~18 s, but left
# the server ~50 MB larger, which C's run cannot afford under 1 GB.
_SHAPES = (  # (interval, months, symbols, days, passes)
    ("4h", tuple(Month(2024, 10).shifted(n) for n in range(15)), tuple(f"WARM{n:03d}USDT" for n in range(60)), 31, 3),
    ("1m", (Month(2025, 1),), ("WARMAUSDT", "WARMBUSDT"), 3, 1),
)
_STAMP = "made_up.json"
_VALUES = 2  # the made-up values' version: a kept lake of another version is made again
_PERIOD = 1440  # distinct made-up candles per file, repeated past that


def made_up_lake(root: Path, interval: str, months: tuple[Month, ...], symbols: tuple[str, ...], days: int
                 ) -> Layout:  # fmt: skip
    """A lake with ``days`` days of normalized CSVs per month for ``symbols`` (Binance's rows: ms before 2025, µs
    from 2025 on; made-up values shaped like real ones, the same every time)."""
    layout = Layout.at(root, interval)
    step = INTERVAL_MS[interval]
    for month in months:
        layout.csv_dir(month).mkdir(parents=True)
        pairs, count = {}, min(days * 86_400_000, month.end_ms - month.start_ms) // step
        unit = 1000 if month.year >= 2025 else 1  # Binance's spot archives: µs from 2025 on
        for symbol in symbols:
            values = _made_up_values(random.Random(f"{month} {symbol}"), min(count, _PERIOD))
            lines = [KLINE_HEADER]
            for i in range(count):
                t = month.start_ms + i * step
                prices, amounts = values[i % len(values)]
                lines.append(f"{t * unit},{prices},{(t + step) * unit - 1},{amounts}")
            data = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1, mtime=0)
            layout.csv_file(month, symbol).write_bytes(data)
            pairs[symbol] = {"rows": count, "bytes": len(data), "members": 1, "crc_ok": True, "source": "monthly",
                             "source_sha256": "made-up", "format": CSV_FORMAT}  # fmt: skip
        write_json(layout.csv_manifest(month), {"month": str(month), "interval": interval, "pairs": pairs})
    return layout


def _made_up_values(rnd: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` candles' fields around close_time ("open,high,low,close,volume" and "quote_volume,trades,
    taker_buy_base,taker_buy_quote,ignore") as Binance writes them: a random walk from a price anywhere between 1e-4
    and 1e4, volumes over several magnitudes, 8 decimals. The JIT compiles the number parsing for the digits it has
    seen: after a made-up 1m lake of C's size, C's first write and read-back took ~17 s with these values against
    ~19 s with a steady price (one start each); the study's after the 4h shape alone, 3.9-4.2 s against 4.1-4.5 s."""
    price, values = 10 ** rnd.uniform(-4, 4), []
    for _ in range(count):
        open_, price = price, price * (1 + rnd.gauss(0, 0.002))
        high, low = max(open_, price) * (1 + rnd.random() / 500), min(open_, price) * (1 - rnd.random() / 500)
        volume = rnd.lognormvariate(5, 2)
        values.append((f"{open_:.8f},{high:.8f},{low:.8f},{price:.8f},{volume:.8f}",
                       f"{volume * price:.8f},{rnd.randint(0, 500)},{volume / 2:.8f},{volume * price / 2:.8f},0"))
    return values


def kept_made_up_lake(root: Path, interval: str, months: tuple[Month, ...], symbols: tuple[str, ...], days: int
                      ) -> Layout:  # fmt: skip
    """``made_up_lake`` at ``root``, reusing the CSVs a previous warm-up left there when they have the same shape;
    whatever else is there (the previous Parquet and reports) is removed, so the warm-up writes it again."""
    shape = json.dumps([_VALUES, interval, [str(m) for m in months], list(symbols), days])
    stamp = root / _STAMP
    if stamp.is_file() and stamp.read_text() == shape:
        for path in root.iterdir():
            if path.name not in ("csv", _STAMP):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        return Layout.at(root, interval)
    shutil.rmtree(root, ignore_errors=True)
    layout = made_up_lake(root, interval, months, symbols, days)
    stamp.write_text(shape)
    return layout


def warm_up(remote: str, folder: Path | None = None) -> float:
    """Run the lake's Parquet writes and read-backs once per shape through the server at ``remote``; seconds.
    ``folder``: where the made-up CSVs are kept between warm-ups (default: a temporary folder, removed after)."""
    from crypto_assets.lake.parquet import write_months
    from crypto_assets.lake.report import refresh_partials
    from crypto_assets.lake.spark import connect_session, spark_conf

    began = time.perf_counter()
    root = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="crypto-warm-up-"))
    done = False
    try:
        session = connect_session(remote, spark_conf())
        for n, (interval, months, symbols, days, passes) in enumerate(_SHAPES):
            for _ in range(passes):
                layout = kept_made_up_lake(root / str(n), interval, months, symbols, days)
                written = write_months(lambda: session, layout, months)
                expected = sum(p["rows"] for m in months for p in read_json(layout.csv_manifest(m))["pairs"].values())
                if sum(w.rows for w in written.values()) != expected:
                    raise RuntimeError(f"warm-up wrote {sum(w.rows for w in written.values())} of {expected} rows; "
                                       "the server is not working as expected")  # fmt: skip
                refresh_partials(lambda: session, layout, list(months))
        session.stop()
        done = True
    finally:
        if folder is None or not done:  # a kept lake that failed may be what failed: the next start makes it again
            shutil.rmtree(root, ignore_errors=True)
    return time.perf_counter() - began


if __name__ == "__main__":
    kept = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    print(f"warm-up done in {warm_up(sys.argv[1], kept):.1f} s", file=sys.stderr)
