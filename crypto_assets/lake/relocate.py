"""Move a lake written before the market level (``csv/{interval}``, ``parquet/{interval}``, ``reports/{interval}``)
to its place under ``spot/`` by renames: nothing is rewritten or downloaded, and the Parquet files keep their names,
sizes and times (so dataset_report's cached figures stay valid). Raw archives were under ``raw/spot/`` already."""

from __future__ import annotations

import os

from crypto_assets.layout import Layout


class RelocationError(RuntimeError):
    """An old and a new spot folder both exist; the message names them and says what to do."""


def relocate_legacy_spot(layout: Layout) -> list[str]:
    """Rename each old spot folder of ``layout``'s interval to its new place; returns what moved ("old -> new").

    Refuses (RelocationError, nothing moved) when a new folder already exists beside an old one: merging two lakes
    is a decision for their owner, not for a run."""
    moves = [(old, new) for old, new in layout.legacy_spot_dirs() if old.is_dir()]
    clashes = [f"{old} and {new}" for old, new in moves if new.exists()]
    if clashes:
        raise RelocationError(
            "the lake holds spot data both where it was before the market level and where it is now: "
            + "; ".join(clashes) + ". Keep one of each pair (move the other out of CRYPTO_DATA_DIR) and run again"
        )
    done = []
    for old, new in moves:
        new.parent.mkdir(parents=True, exist_ok=True)
        os.rename(old, new)
        done.append(f"{old.relative_to(layout.root)} -> {new.relative_to(layout.root)}")
    return done
