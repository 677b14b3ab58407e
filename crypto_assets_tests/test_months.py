"""Months and the candle grid, in UTC: partition keys, month arithmetic across the year boundary, and which candles
a month holds for every interval. Expected values are literal epoch milliseconds (the date is in the comment)."""

from __future__ import annotations

from datetime import date

import pytest

from crypto_assets.months import Month, candle_open_times, day_start_ms, month_range

JAN_2025 = 1_735_689_600_000  # 2025-01-01 00:00 UTC: the first candle Binance writes in microseconds
H4 = 14_400_000


# ---- Month: the partition key --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, month", [("2025-01", Month(2025, 1)), ("2024-12", Month(2024, 12)),
                                         (" 2025-07 ", Month(2025, 7))])  # fmt: skip
def test_a_month_is_written_yyyy_mm(text, month):
    assert Month.parse(text) == month and str(month) == text.strip()


@pytest.mark.parametrize("text", ["2025-13", "2025-00", "2025-1", "25-01", "2025/01", "2025-01-01", "", "Jan 2025"])
def test_anything_else_is_refused_naming_the_text_and_the_form(text):
    with pytest.raises(ValueError) as error:
        Month.parse(text)
    assert str(error.value) == f"month {text!r} is not of the form YYYY-MM (e.g. 2025-01)"


def test_a_month_that_is_not_text_is_refused():
    with pytest.raises(ValueError, match="month 202501 is not of the form YYYY-MM"):
        Month.parse(202501)


def test_months_order_by_year_then_month():
    assert Month(2024, 12) < Month(2025, 1) < Month(2025, 2)
    assert sorted([Month(2025, 2), Month(2024, 12), Month(2025, 1)]) == [Month(2024, 12), Month(2025, 1),
                                                                        Month(2025, 2)]  # fmt: skip


@pytest.mark.parametrize("month, following", [("2025-01", "2025-02"), ("2025-11", "2025-12"), ("2024-12", "2025-01")])
def test_next_and_previous_step_one_month_across_the_year_boundary(month, following):
    assert Month.parse(month).next() == Month.parse(following)
    assert Month.parse(following).previous() == Month.parse(month)


def test_the_month_of_a_day():
    assert Month.of(date(2025, 3, 31)) == Month(2025, 3) and Month.of(date(2025, 1, 1)) == Month(2025, 1)


def test_a_range_holds_both_ends_and_every_month_between():
    assert month_range(Month(2024, 11), Month(2025, 2)) == [Month(2024, 11), Month(2024, 12), Month(2025, 1),
                                                            Month(2025, 2)]  # fmt: skip
    assert month_range(Month(2025, 3), Month(2025, 3)) == [Month(2025, 3)]


def test_a_range_that_ends_before_it_starts_is_empty():
    assert month_range(Month(2025, 3), Month(2025, 2)) == []


def test_a_month_spans_from_its_first_millisecond_to_the_next_months_first():
    december = Month(2024, 12)
    assert (december.start_ms, december.end_ms) == (1_733_011_200_000, JAN_2025)  # 2024-12-01, 2025-01-01
    assert Month(2025, 1).start_ms == december.end_ms


def test_a_day_starts_at_a_whole_number_of_days_since_the_epoch():
    assert day_start_ms(date(1970, 1, 1)) == 0 and day_start_ms(date(1970, 1, 5)) == 345_600_000
    assert day_start_ms(date(2025, 1, 1)) == JAN_2025


# ---- the candle grid -----------------------------------------------------------------------------------------------


def test_4h_candles_run_on_across_the_new_year():
    # [2024-12-31 20:00, 2025-01-01 08:00): 20:00, 00:00 and 04:00
    start, end = JAN_2025 - H4, JAN_2025 + 2 * H4
    assert list(candle_open_times("4h", start, end)) == [1_735_675_200_000, JAN_2025, 1_735_704_000_000]


def test_a_window_that_starts_off_the_grid_begins_at_the_next_candle():
    # [2025-01-01 01:00, 09:00): the 04:00 and 08:00 candles
    assert list(candle_open_times("4h", JAN_2025 + 3_600_000, JAN_2025 + 9 * 3_600_000)) == [
        1_735_704_000_000, 1_735_718_400_000]  # fmt: skip


def test_the_window_end_is_exclusive():
    assert list(candle_open_times("1d", JAN_2025, JAN_2025 + 86_400_000)) == [JAN_2025]
    assert list(candle_open_times("1d", JAN_2025, JAN_2025)) == []


# March 2025: 31 days, five Mondays (the 3rd, 10th, 17th, 24th and 31st).
MARCH_START, MARCH_END = 1_740_787_200_000, 1_743_465_600_000  # 2025-03-01, 2025-04-01


@pytest.mark.parametrize(
    "interval, candles, first, last",
    [
        ("1s", 31 * 86_400, MARCH_START, MARCH_END - 1_000),
        ("1m", 31 * 1_440, MARCH_START, MARCH_END - 60_000),
        ("1h", 31 * 24, MARCH_START, MARCH_END - 3_600_000),
        ("4h", 31 * 6, MARCH_START, MARCH_END - H4),
        ("1d", 31, MARCH_START, 1_743_379_200_000),  # 2025-03-31
        ("1w", 5, 1_740_960_000_000, 1_743_379_200_000),  # Monday 2025-03-03 .. Monday 2025-03-31
        ("1mo", 1, MARCH_START, MARCH_START),
    ],
)
def test_march_2025_holds_these_candles(interval, candles, first, last):
    times = list(candle_open_times(interval, MARCH_START, MARCH_END))
    assert (len(times), times[0], times[-1]) == (candles, first, last)


def test_weekly_candles_open_on_mondays():
    assert list(candle_open_times("1w", MARCH_START, 1_741_651_200_000)) == [  # until Tuesday 2025-03-11
        1_740_960_000_000, 1_741_564_800_000]  # Mondays 2025-03-03 and 2025-03-10  # fmt: skip


def test_monthly_candles_open_on_the_first_of_each_month():
    # [2024-11-15, 2025-02-01): December and January; November opened before the window, February at its end
    assert candle_open_times("1mo", 1_731_628_800_000, 1_738_368_000_000) == [1_733_011_200_000, JAN_2025]


