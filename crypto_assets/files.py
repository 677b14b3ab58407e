"""Atomic file writes: a file is written under a temporary name beside its final one and renamed into place only
once complete, so a reader (or a run after a kill) finds the old file or the new one, never a part of one.

The temporary name is ``.{name}.{pid}.{n}.part``: hidden (no stage reads files starting with a dot), unique per
process and write, and carrying the writer's pid so ``lake.leftovers`` can remove what a killed process left.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".part"
_serial = itertools.count()  # next() on a count is atomic under the GIL: unique across writer threads


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for the block to write (and check); it replaces ``path`` when the block ends
    without an error and is removed when the block raises, leaving ``path`` as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{next(_serial)}{TEMP_SUFFIX}")
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through ``replacing``."""
    with replacing(path) as temp:
        temp.write_bytes(data.encode() if isinstance(data, str) else data)


def write_bytes(path: Path, data: bytes) -> None:
    """Create or overwrite ``path`` with ``data``: one open, write and close (``Path.write_bytes`` adds a buffer, a
    seek and a terminal check)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
