"""Temporary files a killed process left behind: never read as data (their names start with a dot and end in
``.tmp`` or ``.part``), but removed by the next run so a folder holds only what its stage wrote."""

from __future__ import annotations

import os
from pathlib import Path

from crypto_assets.lake.processes import process_alive


def remove_dead_temp_files(folder: Path) -> None:
    """Remove ``.{name}.{pid}[.{n}].tmp|part`` files in ``folder`` whose writing process no longer exists."""
    if not folder.is_dir():
        return
    for name in os.listdir(folder):
        if not (name.startswith(".") and name.endswith((".tmp", ".part"))):
            continue
        pids = [int(part) for part in name.split(".")[-3:-1] if part.isdigit()]
        if pids and not process_alive(pids[0]):
            (folder / name).unlink(missing_ok=True)

