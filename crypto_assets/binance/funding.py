"""Binance's funding-rate CSV (``BTCUSDT-fundingRate-2025-01.csv`` inside its monthly archive), parsed and checked.

A file lists one perpetual's settlements of one month behind the header ``calc_time,funding_interval_hours,
last_funding_rate``: ``calc_time`` in milliseconds at the settlement instant (00:00, 08:00, 16:00 UTC at 8 h) or a few
ms after it, the interval in hours (8 for most contracts, 4 for many, 1 for some new listings; it can change within a
month) and the rate as a decimal (``0.00010000``, ``-0.00002315``). Each row becomes a ``FundingRow`` whose
``funding_time`` is the settlement instant: ``calc_time`` rounded to the nearest hour.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from crypto_assets.binance.archives import open_member

FUNDING_HEADER = "calc_time,funding_interval_hours,last_funding_rate"
HOUR_MS = 3_600_000
# A calc_time further than this from its hour is not a settlement's (a wrong unit, or not Binance's file).
MAX_CALC_DELAY_MS = 5 * 60_000
# Millisecond stamps of 2001-09-09 .. 2286-11-20 have 13 digits: seconds (10) and microseconds (16) do not.
_MS_RANGE = (10**12, 10**13)


class FundingFormatError(ValueError):
    """A funding CSV that is not what Binance publishes; the message names the file, the line and what was
    expected."""


class FundingRow(NamedTuple):
    """One settlement. A named tuple, not a frozen dataclass: a 600-contract lake parses ~900,000 of them, and a
    frozen dataclass's constructor costs four times a tuple's."""

    funding_time: int  # the settlement instant, epoch ms UTC: calc_time rounded to the nearest hour
    calc_time: int  # epoch ms UTC, as published
    interval_hours: int  # the contract's funding interval at this settlement
    rate: float  # the funding rate paid at this settlement (0.0001 = 0.01%)


def settlement_time(calc_time: int) -> int:
    """The settlement instant of a ``calc_time`` (epoch ms): rounded to the nearest hour, half an hour up."""
    return (calc_time + HOUR_MS // 2) // HOUR_MS * HOUR_MS


def parse_funding_row(line: str, file: str, line_number: int) -> FundingRow:
    """One data line of a funding CSV; FundingFormatError naming ``file`` and ``line_number`` when it is not
    ``calc_time (ms, on the hour give or take MAX_CALC_DELAY_MS),interval hours (dividing a day),rate (a decimal)``.
    Whether the settlements keep to their interval's cadence is a question about the month, not about a row.

    A line that passes every check is read in one go; any other is read again check by check, for the message."""
    fields = line.split(",")
    if len(fields) == 3:
        calc_text, hours_text, rate_text = fields[0].strip(), fields[1].strip(), fields[2].strip()
        if calc_text.isascii() and calc_text.isdigit() and hours_text.isascii() and hours_text.isdigit():
            calc_time, hours = int(calc_text), int(hours_text)
            if _MS_RANGE[0] <= calc_time < _MS_RANGE[1] and hours and not 24 % hours:
                try:
                    rate = float(rate_text)
                except ValueError:
                    rate = math.nan
                funding_time = settlement_time(calc_time)
                if math.isfinite(rate) and abs(calc_time - funding_time) <= MAX_CALC_DELAY_MS:
                    return FundingRow(funding_time, calc_time, hours, rate)
    return _checked_row(line, file, line_number)


def _checked_row(line: str, file: str, line_number: int) -> FundingRow:
    """``parse_funding_row`` check by check: the FundingFormatError naming what is wrong first."""

    def bad(what: str) -> FundingFormatError:
        return FundingFormatError(
            f"{file} line {line_number}: {what} in {line[:120]!r}; expected "
            "'calc_time (epoch ms),funding_interval_hours (whole hours: 8, 4, 1),last_funding_rate (a decimal)'"
        )

    fields = line.split(",")
    if len(fields) != 3:
        raise bad(f"{len(fields)} fields")
    calc_text, hours_text, rate_text = (f.strip() for f in fields)
    if not (calc_text.isascii() and calc_text.isdigit()) or not _MS_RANGE[0] <= int(calc_text) < _MS_RANGE[1]:
        raise bad(f"calc_time {calc_text!r} is not a time in milliseconds (13 digits)")
    if not (hours_text.isascii() and hours_text.isdigit()) or int(hours_text) == 0 or 24 % int(hours_text):
        raise bad(f"funding_interval_hours {hours_text!r} is not a whole number of hours dividing a day")
    try:
        rate = float(rate_text)
    except ValueError:
        raise bad(f"last_funding_rate {rate_text!r} is not a number") from None
    if not math.isfinite(rate):
        raise bad(f"last_funding_rate {rate_text!r} is not a finite number")
    calc_time, hours = int(calc_text), int(hours_text)
    funding_time = settlement_time(calc_time)
    if abs(calc_time - funding_time) > MAX_CALC_DELAY_MS:
        raise bad(f"calc_time {calc_time} is {abs(calc_time - funding_time) / 60_000:.1f} min from the nearest hour")
    return FundingRow(funding_time, calc_time, hours, rate)


def parse_funding_csv(data: bytes | str, file: str) -> list[FundingRow]:
    """Every row of a funding CSV, in file order. The header line is Binance's (or absent); blank lines and CRLF
    are allowed. FundingFormatError, naming ``file`` and the line, for anything else, and when no row is left."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    rows = []
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if number == 1 and not line[:1].isdigit():
            if line != FUNDING_HEADER:
                raise FundingFormatError(f"{file} line 1: header {line[:120]!r}; expected {FUNDING_HEADER!r}")
            continue
        rows.append(parse_funding_row(line, file, number))
    if not rows:
        raise FundingFormatError(f"{file} holds no funding rows; expected at least one settlement")
    return rows


def read_funding_archive(zip_path: Path, name: str | None = None) -> list[FundingRow]:
    """The rows of the CSV inside a funding archive (``BTCUSDT-fundingRate-2025-01.zip``), after the same guards
    as a kline archive's (one member named like the zip, no bomb); ``name`` is its Binance name when the file on disk
    is named otherwise."""
    name = name or zip_path.name
    archive, stream = open_member(zip_path, name)
    with archive, stream:
        data = stream.read()
    return parse_funding_csv(data, name.removesuffix(".zip") + ".csv")
