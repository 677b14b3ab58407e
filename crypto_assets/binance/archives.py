"""Binance archive names and URLs, CHECKSUM files, and safe reading of the one CSV inside an archive zip.

Three markets publish klines, each under its own folder of the data host: spot (``data/spot``), USD-M futures
(``data/futures/um``) and COIN-M futures (``data/futures/cm``); the futures also publish monthly funding-rate
archives (``data/futures/{um,cm}/monthly/fundingRate/``).
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

FUNDING_RATE = "fundingRate"  # a funding archive's dataset folder, and where a kline archive's name has its interval
# The largest CSV member we accept: a 1s month is ~2.7M rows of ~120 bytes (~330 MB); anything far beyond is a bomb.
MAX_MEMBER_BYTES = 1 << 30
_CHECKSUM_RE = re.compile(r"^([0-9a-f]{64}) [ *]?(\S+)\s*$")
_NEWLINE_RUNS = re.compile(rb"\n{2,}")


class ArchiveError(ValueError):
    """An archive or its CHECKSUM is not what Binance publishes; the message names the file."""


class MarketType(StrEnum):
    """Binance's kline markets, as ``CRYPTO_MARKETS`` names them: ``spot``; ``um``, USD-M futures (contracts quoted
    and margined in USDT or USDC); ``cm``, COIN-M futures (quoted in USD, margined in the coin, traded in contracts)."""

    SPOT = "spot"
    UM = "um"
    CM = "cm"

    @classmethod
    def named(cls, name: str) -> MarketType:
        """The market called ``name``; ValueError naming the allowed names otherwise."""
        try:
            return cls(name.strip().lower())
        except ValueError:
            raise ValueError(f"market {name!r} is unknown; expected one of {', '.join(m.value for m in cls)}") from None

    @property
    def is_futures(self) -> bool:
        return self is not MarketType.SPOT

    @property
    def data_path(self) -> str:
        """The market's folder below the data host: ``data/spot``, ``data/futures/um`` or ``data/futures/cm``."""
        return "data/spot" if self is MarketType.SPOT else f"data/futures/{self.value}"


def archive_name(symbol: str, interval: str, period: str) -> str:
    """``BTCUSDT-4h-2025-01.zip`` (monthly, period YYYY-MM) or ``BTCUSDT-4h-2025-01-31.zip`` (daily)."""
    return f"{symbol}-{interval}-{period}.zip"


def archive_path(symbol: str, interval: str, period: str, market: MarketType = MarketType.SPOT) -> str:
    """Path of a kline archive below the data host, e.g. ``data/spot/monthly/klines/BTCUSDT/4h/BTCUSDT-4h-2025-01.zip``
    or ``data/futures/cm/daily/klines/BTCUSD_PERP/1h/BTCUSD_PERP-1h-2025-01-31.zip``."""
    frequency = "monthly" if len(period) == 7 else "daily"
    name = archive_name(symbol, interval, period)
    return f"{MarketType(market).data_path}/{frequency}/klines/{symbol}/{interval}/{name}"


def monthly_prefix(symbol: str | None = None, interval: str | None = None,
                   market: MarketType = MarketType.SPOT) -> str:  # fmt: skip
    """Listing prefix of a market's monthly kline folders: all symbols, one symbol, or one symbol's interval."""
    parts = [f"{MarketType(market).data_path}/monthly/klines/"]
    if symbol:
        parts.append(f"{symbol}/")
        if interval:
            parts.append(f"{interval}/")
    return "".join(parts)


def funding_archive_name(symbol: str, month: str) -> str:
    """``BTCUSDT-fundingRate-2025-01.zip``: one contract's funding rates of one month."""
    return archive_name(symbol, FUNDING_RATE, month)


def funding_prefix(market: MarketType, symbol: str | None = None) -> str:
    """Listing prefix of a futures market's funding folders (one per perpetual ever listed), or of one contract's."""
    market = MarketType(market)
    if not market.is_futures:
        raise ValueError(f"funding rates: market {market.value!r} has none; expected um or cm")
    return f"{market.data_path}/monthly/{FUNDING_RATE}/" + (f"{symbol}/" if symbol else "")


def funding_archive_path(symbol: str, month: str, market: MarketType) -> str:
    """``data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2025-01.zip``.

    Binance publishes funding rates monthly only, once the month has ended (there is no daily funding archive): a
    daily ``month`` raises ValueError, as does spot."""
    if len(month) != 7:
        raise ValueError(f"funding archive of {symbol} for {month!r}: Binance publishes funding rates monthly only; "
                         "expected a month YYYY-MM")  # fmt: skip
    return funding_prefix(market, symbol) + funding_archive_name(symbol, month)


def parse_checksum(text: str, expected_name: str) -> str:
    """The sha256 of a ``<64 hex>  <name>`` CHECKSUM body, checking that it is about ``expected_name``."""
    match = _CHECKSUM_RE.match(text.strip())
    if not match:
        raise ArchiveError(f"CHECKSUM of {expected_name} reads {text[:100]!r}; expected '<64 hex digits>  <name>'")
    if match.group(2) != expected_name:
        raise ArchiveError(f"CHECKSUM of {expected_name} names {match.group(2)!r}; expected {expected_name!r}")
    return match.group(1)


def _unreadable(name: str, exc: Exception) -> ArchiveError:
    return ArchiveError(f"{name} is not a readable zip ({exc}); expected a Binance archive")


def open_member(zip_path: Path | BinaryIO, name: str | None = None) -> tuple[zipfile.ZipFile, BinaryIO]:
    """Open the single CSV inside a Binance archive, refusing anything else (extra members, odd names, bombs).

    ``name`` is the archive's Binance name when the file on disk is named otherwise (a temporary download); it is
    required when ``zip_path`` is the archive's bytes in an open binary stream.
    Returns the open ZipFile (close it when done) and a binary stream of the member.
    """
    name = name or zip_path.name
    expected = name.removesuffix(".zip") + ".csv"
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _unreadable(name, exc) from None
    try:
        members = archive.infolist()
        names = [m.filename for m in members]
        if names != [expected]:
            raise ArchiveError(f"{name} holds {names}; expected exactly one member named {expected!r}")
        member = members[0]
        if member.file_size > MAX_MEMBER_BYTES or member.file_size > 400 * max(member.compress_size, 1):
            raise ArchiveError(
                f"{name}: member {expected} claims {member.file_size} bytes from {member.compress_size} "
                f"compressed; expected at most {MAX_MEMBER_BYTES} bytes and a plausible compression ratio"
            )
        return archive, archive.open(member)
    except Exception:
        archive.close()
        raise


@dataclass(frozen=True)
class DeflatedMember:
    """The compressed bytes of an archive's CSV member as stored in the zip (raw deflate), with the zip's own CRC-32
    and size of the inflated CSV: enough to re-wrap it as a gzip member without inflating it. ``sha256`` is the
    digest of the whole archive file the member was read from (what its CHECKSUM names)."""

    data: bytes | memoryview
    crc32: int
    size: int
    sha256: str


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_READ_PIECE = 64 << 10  # compressed bytes read at a time when inflating from the file
_INFLATE_BLOCK = 256 << 10  # inflated bytes at most per step: what a verifying thread holds at once


def _deflated_member(zip_path: Path | BinaryIO, name: str) -> zipfile.ZipInfo:
    """The single CSV member's directory entry after ``open_member``'s checks; it must be deflate-compressed."""
    archive, stream = open_member(zip_path, name)
    with archive, stream:
        member = archive.infolist()[0]
    if member.compress_type != zipfile.ZIP_DEFLATED:
        raise ArchiveError(f"{name}: member {member.filename} is stored with method {member.compress_type}; "
                           "expected deflate (8), as Binance publishes")  # fmt: skip
    return member


def _data_start(member: zipfile.ZipInfo, header: bytes, name: str) -> int:
    """Where the member's compressed bytes start, from its local file header (``header``: the bytes there)."""
    fields = _LOCAL_HEADER.unpack(header) if len(header) == _LOCAL_HEADER.size else None
    if fields is None or fields[0] != b"PK\x03\x04":
        raise ArchiveError(f"{name}: no local file header at offset {member.header_offset}; the zip is damaged")
    return member.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]  # past the name and extra field


def _cut_short(name: str, member: zipfile.ZipInfo, got: int) -> ArchiveError:
    return ArchiveError(f"{name}: member {member.filename} is cut short ({got} of {member.compress_size} "
                        "compressed bytes); download it again")  # fmt: skip


def read_deflated_member(zip_path: Path, name: str | None = None) -> DeflatedMember:
    """The archive's single CSV member, still compressed, after the same checks as ``open_member``; the file is read
    once, and hashed on the way.

    Raises ArchiveError when the member is not deflate-compressed or its local header does not match the zip's
    directory (a damaged archive)."""
    name = name or zip_path.name
    try:
        whole = zip_path.read_bytes()
    except OSError as exc:
        raise _unreadable(name, exc) from None
    member = _deflated_member(io.BytesIO(whole), name)
    start = _data_start(member, whole[member.header_offset : member.header_offset + _LOCAL_HEADER.size], name)
    data = memoryview(whole)[start : start + member.compress_size]  # no copy of the member's bytes
    if len(data) != member.compress_size:
        raise _cut_short(name, member, len(data))
    return DeflatedMember(data, member.CRC, member.file_size, hashlib.sha256(whole).hexdigest())


def verify_zip(zip_path: Path | bytes, name: str | None = None) -> MemberLines:
    """Inflate the archive's member once, streamed from the file (or from the archive's bytes, ``name`` required):
    it must inflate completely to the CRC-32 and size the zip records and hold at least one line. Returns its data
    lines (``count_data_lines``), so that no later step inflates it again; raises ArchiveError naming the archive
    otherwise."""
    if isinstance(zip_path, bytes):
        f = io.BytesIO(zip_path)
    else:
        name = name or zip_path.name
        try:
            f = open(zip_path, "rb")
        except OSError as exc:
            raise _unreadable(name, exc) from None
    with f:
        member = _deflated_member(f, name)
        f.seek(member.header_offset)
        f.seek(_data_start(member, f.read(_LOCAL_HEADER.size), name))

        def pieces():
            left = member.compress_size
            while left > 0:
                piece = f.read(min(left, _READ_PIECE))
                if not piece:
                    raise _cut_short(name, member, member.compress_size - left)
                left -= len(piece)
                yield piece

        try:
            lines = count_data_lines(pieces())
        except zlib.error as exc:
            raise ArchiveError(f"{name} is corrupt ({exc}); expected a readable Binance archive") from None
    if (lines.crc32, lines.size) != (member.CRC, member.file_size):
        raise ArchiveError(f"{name} is corrupt: its member inflates to {lines.size} bytes with CRC-32 "
                           f"{lines.crc32:08x}, the zip records {member.file_size} bytes with {member.CRC:08x}; "
                           "expected a readable Binance archive")  # fmt: skip
    if lines.size == 0:  # Binance publishes an archive only for a period with candles
        raise ArchiveError(f"{name} holds an empty CSV; expected at least one kline row")
    return lines


@dataclass(frozen=True)
class MemberLines:
    """What inflating a CSV member showed: its data lines, and the CRC-32 and size of the inflated bytes."""

    data_lines: int
    crc32: int
    size: int


def count_data_lines(deflated: bytes | memoryview | Iterable[bytes]) -> MemberLines:
    """Inflate a raw-deflate CSV member (its bytes, or its bytes piece by piece) block by block and count its data
    lines: every line but a header line (one starting with a letter) and blank ones. The CRC-32 lets the caller
    prove the bytes are the archive's."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    lines = crc = size = 0
    previous = b"\n"  # the character before the block: a line starts after a newline
    header = False

    def count(chunk: bytes) -> None:
        nonlocal lines, crc, size, previous, header
        if not chunk:
            return
        if size == 0 and chunk[:1].isalpha():
            header = True
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        # A line ends at a newline; a newline right after another one ends a blank line, which is not counted.
        lines += chunk.count(b"\n")
        if b"\n\n" in chunk or (previous == b"\n" and chunk[:1] == b"\n"):
            lines -= sum(len(run) - 1 for run in _NEWLINE_RUNS.findall(previous + chunk))
        previous = chunk[-1:]

    for piece in (deflated,) if isinstance(deflated, (bytes, bytearray, memoryview)) else deflated:
        pending = piece
        while pending:
            count(inflater.decompress(pending, _INFLATE_BLOCK))
            pending = inflater.unconsumed_tail
    while chunk := inflater.flush():
        count(chunk)
    lines += previous != b"\n"  # a last line without its newline
    return MemberLines(lines - header, crc, size)
