"""Calendar months and kline intervals, in UTC, as plain values (no Dagster, no time zone of the machine)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")

MS_PER_DAY = 86_400_000

# Fixed-length intervals in milliseconds; "1mo" is calendar-based and handled separately.
INTERVAL_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": MS_PER_DAY,
    "3d": 3 * MS_PER_DAY,
    "1w": 7 * MS_PER_DAY,
}
INTERVALS: tuple[str, ...] = (*INTERVAL_MS, "1mo")
# Binance publishes daily archives only for intervals up to one day.
DAILY_INTERVALS: tuple[str, ...] = tuple(i for i in INTERVALS if i in INTERVAL_MS and INTERVAL_MS[i] <= MS_PER_DAY)
# 1970-01-01 was a Thursday; Binance's weekly candles open on Mondays 00:00 UTC.
_WEEK_ORIGIN_MS = 4 * MS_PER_DAY
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in UTC, written ``YYYY-MM`` (the partition key format)."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH_RE.match(text.strip()) if isinstance(text, str) else None
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"month {text!r} is not of the form YYYY-MM (e.g. 2025-01)")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def shifted(self, months: int) -> Month:
        """The month ``months`` later (earlier when negative)."""
        year, month = divmod(self.year * 12 + self.month - 1 + months, 12)
        return Month(year, month + 1)

    def next(self) -> Month:
        return self.shifted(1)

    def previous(self) -> Month:
        return self.shifted(-1)

    @property
    def start_ms(self) -> int:
        return day_start_ms(self.first_day)

    @property
    def end_ms(self) -> int:
        """Exclusive end: the first millisecond of the next month."""
        return self.next().start_ms


def month_range(first: Month, last: Month) -> list[Month]:
    months, current = [], first
    while current <= last:
        months.append(current)
        current = current.next()
    return months


def day_start_ms(day: date) -> int:
    return (day - date(1970, 1, 1)).days * MS_PER_DAY


def utc_today() -> date:
    return datetime.now(UTC).date()


def candle_open_times(interval: str, start_ms: int, end_ms: int) -> range | list[int]:
    """Open times (ms) of every candle of ``interval`` whose open lies in [start_ms, end_ms)."""
    if interval == "1mo":
        times, month = [], Month.of(date(1970, 1, 1) + timedelta(days=start_ms // MS_PER_DAY))
        while month.start_ms < end_ms:
            if month.start_ms >= start_ms:
                times.append(month.start_ms)
            month = month.next()
        return times
    step = INTERVAL_MS[interval]
    origin = _WEEK_ORIGIN_MS if interval == "1w" else 0
    first = start_ms + (-(start_ms - origin)) % step
    return range(first, end_ms, step)


def format_utc(ms: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` of an epoch-millisecond instant in UTC (naive arithmetic: no time zone involved)."""
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%d %H:%M:%S")
