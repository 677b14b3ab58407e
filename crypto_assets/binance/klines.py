"""Binance's kline CSV: its columns, its timestamp units, and counting its data lines without parsing them.

A spot kline archive holds 12 columns and no header; futures files may start with a header line. Timestamps are
milliseconds up to 2024-12-31 and microseconds from 2025-01-01 on (spot). The values themselves are parsed, typed
and checked once, by the Spark job that writes the Parquet (``crypto_assets.lake.parquet``); here we only need to
know how many candles an archive holds, to prove later that none was lost.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "trades", "taker_buy_base", "taker_buy_quote", "ignore",
)  # fmt: skip
"""The 12 fields of a Binance kline row, in file order (Binance's names shortened as the Parquet columns are)."""
KLINE_HEADER = ",".join(KLINE_COLUMNS)
# An open time at or above this is in microseconds (16 digits): ms values stay below it until the year 33658.
MICROS_FROM = 10**15
_INFLATE_BLOCK = 1 << 20
_NEWLINE_RUNS = re.compile(rb"\n{2,}")


@dataclass(frozen=True)
class MemberLines:
    """What inflating a CSV member showed: its data lines, and the CRC-32 and size of the inflated bytes."""

    data_lines: int
    crc32: int
    size: int


def count_data_lines(deflated: bytes) -> MemberLines:
    """Inflate a raw-deflate CSV member block by block and count its data lines: every line but a header line
    (one starting with a letter) and blank ones. The CRC-32 lets the caller prove the bytes are the archive's."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    lines = crc = size = 0
    previous = b"\n"  # the character before the block: a line starts after a newline
    header = False
    pending = deflated
    while chunk := inflater.decompress(pending, _INFLATE_BLOCK) or inflater.flush():
        pending = inflater.unconsumed_tail
        if size == 0 and chunk[:1].isalpha():
            header = True
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        # A line ends at a newline; a newline right after another one ends a blank line, which is not counted.
        lines += chunk.count(b"\n")
        joined = previous + chunk
        if b"\n\n" in joined:
            lines -= sum(len(run) - 1 for run in _NEWLINE_RUNS.findall(joined))
        previous = chunk[-1:]
    lines += previous != b"\n"  # a last line without its newline
    return MemberLines(lines - header, crc, size)
