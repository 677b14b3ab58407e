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

from crypto_assets.months import MS_PER_DAY

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


def format_utc(ms: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` of an epoch-millisecond instant, in UTC, without the machine's time zone."""
    y, m, d = _civil_from_days(ms // MS_PER_DAY)
    seconds = ms % MS_PER_DAY // 1000
    return f"{y:04d}-{m:02d}-{d:02d} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _civil_from_days(z: int) -> tuple[int, int, int]:
    # Howard Hinnant's days->civil algorithm: exact for the proleptic Gregorian calendar, no tz involved.
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d
