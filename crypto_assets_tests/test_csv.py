"""Normalizing one month (lake/csv.py) on hand-made archives of two or three rows: the gzip CSV is the header, then
each archive's rows exactly as published, its compressed bytes copied rather than recompressed; the manifest
records rows, CRC and size; a damaged member is refused by name; a file is rebuilt only when its archives change.
test_klines.py does the same on real Binance archives."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import zipfile
from pathlib import Path

import pytest

from crypto_assets.binance.archives import ArchiveError, verify_zip
from crypto_assets.lake.csv import normalize_month, read_csv_manifest
from crypto_assets.lake.quality import csv_matches_archives
from crypto_assets.lake.raw import ABSENT, OK, ArchiveFile, PairMonth, write_manifest
from crypto_assets.layout import Layout
from crypto_assets.months import Month

FEB = Month(2025, 2)
HEADER = "open_time,open,high,low,close,volume,close_time,quote_volume,trades,taker_buy_base,taker_buy_quote,ignore\n"
# Two 4h candles as Binance writes them in 2025 (microsecond open and close times).
BTC_ROWS = (
    "1738368000000000,102429.56,102783.71,101456.00,101878.60,1217.37,1738382399999999,124319221.68,224816,"
    "567.59,57952102.73,0\n"
    "1738382400000000,101878.60,102188.00,100838.21,101239.01,1151.93,1738396799999999,116895017.16,236144,"
    "515.83,52356398.41,0\n"
)  # fmt: skip
ETH_ROW = (
    "1738368000000000,3300.01,3310.00,3250.50,3275.20,8813.11,1738382399999999,28911122.05,81234,4012.7,13160022.1,0\n"
)


def make_zip(folder: Path, name: str, text: str) -> Path:
    """A Binance-style archive: one deflated member named like the zip (a fixed date: same text, same bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    member = zipfile.ZipInfo(name.removesuffix(".zip") + ".csv", date_time=(2025, 3, 1, 0, 0, 0))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, text, compress_type=zipfile.ZIP_DEFLATED)
    return path


def verified(layout: Layout, archives: dict[str, list[tuple[str, str]]], source: str = "monthly",
             absent: tuple[str, ...] = (), counted: bool = True) -> None:  # fmt: skip
    """Put ``archives`` ({symbol: [(zip name, csv text), ...]}) in February's raw folder, recorded as verified (with
    the data lines the download's verification counts, unless not ``counted``: a manifest from before counts were
    recorded), and record the ``absent`` pairs as having no archive."""
    entries = {s: PairMonth(s, ABSENT) for s in absent}
    for symbol, parts in archives.items():
        files = []
        for name, text in parts:
            path = make_zip(layout.raw_dir(FEB), name, text)
            lines = verify_zip(path).data_lines if counted else None
            files.append(ArchiveFile(name, hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size,
                                     data_lines=lines))
        entries[symbol] = PairMonth(symbol, OK, source, files)
    write_manifest(layout, FEB, entries)


def compressed_member(path: Path) -> tuple[bytes, int, int, int]:
    """(the member's deflate bytes as stored, their offset in the file, the zip's CRC-32, the inflated size)."""
    with zipfile.ZipFile(path) as z:
        info = z.infolist()[0]
    data = path.read_bytes()
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    return data[start : start + info.compress_size], start, info.CRC, info.file_size


def csv_text(layout: Layout, symbol: str) -> str:
    with gzip.open(layout.csv_file(FEB, symbol), "rt", newline="") as f:
        return f.read()


@pytest.fixture
def layout(tmp_path) -> Layout:
    return Layout.at(tmp_path, "4h")


def test_the_csv_is_the_header_then_the_archive_rows_as_published(layout):
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)], "ETHUSDT": [("ETHUSDT-4h-2025-02.zip",
                                                                                       ETH_ROW)]})  # fmt: skip
    result = normalize_month(layout, FEB)
    assert csv_text(layout, "BTCUSDT") == HEADER + BTC_ROWS
    assert csv_text(layout, "ETHUSDT") == HEADER + ETH_ROW
    assert (result.rows, result.symbols, result.rebuilt, result.daily_sourced) == (3, 2, 2, 0)


def test_the_archive_member_is_copied_compressed_behind_a_gzip_header_not_recompressed(layout):
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)]})
    normalize_month(layout, FEB)
    deflated, _, crc, size = compressed_member(layout.raw_file(FEB, "BTCUSDT-4h-2025-02.zip"))
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no time, OS unknown
    second_member = gzip_header + deflated + struct.pack("<LL", crc, size)
    data = layout.csv_file(FEB, "BTCUSDT").read_bytes()
    assert data.endswith(second_member)
    assert gzip.decompress(data[: -len(second_member)]) == HEADER.encode()  # the first member: the header alone


def test_the_manifest_records_rows_size_crc_members_and_source_archives(layout):
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)]})
    result = normalize_month(layout, FEB)
    zip_sha = hashlib.sha256(layout.raw_file(FEB, "BTCUSDT-4h-2025-02.zip").read_bytes()).hexdigest()
    on_disk = layout.csv_file(FEB, "BTCUSDT").stat().st_size
    assert read_csv_manifest(layout, FEB) == {"BTCUSDT": {
        "rows": 2, "bytes": on_disk, "members": 1, "crc_ok": True, "source": "monthly", "source_sha256": zip_sha,
        "format": "gzip-members-1"}}  # fmt: skip
    assert result.on_disk == {"BTCUSDT": on_disk} and result.bytes == on_disk
    assert csv_matches_archives(result.per_symbol, result.on_disk).passed


def test_a_manifest_without_counts_has_its_members_inflated_and_counted_here(layout):
    """A lake whose raw manifest predates the counts: normalize inflates each member itself, with the same result."""
    archives = {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)], "ETHUSDT": [("ETHUSDT-4h-2025-02.zip", ETH_ROW)]}
    verified(layout, archives, counted=False)
    result = normalize_month(layout, FEB)
    assert {s: (p["rows"], p["crc_ok"]) for s, p in result.per_symbol.items()} == {"BTCUSDT": (2, True),
                                                                                   "ETHUSDT": (1, True)}
    assert csv_text(layout, "BTCUSDT") == HEADER + BTC_ROWS


def test_a_count_is_used_only_for_the_bytes_it_was_counted_on(layout):
    """An archive replaced after its verification (another sha256 than the manifest's) is counted from its bytes."""
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)]})
    assert normalize_month(layout, FEB).rows == 2
    recorded = json.loads(layout.raw_manifest(FEB).read_text())["pairs"]["BTCUSDT"]["files"][0]
    make_zip(layout.raw_dir(FEB), "BTCUSDT-4h-2025-02.zip", BTC_ROWS + ETH_ROW)  # the manifest still says 2 lines
    assert recorded["data_lines"] == 2
    layout.csv_file(FEB, "BTCUSDT").unlink()
    result = normalize_month(layout, FEB)
    assert (result.rows, result.per_symbol["BTCUSDT"]["crc_ok"]) == (3, True)
    assert csv_text(layout, "BTCUSDT") == HEADER + BTC_ROWS + ETH_ROW


def test_rows_are_data_lines_a_header_line_and_blank_lines_are_kept_but_not_counted(layout):
    published = "open_time,open,high\n" + BTC_ROWS + "\n\n"  # a futures-style header, two blank lines at the end
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", published)]})
    assert normalize_month(layout, FEB).rows == 2
    assert csv_text(layout, "BTCUSDT") == HEADER + published  # the Spark read skips them


def test_daily_archives_follow_each_other_in_day_order(layout):
    first, second = BTC_ROWS.splitlines(keepends=True)
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02-01.zip", first), ("BTCUSDT-4h-2025-02-02.zip", second)]},
             source="daily")  # fmt: skip
    result = normalize_month(layout, FEB)
    assert csv_text(layout, "BTCUSDT") == HEADER + first + second
    entry = read_csv_manifest(layout, FEB)["BTCUSDT"]
    assert (entry["rows"], entry["members"], entry["source"], entry["crc_ok"]) == (2, 2, "daily", True)
    assert result.daily_sourced == 1


def test_a_member_that_does_not_inflate_is_refused_naming_the_archive(layout):
    verified(layout, {"ADAUSDT": [("ADAUSDT-4h-2025-02.zip", ETH_ROW)],
                      "BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)]})  # fmt: skip
    damaged = layout.raw_file(FEB, "BTCUSDT-4h-2025-02.zip")
    deflated, start, _, _ = compressed_member(damaged)
    data = bytearray(damaged.read_bytes())
    data[start : start + len(deflated)] = b"\xff" * len(deflated)  # deflate block type 3: invalid
    damaged.write_bytes(bytes(data))
    with pytest.raises(ArchiveError) as error:
        normalize_month(layout, FEB)
    assert str(error.value).startswith("BTCUSDT-4h-2025-02.zip: its CSV member does not inflate (")
    assert f"delete {damaged} and run the month again" in str(error.value)
    assert not layout.csv_file(FEB, "BTCUSDT").exists()
    assert list(read_csv_manifest(layout, FEB)) == ["ADAUSDT"]  # what was done before it is kept
    assert sorted(p.name for p in layout.csv_dir(FEB).iterdir()) == ["ADAUSDT.csv.gz", "_manifest.json"]  # no .tmp


def test_a_member_whose_bytes_differ_from_the_zips_crc_is_recorded_as_damaged(layout):
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)]})
    path = layout.raw_file(FEB, "BTCUSDT-4h-2025-02.zip")
    data = bytearray(path.read_bytes())
    directory = data.rindex(b"PK\x01\x02")  # the central directory entry, where the zip's CRC-32 is read from
    data[directory + 16 : directory + 20] = struct.pack("<L", 0xDEADBEEF)
    path.write_bytes(bytes(data))
    result = normalize_month(layout, FEB)
    assert result.per_symbol["BTCUSDT"]["crc_ok"] is False
    outcome = csv_matches_archives(result.per_symbol, result.on_disk)
    assert not outcome.passed and outcome.metadata["pairs_damaged"] == 1


def test_nothing_is_rebuilt_while_the_archives_are_unchanged(layout):
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)]})
    normalize_month(layout, FEB)
    stamp = layout.csv_file(FEB, "BTCUSDT").stat().st_mtime_ns
    again = normalize_month(layout, FEB)
    assert (again.rebuilt, again.rows) == (0, 2)
    assert layout.csv_file(FEB, "BTCUSDT").stat().st_mtime_ns == stamp


def test_a_republished_archive_rebuilds_its_pair_only(layout):
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)], "ETHUSDT": [("ETHUSDT-4h-2025-02.zip",
                                                                                       ETH_ROW)]})  # fmt: skip
    normalize_month(layout, FEB)
    eth = layout.csv_file(FEB, "ETHUSDT").stat().st_mtime_ns
    first = BTC_ROWS.splitlines(keepends=True)[0]
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", first)], "ETHUSDT": [("ETHUSDT-4h-2025-02.zip",
                                                                                    ETH_ROW)]})  # fmt: skip
    result = normalize_month(layout, FEB)
    assert (result.rebuilt, result.rows) == (1, 2)
    assert csv_text(layout, "BTCUSDT") == HEADER + first
    assert layout.csv_file(FEB, "ETHUSDT").stat().st_mtime_ns == eth


def test_a_pair_no_longer_ok_and_an_uncompressed_csv_of_the_old_layout_are_removed(layout):
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)], "ETHUSDT": [("ETHUSDT-4h-2025-02.zip",
                                                                                       ETH_ROW)]})  # fmt: skip
    normalize_month(layout, FEB)
    (layout.csv_dir(FEB) / "BTCUSDT.csv").write_text("datetime,open\n")  # what the layer used to hold
    verified(layout, {"BTCUSDT": [("BTCUSDT-4h-2025-02.zip", BTC_ROWS)]}, absent=("ETHUSDT",))
    result = normalize_month(layout, FEB)
    assert sorted(p.name for p in layout.csv_dir(FEB).iterdir()) == ["BTCUSDT.csv.gz", "_manifest.json"]
    assert list(read_csv_manifest(layout, FEB)) == ["BTCUSDT"] and (result.rows, result.symbols) == (2, 1)
