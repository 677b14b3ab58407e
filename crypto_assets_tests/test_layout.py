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
    assert layout.csv_file(FEB, "BTCUSDT") == tmp_path / "csv/4h/2025-02/BTCUSDT.csv.gz"
    assert layout.parquet_dir(FEB) == tmp_path / "parquet/4h/year=2025/month=2"
    assert layout.report_month_file(FEB) == tmp_path / "reports/4h/months/2025-02.json"
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
