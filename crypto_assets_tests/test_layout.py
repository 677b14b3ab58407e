"""Where the lake's files live under CRYPTO_DATA_DIR, and file names that would lead out of their folder refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto_assets.layout import Layout
from crypto_assets.months import Month

FEB = Month(2025, 2)


def test_every_layer_has_its_folder_under_the_data_dir(tmp_path):
    layout = Layout.at(tmp_path, "4h")
    assert layout.raw_file(FEB, "BTCUSDT-4h-2025-02.zip") == tmp_path / "raw/spot/4h/2025-02/BTCUSDT-4h-2025-02.zip"
    assert layout.raw_manifest(FEB) == tmp_path / "raw/spot/4h/2025-02/_manifest.json"
    assert layout.csv_file(FEB, "BTCUSDT") == tmp_path / "csv/spot/4h/2025-02/BTCUSDT.csv.gz"
    assert layout.parquet_dir(FEB) == tmp_path / "parquet/spot/klines/4h/year=2025/month=2"
    assert layout.report_month_file(FEB) == tmp_path / "reports/spot/klines/4h/months/2025-02.json"
    assert layout.universe_file == tmp_path / "universe/pair_universe.json"


def test_a_relative_data_dir_is_made_absolute():
    assert Layout.at("data", "1m").root == Path("data").resolve()


@pytest.mark.parametrize("name", ["../../etc", "../x.zip", "a/b.zip", "", ".", "..", "x\0.zip"])
def test_a_file_name_that_would_leave_its_folder_is_refused(tmp_path, name):
    layout = Layout.at(tmp_path, "4h")
    with pytest.raises(ValueError, match="would escape .*expected a plain file name"):
        layout.raw_file(FEB, name)


def test_a_symbol_that_would_leave_the_csv_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"'\.\./\.\./etc\.csv\.gz' would escape"):
        Layout.at(tmp_path, "4h").csv_file(FEB, "../../etc")


def test_each_futures_market_has_its_klines_and_funding_datasets(tmp_path):
    um = Layout.at(tmp_path, "1h", "um")
    assert um.raw_dir(FEB) == tmp_path / "raw/um/1h/2025-02"
    assert um.csv_dir(FEB) == tmp_path / "csv/um/1h/2025-02"
    assert um.parquet_dir(FEB) == tmp_path / "parquet/um/klines/1h/year=2025/month=2"
    assert um.universe_file == tmp_path / "universe/um_contract_universe.json"
    funding = Layout.at(tmp_path, "1h", "cm").funding
    assert funding.raw_dir(FEB) == tmp_path / "raw/cm/funding/2025-02"
    assert funding.parquet_dir(FEB) == tmp_path / "parquet/cm/funding/year=2025/month=2"
    assert funding.reports_dir == tmp_path / "reports/cm/funding"
    assert (um.dataset, funding.dataset) == ("um/klines/1h", "cm/funding")
    with pytest.raises(ValueError, match="'spot' has no funding rates; expected um or cm"):
        _ = Layout.at(tmp_path, "1h").funding


def test_a_lake_from_before_the_market_level_is_moved_by_renames(tmp_path):
    from crypto_assets.lake.relocate import relocate_legacy_spot

    old = {"csv/4h/2025-02/BTCUSDT.csv.gz": b"csv", "parquet/4h/year=2025/month=2/part-0.parquet": b"PAR1",
           "reports/4h/months/2025-02.json": b"{}", "raw/spot/4h/2025-02/_manifest.json": b"{}"}  # fmt: skip
    inodes = {}
    for name, data in old.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
        inodes[name] = (tmp_path / name).stat().st_ino
    layout = Layout.at(tmp_path, "4h")
    moved = relocate_legacy_spot(layout)
    assert moved == ["csv/4h -> csv/spot/4h", "parquet/4h -> parquet/spot/klines/4h",
                     "reports/4h -> reports/spot/klines/4h"]  # fmt: skip
    now = {"csv/4h/2025-02/BTCUSDT.csv.gz": layout.csv_file(FEB, "BTCUSDT"),
           "parquet/4h/year=2025/month=2/part-0.parquet": layout.parquet_dir(FEB) / "part-0.parquet",
           "reports/4h/months/2025-02.json": layout.report_month_file(FEB),
           "raw/spot/4h/2025-02/_manifest.json": layout.raw_manifest(FEB)}  # fmt: skip
    for name, path in now.items():  # the same files (inodes), not copies
        assert path.read_bytes() == old[name] and path.stat().st_ino == inodes[name]
    assert not (tmp_path / "csv/4h").exists() and not (tmp_path / "parquet/4h").exists()
    assert relocate_legacy_spot(layout) == []  # nothing left to move


def test_a_lake_with_spot_data_at_both_places_is_left_as_it_is(tmp_path):
    from crypto_assets.lake.relocate import RelocationError, relocate_legacy_spot

    (tmp_path / "parquet/4h/year=2025").mkdir(parents=True)
    (tmp_path / "csv/4h/2025-02").mkdir(parents=True)
    (tmp_path / "parquet/spot/klines/4h/year=2025").mkdir(parents=True)
    with pytest.raises(RelocationError, match=r"parquet/4h and .*parquet/spot/klines/4h.*move the other out"):
        relocate_legacy_spot(Layout.at(tmp_path, "4h"))
    assert (tmp_path / "csv/4h/2025-02").is_dir()  # nothing moved
