"""The normalized CSV layer on real Binance archives (ms in 2024-12, µs in 2025-01): a gzip reader sees the header
and Binance's rows byte for byte, the rows are counted, and Spark turns both units into the same UTC candles."""

import gzip
import hashlib
import shutil
import zipfile
import zlib
from datetime import UTC
from pathlib import Path

import pytest

from crypto_assets.binance.archives import count_data_lines, read_deflated_member
from crypto_assets.binance.klines import KLINE_HEADER
from crypto_assets.lake.csv import normalize_month, read_csv_manifest
from crypto_assets.lake.raw import ArchiveFile, PairMonth, write_manifest
from crypto_assets.layout import Layout
from crypto_assets.months import Month, format_utc

REAL = Path(__file__).parent / "fixtures" / "real"


def real_csv(month: str) -> bytes:
    with zipfile.ZipFile(REAL / f"BTCUSDT-5m-{month}.zip") as z:
        return z.read(f"BTCUSDT-5m-{month}.csv")


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def lake_with_archives(root: Path, month: str, archives: dict[str, list[Path]]) -> Layout:
    """A lake whose raw layer holds ``archives`` (symbol -> zips, in order) as verified for ``month``."""
    layout, m = Layout.at(root, "5m"), Month.parse(month)
    layout.raw_dir(m).mkdir(parents=True)
    entries = {}
    for symbol, zips in archives.items():
        files = []
        for path in zips:
            shutil.copy(path, layout.raw_file(m, path.name))
            files.append(ArchiveFile(path.name, hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size))
        entries[symbol] = PairMonth(symbol, "ok", "monthly" if len(zips) == 1 else "daily", files)
    write_manifest(layout, m, entries)
    return layout


@pytest.mark.parametrize(
    "text, rows",
    [
        (b"", 0),
        (b"1,2\n3,4\n", 2),
        (b"1,2\n3,4", 2),  # no newline after the last row
        (b"open_time,open\n1,2\n", 1),  # a futures-style header is not a row
        (b"\n1,2\n\n\n3,4\n\n", 2),  # blank lines are not rows
    ],
)
def test_data_lines_are_counted_without_header_or_blank_lines(text, rows):
    counted = count_data_lines(deflate(text))
    assert (counted.data_lines, counted.crc32, counted.size) == (rows, zlib.crc32(text), len(text))


def test_a_real_archive_member_counts_its_rows_and_matches_the_zip_crc():
    member = read_deflated_member(REAL / "BTCUSDT-5m-2025-01.zip")
    with zipfile.ZipFile(REAL / "BTCUSDT-5m-2025-01.zip") as z:
        info = z.infolist()[0]
    counted = count_data_lines(member.data)
    assert counted.data_lines == 8928  # 31 days x 288 five-minute candles
    assert (counted.crc32, counted.size) == (member.crc32, member.size) == (info.CRC, info.file_size)


def test_the_csv_is_the_header_then_the_archive_bytes_and_daily_parts_stay_in_order(tmp_path):
    december = REAL / "BTCUSDT-5m-2024-12.zip"
    # Two "daily" archives for one pair: the real month split in two, each its own zip.
    rows = real_csv("2024-12").split(b"\n")
    parts = []
    for i, chunk in enumerate([b"\n".join(rows[:288]) + b"\n", b"\n".join(rows[288:576]) + b"\n"]):
        path = tmp_path / f"ETHUSDT-5m-2024-12-0{i + 1}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(path.name.replace(".zip", ".csv"), chunk)
        parts.append(path)
    layout = lake_with_archives(tmp_path / "lake", "2024-12", {"BTCUSDT": [december], "ETHUSDT": parts})
    result = normalize_month(layout, Month.parse("2024-12"))
    assert (result.rows, result.symbols, result.rebuilt) == (8928 + 576, 2, 2)
    with gzip.open(layout.csv_file(Month.parse("2024-12"), "BTCUSDT"), "rb") as f:
        assert f.read() == f"{KLINE_HEADER}\n".encode() + real_csv("2024-12")
    with gzip.open(layout.csv_file(Month.parse("2024-12"), "ETHUSDT"), "rb") as f:
        assert f.read().split(b"\n")[1:577] == rows[:576]
    manifest = read_csv_manifest(layout, Month.parse("2024-12"))
    assert manifest["ETHUSDT"]["members"] == 2 and manifest["ETHUSDT"]["crc_ok"] and manifest["BTCUSDT"]["crc_ok"]
    # The CSV layer takes the zips' size, not the inflated CSV's.
    csv_bytes = layout.csv_file(Month.parse("2024-12"), "BTCUSDT").stat().st_size
    assert csv_bytes < december.stat().st_size * 1.05 < len(real_csv("2024-12")) / 2
    # Nothing changed upstream: nothing rebuilt.
    assert normalize_month(layout, Month.parse("2024-12")).rebuilt == 0


def test_a_stored_zip_member_is_refused_by_name(tmp_path):
    path = tmp_path / "BTCUSDT-5m-2024-12.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("BTCUSDT-5m-2024-12.csv", real_csv("2024-12")[:1000])
    with pytest.raises(ValueError, match="BTCUSDT-5m-2024-12.zip.*expected deflate"):
        read_deflated_member(path)


@pytest.mark.slow
def test_both_units_become_the_same_utc_candles_in_parquet(tmp_path, spark):
    from crypto_assets.lake.parquet import write_months

    for month, first, last in [("2024-12", "2024-12-01 00:00:00", "2024-12-31 23:55:00"),
                               ("2025-01", "2025-01-01 00:00:00", "2025-01-31 23:55:00")]:  # fmt: skip
        layout = lake_with_archives(tmp_path / month, month, {"BTCUSDT": [REAL / f"BTCUSDT-5m-{month}.zip"]})
        normalize_month(layout, Month.parse(month))
        written = write_months(lambda: spark, layout, [Month.parse(month)])[Month.parse(month)]
        figures = written.summary.per_symbol["BTCUSDT"]
        assert (written.rows, figures.off_grid, figures.duplicates_dropped, figures.missing_candles) == (8928, 0, 0, 0)
        assert (format_utc(figures.first_open_time), format_utc(figures.last_open_time)) == (first, last)
        frame = spark.read.parquet(str(layout.parquet_dir(Month.parse(month))))
        row = frame.orderBy("timestamp").first()
        source = real_csv(month).split(b"\n", 1)[0].decode().split(",")
        assert row["timestamp"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") == first
        assert [row["open"], row["high"], row["low"], row["close"], row["volume"]] == [float(v) for v in source[1:6]]
        assert (row["quote_volume"], row["trades"]) == (float(source[7]), int(source[8]))


@pytest.mark.parametrize(
    "ms, text",
    [
        (0, "1970-01-01 00:00:00"),
        (1_735_689_599_000, "2024-12-31 23:59:59"),
        (1_735_689_600_000, "2025-01-01 00:00:00"),
        (1_709_164_800_000, "2024-02-29 00:00:00"),  # a leap day
        (1_741_487_400_000, "2025-03-09 02:30:00"),  # a time New York skips (the suite runs in New York)
        (951_782_400_000, "2000-02-29 00:00:00"),  # a leap day of a century year
    ],
)
def test_an_instant_is_written_in_utc_whatever_the_machine_zone(ms, text):
    assert format_utc(ms) == text


def test_a_csv_damaged_after_it_was_written_fails_its_check(tmp_path):
    from crypto_assets.lake.quality import csv_matches_archives

    layout = lake_with_archives(tmp_path, "2024-12", {"BTCUSDT": [REAL / "BTCUSDT-5m-2024-12.zip"]})
    first = normalize_month(layout, Month.parse("2024-12"))
    assert csv_matches_archives(first.per_symbol, first.on_disk).passed
    path = layout.csv_file(Month.parse("2024-12"), "BTCUSDT")
    path.write_bytes(path.read_bytes()[:-100])  # cut short: the manifest still vouches for its archive
    again = normalize_month(layout, Month.parse("2024-12"))
    outcome = csv_matches_archives(again.per_symbol, again.on_disk)
    assert not outcome.passed and outcome.metadata["pairs_damaged"] == 1 and "BTCUSDT" in outcome.description
