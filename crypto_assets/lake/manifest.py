"""Small JSON manifests written beside each month's files, atomically, so a stage knows what it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crypto_assets.files import write_atomically


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` to ``path`` atomically; a file that already holds exactly these bytes is left as it is
    (a re-run that changed nothing touches nothing)."""
    text = json.dumps(payload, indent=1, sort_keys=True)
    try:
        if path.read_text() == text:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    write_atomically(path, text)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
