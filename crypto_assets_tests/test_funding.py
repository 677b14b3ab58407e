"""Funding-rate CSVs: a row's settlement instant is its calc_time rounded to the hour, intervals may change within a
month, bad input is refused naming file and line; a real download from the stand-in parses to its ground truth."""

from __future__ import annotations

import pytest

from crypto_assets.binance.archives import MarketType, funding_archive_name, funding_archive_path
from crypto_assets.binance.client import BinanceClient
from crypto_assets.binance.funding import (
    FUNDING_HEADER,
    FundingFormatError,
    FundingRow,
    parse_funding_csv,
    parse_funding_row,
    read_funding_archive,
    settlement_time,
)

EIGHT_AM = 1_735_718_400_000  # 2025-01-01 08:00 UTC
HOUR = 3_600_000


def test_a_calc_time_a_few_ms_after_eight_settles_at_eight():
    row = parse_funding_row("1735718400004,8,0.00010000", "BTCUSDT-fundingRate-2025-01.csv", 2)
    assert row == FundingRow(funding_time=EIGHT_AM, calc_time=EIGHT_AM + 4, interval_hours=8, rate=0.0001)
    assert isinstance(row.interval_hours, int) and isinstance(row.rate, float)
    assert settlement_time(EIGHT_AM) == EIGHT_AM and settlement_time(EIGHT_AM - 3) == EIGHT_AM  # early rounds up too
    assert settlement_time(EIGHT_AM + HOUR // 2 - 1) == EIGHT_AM and settlement_time(EIGHT_AM + HOUR // 2) == (
        EIGHT_AM + HOUR)  # fmt: skip
    assert parse_funding_row("1735718400000,4,-0.00002315", "f.csv", 3).rate == -0.00002315


def test_an_interval_change_within_a_month_is_kept_row_by_row():
    rows = [f"{EIGHT_AM - 8 * HOUR + 1},8,0.00010000", f"{EIGHT_AM + 7},8,0.00012000",
            f"{EIGHT_AM + 4 * HOUR},4,0.00005000", f"{EIGHT_AM + 8 * HOUR + 2},4,-0.00001000"]  # fmt: skip
    text = "\n".join([FUNDING_HEADER, *rows, ""])
    rows = parse_funding_csv(text.encode(), "1000PEPEUSDT-fundingRate-2025-01.csv")
    assert [r.interval_hours for r in rows] == [8, 8, 4, 4]
    assert [r.funding_time - EIGHT_AM for r in rows] == [-8 * HOUR, 0, 4 * HOUR, 8 * HOUR]
    assert [r.rate for r in rows] == [0.0001, 0.00012, 0.00005, -0.00001]


def test_crlf_blank_lines_a_bom_and_a_missing_header_are_accepted():
    text = f"\ufeff{FUNDING_HEADER}\r\n{EIGHT_AM},8,0.0001\r\n\r\n{EIGHT_AM + 8 * HOUR},8,0.0002\r\n"
    assert len(parse_funding_csv(text, "f.csv")) == 2
    assert parse_funding_csv(f"{EIGHT_AM},1,0.0001", "f.csv")[0].interval_hours == 1


@pytest.mark.parametrize(
    "line, what",
    [
        ("1735718400004,8", "2 fields"),
        ("1735718400004,8,0.0001,0", "4 fields"),
        ("1735718400004000,8,0.0001", "calc_time '1735718400004000' is not a time in milliseconds"),  # µs
        ("1735718400,8,0.0001", "calc_time '1735718400' is not a time in milliseconds"),  # seconds
        ("2025-01-01 08:00:00,8,0.0001", "is not a time in milliseconds"),
        ("1735718400004,5,0.0001", "funding_interval_hours '5' is not a whole number of hours dividing a day"),
        ("1735718400004,0,0.0001", "funding_interval_hours '0'"),
        ("1735718400004,8h,0.0001", "funding_interval_hours '8h'"),
        ("1735718400004,\u0668,0.0001", "funding_interval_hours '\u0668'"),  # a digit, not an ASCII one
        ("\u0661735718400004,8,0.0001", "is not a time in milliseconds"),
        ("1735718400004,8,abc", "last_funding_rate 'abc' is not a number"),
        ("1735718400004,8,nan", "last_funding_rate 'nan' is not a finite number"),
        ("1735720200000,8,0.0001", "calc_time 1735720200000 is 30.0 min from the nearest hour"),
    ],
)
def test_a_bad_row_is_refused_naming_file_line_and_what_was_expected(line, what):
    text = f"{FUNDING_HEADER}\n{EIGHT_AM},8,0.0001\n{line}\n"
    with pytest.raises(FundingFormatError) as refused:
        parse_funding_csv(text, "BTCUSDT-fundingRate-2025-01.csv")
    message = str(refused.value)
    assert message.startswith("BTCUSDT-fundingRate-2025-01.csv line 3: ") and what in message
    assert line[:40] in message and "expected 'calc_time (epoch ms),funding_interval_hours" in message


def test_a_foreign_header_or_no_rows_is_refused():
    with pytest.raises(FundingFormatError, match=r"^f\.csv line 1: header 'time,rate'; expected 'calc_time,"):
        parse_funding_csv("time,rate\n1735718400000,0.0001\n", "f.csv")
    with pytest.raises(FundingFormatError, match=r"^f\.csv holds no funding rows; expected at least one settlement"):
        parse_funding_csv(FUNDING_HEADER + "\n", "f.csv")


@pytest.mark.parametrize(
    "market_type, symbol, month",
    [(MarketType.UM, "1000PEPEUSDT", "2025-03"), (MarketType.UM, "SYRUPUSDT", "2025-05"),
     (MarketType.CM, "SOLUSD_PERP", "2025-11"), (MarketType.CM, "BTCUSD_PERP", "2025-02")],
)  # fmt: skip
def test_a_downloaded_funding_archive_parses_to_the_stand_ins_truth(standin, market, tmp_path, market_type, symbol,
                                                                    month):  # fmt: skip
    client = BinanceClient(standin.data_url, standin.listing_url, standin.api_url, backoff=0.01)
    path = funding_archive_path(symbol, month, market_type)
    dest = tmp_path / funding_archive_name(symbol, month)
    client.download_verified(path, dest, client.fetch_checksum(path))
    rows = read_funding_archive(dest.rename(tmp_path / "stored.zip"), name=dest.name)
    truth = market.funding_expected(symbol, month, market_type.value)
    assert len(rows) == truth["rows"] > 0
    assert [r.funding_time for r in rows] == truth["funding_times"]
    assert [r.calc_time for r in rows] == truth["calc_times"]
    assert [r.interval_hours for r in rows] == truth["interval_hours"]
    assert [r.rate for r in rows] == truth["rates"]
    assert any(r.calc_time != r.funding_time for r in rows)  # the few-ms-late ones are among them
    assert all(r.funding_time % (r.interval_hours * HOUR) == 0 for r in rows)  # each on its interval's grid
