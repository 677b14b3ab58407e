"""Kline CSV normalization on real Binance archives (ms in 2024-12, µs in 2025-01) and on what real files contain."""

import io
import os
import subprocess
import sys
import zipfile
from datetime import UTC
from pathlib import Path

import pytest

from crypto_assets.binance.klines import NORMALIZED_HEADER, MalformedKlineError, format_utc, normalize_pair_month
from crypto_assets.months import Month

REAL = Path(__file__).parent / "fixtures" / "real"


def real_csv(month: str) -> bytes:
    with zipfile.ZipFile(REAL / f"BTCUSDT-5m-{month}.zip") as z:
        return z.read(f"BTCUSDT-5m-{month}.csv")


def normalize(tmp_path, data: bytes | list[bytes], month="2024-12", interval="5m"):
    out = tmp_path / "out.csv"
    parts = data if isinstance(data, list) else [data]
    sources = [(f"part{i}.csv", io.BytesIO(p)) for i, p in enumerate(parts)]
    stats = normalize_pair_month("BTCUSDT", interval, Month.parse(month), sources, out)
    return stats, out.read_text().splitlines()


@pytest.mark.parametrize(
    "month, first, last, first_text",
    [
        ("2024-12", 1733011200000, 1735689300000, "2024-12-01 00:00:00"),
        ("2025-01", 1735689600000, 1738367700000, "2025-01-01 00:00:00"),  # the archive is in microseconds
    ],
)
def test_real_archives_in_both_units(tmp_path, month, first, last, first_text):
    stats, lines = normalize(tmp_path, real_csv(month), month)
    assert (stats.rows, stats.duplicates_dropped, stats.off_grid) == (8928, 0, 0)
    assert (stats.first_open_time, stats.last_open_time) == (first, last)
    assert lines[0] + "\n" == NORMALIZED_HEADER
    symbol, open_time, dt, *values = lines[1].split(",")
    assert (symbol, int(open_time), dt) == ("BTCUSDT", first, first_text)
    source = real_csv(month).split(b"\n", 1)[0].decode().split(",")
    assert values == source[1:6] + source[7:11]  # close_time and ignore are dropped, values kept verbatim
    assert lines[-1].split(",")[2] == format_utc(last)


def test_output_does_not_depend_on_the_machine_time_zone(tmp_path):
    script = (
        "import io,sys; from pathlib import Path; sys.path.insert(0, '.');"
        "from crypto_assets.binance.klines import normalize_pair_month; from crypto_assets.months import Month;"
        f"data = open({str(tmp_path / 'in.csv')!r}, 'rb').read();"
        "normalize_pair_month('BTCUSDT', '5m', Month.parse('2025-01'), [('x', io.BytesIO(data))], Path(sys.argv[1]))"
    )
    (tmp_path / "in.csv").write_bytes(real_csv("2025-01"))
    outputs = []
    for tz in ("UTC", "America/New_York", "Asia/Kolkata"):
        out = tmp_path / f"{tz.replace('/', '_')}.csv"
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env={**os.environ, "TZ": tz},
                       cwd=Path(__file__).parent.parent)  # fmt: skip
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_header_crlf_blank_lines_and_exact_duplicates(tmp_path):
    rows = real_csv("2024-12").split(b"\n")[:10]
    header = (b"open_time,open,high,low,close,volume,close_time,quote_volume,count,"
              b"taker_buy_volume,taker_buy_quote_volume,ignore")  # fmt: skip
    data = b"\r\n".join([header, *rows[:5], rows[4], b"", *rows[5:], rows[9]]) + b"\r\n\r\n"
    stats, lines = normalize(tmp_path, data)
    assert (stats.rows, stats.duplicates_dropped, stats.archive_rows) == (10, 2, 12)
    assert len(lines) == 11 and not any("\r" in line for line in lines)


def test_daily_parts_are_concatenated_in_time_order(tmp_path):
    rows = real_csv("2024-12").split(b"\n")
    day1, day2 = b"\n".join(rows[:288]), b"\n".join(rows[288:576])
    stats, lines = normalize(tmp_path, [day2, day1])
    times = [int(line.split(",")[1]) for line in lines[1:]]
    assert stats.rows == 576 and times == sorted(times) and times[0] == 1733011200000


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.replace(b".", b"x", 1), ["line 4", "open='", "not a decimal"]),
        (lambda r: r + b",1", ["line 4", "13 fields"]),
        (lambda r: r.replace(b"1733012100000", b"1735689600000", 1), ["line 4", "outside 2024-12", "2025-01-01"]),
        (lambda r: r.replace(b",0", b",zero"), ["line 4", "ignore"]),
    ],
)
def test_malformed_rows_name_file_line_and_text(tmp_path, change, message):
    rows = real_csv("2024-12").split(b"\n")[:6]
    rows[3] = change(rows[3])
    with pytest.raises(MalformedKlineError) as error:
        normalize(tmp_path, b"\n".join(rows))
    text = str(error.value)
    assert text.startswith("part0.csv line 4:") and rows[3].decode()[:40] in text
    for word in message:
        assert word in text
    assert not (tmp_path / "out.csv").exists()  # nothing half-written at the final path


def test_conflicting_rows_for_one_open_time_are_an_error(tmp_path):
    rows = real_csv("2024-12").split(b"\n")[:4]
    other = rows[2].rsplit(b",", 2)[0] + b",1.00000000,0"  # the same open time, another taker_buy_quote
    assert other != rows[2] and other.split(b",")[0] == rows[2].split(b",")[0]
    with pytest.raises(MalformedKlineError, match=r"^part0\.csv line 5: .*appears again with different values"):
        normalize(tmp_path, b"\n".join([*rows, other]))


@pytest.mark.parametrize("interval", ["1s", "1m", "1h", "1d", "1w", "1mo"])
def test_grid_datetimes_match_the_calendar(interval):
    from datetime import datetime

    from crypto_assets.months import candle_open_times

    month = Month.parse("2025-03")
    times = list(candle_open_times(interval, month.start_ms, month.end_ms))
    assert times and all(month.start_ms <= t < month.end_ms for t in times)
    for t in times[:3] + times[-3:]:
        assert format_utc(t) == datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    if interval == "1w":
        assert all(datetime.fromtimestamp(t / 1000, tz=UTC).weekday() == 0 for t in times)
