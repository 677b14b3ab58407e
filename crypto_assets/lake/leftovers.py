"""Temporary files a killed process left behind: never read as data (their names start with a dot), but removed by
the next run so a folder holds only what its stage wrote."""

from __future__ import annotations

import os
from pathlib import Path

from crypto_assets.files import TEMP_SUFFIX
from crypto_assets.lake.processes import process_alive

# ``.tmp``: the suffix a lake written by an earlier version of the project may still hold after a killed run.
_SUFFIXES = (TEMP_SUFFIX, ".tmp")


def remove_dead_temp_files(folder: Path) -> None:
    """Remove ``.{name}.{pid}[.{n}].part`` files (``files.replacing``) in ``folder`` whose writing process no longer
    exists."""
    if not folder.is_dir():
        return
    for name in os.listdir(folder):
        if not (name.startswith(".") and name.endswith(_SUFFIXES)):
            continue
        pids = [int(part) for part in name.split(".")[-3:-1] if part.isdigit()]
        if pids and not process_alive(pids[0]):
            (folder / name).unlink(missing_ok=True)
