"""Binance's kline CSV: its columns, its timestamp units and its header line.

A spot kline archive holds 12 columns and no header. Futures archives start with a header line from 2022 on (older
ones have none, so it is sniffed), and a COIN-M file's volumes mean something else (``kline_columns``). Timestamps
are milliseconds, except spot's from 2025-01-01 on: microseconds. The values themselves are parsed, typed and
checked once, by the Spark job that writes the Parquet (``crypto_assets.lake.parquet``); how many candles an
archive holds is counted when it is verified (``archives.verify_zip``), to prove later that none was lost.
"""

from __future__ import annotations

from pathlib import Path

from crypto_assets.binance.archives import ArchiveError, MarketType, open_member

KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "trades", "taker_buy_base", "taker_buy_quote", "ignore",
)  # fmt: skip
"""The 12 fields of a Binance kline row, in file order (Binance's names shortened as the Parquet columns are)."""
KLINE_HEADER = ",".join(KLINE_COLUMNS)
CM_KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "base_volume", "trades", "taker_buy_volume", "taker_buy_base_volume", "ignore",
)  # fmt: skip
"""What the 12 fields of a COIN-M kline row hold (Binance's README): ``volume`` and ``taker_buy_volume`` in whole
contracts (100 USD for BTC, 10 USD for the others), the 8th and 11th fields in the base asset, whatever the file's
header says (``quote_volume``, ``taker_buy_quote_volume``)."""
FUTURES_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)
"""The header line of futures kline CSVs from 2022 on, for USD-M and COIN-M alike."""
# An open time at or above this is in microseconds (16 digits): ms values stay below it until the year 33658.
MICROS_FROM = 10**15


def kline_columns(market: MarketType) -> tuple[str, ...]:
    """What the 12 fields of ``market``'s kline rows hold, named as the Parquet columns: spot's and USD-M's are
    ``KLINE_COLUMNS``; COIN-M's ``CM_KLINE_COLUMNS``."""
    return CM_KLINE_COLUMNS if MarketType(market) is MarketType.CM else KLINE_COLUMNS


def is_header_line(first_line: bytes, name: str) -> bool:
    """Whether a kline CSV's first line is the futures header (futures files from 2022 on) rather than a kline row
    (spot, and futures before 2022), judged from its first character. ArchiveError naming ``name`` when it is a
    header other than FUTURES_HEADER, or neither."""
    line = first_line.split(b"\n", 1)[0].rstrip(b"\r").removeprefix(b"\xef\xbb\xbf")
    if line[:1].isdigit():
        return False
    if line.decode("ascii", "replace") == FUTURES_HEADER:
        return True
    raise ArchiveError(
        f"{name}: first line {line[:120].decode('ascii', 'replace')!r} is neither a kline row nor Binance's futures "
        f"header; expected a row starting with an open time, or {FUTURES_HEADER!r}"
    )


def archive_has_header(zip_path: Path, name: str | None = None) -> bool:
    """Sniff the first line of the CSV inside a kline archive (see ``is_header_line``); ``name`` is the archive's
    Binance name when the file on disk is named otherwise."""
    name = name or zip_path.name
    archive, stream = open_member(zip_path, name)
    with archive, stream:
        return is_header_line(stream.readline(4096), name)
