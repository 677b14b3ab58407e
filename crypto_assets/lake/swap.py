"""Replace month folders of a partitioned dataset by renames, so a run killed at any point leaves every month with
its old or its new files, never a mix or nothing.

Spark's dynamic partition overwrite deletes a month's folder and then renames the new one in: a kill between the
two leaves the month empty. Instead the data is written under ``{root}/.staging/`` (Spark skips folders starting
with a dot when it reads ``root``), then each month is swapped in. On Linux one ``renameat2(RENAME_EXCHANGE)``
exchanges the staged and the live folder atomically; where the file system refuses it (NFS, other systems) two
renames do: live -> ``.replaced/``, staged -> live. ``recover`` undoes what a killed swap left half done (a month
parked in ``.replaced/`` goes back) and is called before each write.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
from pathlib import Path

STAGING, REPLACED, REMOVED = ".staging", ".replaced", ".removed"


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two folders (Linux ``renameat2``); False when the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc without renameat2 (glibc < 2.28)
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, f"exchanging {a} and {b}: {os.strerror(code)}")


def staging_root(root: Path) -> Path:
    """Where Spark writes the months of one call (partitioned like ``root``); emptied before each write."""
    return root / STAGING


def recover(root: Path) -> None:
    """After a killed run: a month whose live folder is missing gets its replaced (old) folder back; every other
    leftover (replaced folders whose month was swapped in, half-deleted ones, the staging root) is removed."""
    replaced = root / REPLACED
    if replaced.is_dir():
        for old in sorted(replaced.glob("*/*")):
            live = root / old.relative_to(replaced)
            if not live.exists():
                live.parent.mkdir(parents=True, exist_ok=True)
                os.rename(old, live)
        shutil.rmtree(replaced)
    for leftover in (root / REMOVED, root / STAGING):
        shutil.rmtree(leftover, ignore_errors=True)


def swap_in(root: Path, folders: list[str]) -> None:
    """Move each staged ``folders`` entry (``year=Y/month=M``) into place, one rename pair per month."""
    for relative in folders:
        staged, live, old = root / STAGING / relative, root / relative, root / REPLACED / relative
        if not staged.is_dir():
            continue
        live.parent.mkdir(parents=True, exist_ok=True)
        if live.exists() and _exchange(staged, live):
            shutil.rmtree(staged, ignore_errors=True)  # now the old month; ``recover`` drops it after a kill
            continue
        if live.exists():
            old.parent.mkdir(parents=True, exist_ok=True)
            os.rename(live, old)
        os.rename(staged, live)  # a kill just before this leaves ``old`` for ``recover`` to put back
        shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(root / REPLACED, ignore_errors=True)
    shutil.rmtree(root / STAGING, ignore_errors=True)


def remove(root: Path, relative: str) -> None:
    """Delete a month folder: moved aside in one rename first, so a kill mid-delete never leaves half a month."""
    live, gone = root / relative, root / REMOVED / relative
    if live.exists():
        gone.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(gone, ignore_errors=True)
        os.rename(live, gone)
        shutil.rmtree(root / REMOVED)
    if live.parent.exists() and not any(live.parent.iterdir()):
        live.parent.rmdir()
