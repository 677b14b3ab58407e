"""Whether a process is still running: for files a process leaves behind (temporary files, a class archive being
written, a server's pid file), decided by its pid."""

from __future__ import annotations

import os
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Running (a zombie left by a parent that did not reap it yet counts as gone; another user's process counts
    as running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
