"""The normalized CSV layer: one gzip CSV per pair and month, made from the verified archives without recompressing.

A Binance archive is a zip whose one member is raw deflate data. A gzip file is the same deflate data between a
10-byte header and a trailer holding the CRC-32 and size the zip already records. So each pair's month becomes
``csv/{market}/{interval}/{YYYY-MM}/{SYMBOL}.csv.gz``: a gzip member holding the header line (the columns' names
for the market, see ``binance.klines.kline_columns``), then each source archive's
member copied as it is (one for a monthly archive, one per day for daily ones), which gzip readers (Spark's
included) read as one CSV. That costs a copy of the compressed bytes instead of inflating, re-writing and
re-compressing every row, and the layer takes the zips' size on disk. Each member was inflated once, when its
archive was verified after the download, to check its CRC-32 and size against the zip's and to count its data lines
(the raw manifest records the count): the count is what parquet_candles must account for, row by row. Here the
archive file is hashed again, and its count is used only when the bytes are the ones verified (same sha256); an
archive recorded without a count (a manifest from before counts were kept) is inflated and checked here instead.
Futures archives from 2022 on start with Binance's own header line, which stays in its member: it is not counted,
and parquet_candles skips it.

A pair's file is rebuilt only when its source archives changed (their sha256 differs from the one recorded in the
CSV manifest); files of pairs that no longer have data that month are removed, so the folder mirrors the month.
"""

from __future__ import annotations

import gzip
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from crypto_assets.binance.archives import ArchiveError, MarketType, count_data_lines, read_deflated_member
from crypto_assets.binance.klines import kline_columns
from crypto_assets.files import replacing
from crypto_assets.lake.leftovers import remove_dead_temp_files
from crypto_assets.lake.manifest import read_json, write_json
from crypto_assets.lake.raw import OK, PairMonth, read_manifest
from crypto_assets.layout import CSV_SUFFIX, MANIFEST, Layout
from crypto_assets.months import Month

# Bump when the files' shape changes: entries of another format are rebuilt from the archives on disk.
CSV_FORMAT = "gzip-members-1"
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0, OS unknown
_HEADER_MEMBERS = {
    m: gzip.compress(f"{','.join(kline_columns(m))}\n".encode(), compresslevel=9, mtime=0) for m in MarketType
}
# zlib and hashlib release the GIL on large buffers: a few threads keep two cores busy while members are inflated
# (archives recorded without a count) or large archives hashed. Small counted archives go faster in one thread: what
# is left per file is Python and the file's creation, which threads only contend for (A's 8,861 4h archives: 3.3 s
# in one thread, 4.1-4.3 s in 2 or 4).
WORKERS = 4
_THREADED_FROM_BYTES = 256 << 10  # average archive size from which hashing them is worth the threads


@dataclass
class NormalizeResult:
    month: Month
    rows: int
    symbols: int
    rebuilt: int
    daily_sourced: int
    bytes: int
    seconds: float
    per_symbol: dict[str, dict]
    on_disk: dict[str, int | None]  # per symbol: the CSV's size now, None when it is missing


def read_csv_manifest(layout: Layout, month: Month) -> dict[str, dict]:
    """Per symbol: ``rows`` (the archives' data lines), ``bytes``, ``members``, ``crc_ok``, ``source``,
    ``source_sha256`` and ``format``."""
    return read_json(layout.csv_manifest(month), {"pairs": {}})["pairs"]


def normalize_month(layout: Layout, month: Month) -> NormalizeResult:
    """Bring ``csv/{market}/{interval}/{month}/`` in line with the raw manifest of ``month``.

    Raises ArchiveError naming the archive when one cannot be read; files already written stay valid."""
    started = time.perf_counter()
    remove_dead_temp_files(layout.csv_dir(month))  # a killed run's half-written files
    raw = {s: e for s, e in read_manifest(layout, month).items() if e.status == OK}
    previous = read_csv_manifest(layout, month)
    pairs: dict[str, dict] = {}
    todo = []
    on_disk: dict[str, int] = {}  # sizes of the CSVs kept as they are (the rebuilt ones are sized once written)
    for symbol, entry in sorted(raw.items()):
        known = previous.get(symbol)
        current = known and known.get("format") == CSV_FORMAT and known.get("source_sha256") == entry.sha256
        if current and (size := _size(layout.csv_file(month, symbol))) is not None:
            pairs[symbol], on_disk[symbol] = known, size
        else:
            todo.append(entry)
    try:
        if _threads_pay_off(todo):
            with ThreadPoolExecutor(min(WORKERS, len(todo))) as pool:
                for entry, written in zip(todo, pool.map(lambda e: _write_pair(layout, month, e), todo)):
                    pairs[entry.symbol] = written
        else:
            for entry in todo:
                pairs[entry.symbol] = _write_pair(layout, month, entry)
    finally:
        # Record what is done even when a later pair fails, so the next run resumes instead of redoing.
        kept = {s: p for s, p in previous.items() if s in raw}
        if todo or len(kept) != len(previous) or not layout.csv_manifest(month).exists():  # else: as it is
            write_json(layout.csv_manifest(month),
                       {"month": str(month), "interval": layout.interval, "pairs": {**kept, **pairs}})  # fmt: skip
    folder = layout.csv_dir(month)
    for path in folder.iterdir() if folder.exists() else ():
        # Files of pairs gone from the month, and plain .csv files of the layer's earlier (uncompressed) format.
        stale = path.name.endswith(CSV_SUFFIX) and path.name.removesuffix(CSV_SUFFIX) not in pairs
        if stale or (path.suffix == ".csv" and path.name != MANIFEST):
            path.unlink()
    return NormalizeResult(
        month=month,
        rows=sum(p["rows"] for p in pairs.values()),
        symbols=sum(1 for p in pairs.values() if p["rows"] > 0),
        rebuilt=len(todo),
        daily_sourced=sum(1 for e in raw.values() if e.source == "daily"),
        bytes=sum(p["bytes"] for p in pairs.values()),
        seconds=round(time.perf_counter() - started, 3),
        per_symbol=pairs,
        on_disk={s: on_disk[s] if s in on_disk else _size(layout.csv_file(month, s)) for s in pairs},
    )


def _threads_pay_off(todo: list[PairMonth]) -> bool:
    """Whether ``todo`` has GIL-free work to spread over threads: members to inflate, or large archives to hash."""
    if len(todo) < 2:
        return False
    uncounted = any(f.data_lines is None for entry in todo for f in entry.files)
    return uncounted or sum(entry.bytes for entry in todo) >= len(todo) * _THREADED_FROM_BYTES


def _size(path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _write_pair(layout: Layout, month: Month, entry: PairMonth) -> dict:
    """Write the pair's ``.csv.gz`` atomically: the header member, then each archive's member re-wrapped."""
    header = _HEADER_MEMBERS[layout.market]
    rows, crc_ok, size = 0, True, len(header)
    with replacing(layout.csv_file(month, entry.symbol)) as temp, open(temp, "wb") as f:
        f.write(header)
        for file in entry.files:
            member = read_deflated_member(layout.raw_file(month, file.name), file.name)
            if file.data_lines is not None and member.sha256 == file.sha256:
                rows += file.data_lines  # counted when these very bytes were verified
            else:  # a manifest from before counts were recorded, or the file changed since: inflate it here
                try:
                    lines = count_data_lines(member.data)
                except Exception as exc:  # zlib.error and friends: the member does not inflate
                    raise ArchiveError(f"{file.name}: its CSV member does not inflate ({exc}); the archive is "
                                       f"damaged: delete {layout.raw_file(month, file.name)} and run the month again"
                                       ) from None  # fmt: skip
                crc_ok &= lines.crc32 == member.crc32 and lines.size == member.size
                rows += lines.data_lines
            f.write(_GZIP_HEADER)
            f.write(member.data)
            f.write(struct.pack("<LL", member.crc32, member.size & 0xFFFFFFFF))
            size += len(_GZIP_HEADER) + len(member.data) + 8
    return {"rows": rows, "bytes": size, "members": len(entry.files), "crc_ok": crc_ok, "source": entry.source,
            "source_sha256": entry.sha256, "format": CSV_FORMAT}  # fmt: skip
