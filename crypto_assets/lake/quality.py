"""Data-quality rules over the figures each stage records: what passes, and the figures that explain why."""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto_assets.lake.raw import FAILED, OK, PairMonth


@dataclass
class Outcome:
    name: str
    passed: bool
    severity: str  # "ERROR" or "WARN": how bad a failure is
    description: str
    metadata: dict = field(default_factory=dict)


def archives_verified(entries: dict[str, PairMonth], verified: dict[str, bool]) -> Outcome:
    """Every ok archive matched its CHECKSUM when fetched and still does on disk; no pair failed."""
    failed = sorted(s for s, e in entries.items() if e.status == FAILED)
    mismatched = sorted(s for s, ok in verified.items() if not ok)
    ok = sum(1 for e in entries.values() if e.status == OK)
    passed = not failed and not mismatched
    text = "all archives verified" if passed else f"failed: {failed[:20]}; sha256 mismatch on disk: {mismatched[:20]}"
    return Outcome(
        "archives_verified", passed, "ERROR", text,
        {"files_ok": ok, "files_failed": len(failed), "sha256_mismatches": len(mismatched)},
    )  # fmt: skip


def csv_rows_match_archives(per_symbol: dict[str, dict]) -> Outcome:
    """Rows per pair equal the archive's rows minus the duplicates dropped."""
    bad = sorted(s for s, p in per_symbol.items() if p["rows"] != p["archive_rows"] - p["duplicates_dropped"])
    rows = sum(p["rows"] for p in per_symbol.values())
    archive_rows = sum(p["archive_rows"] for p in per_symbol.values())
    dups = sum(p["duplicates_dropped"] for p in per_symbol.values())
    return Outcome(
        "rows_match_archives", not bad, "ERROR",
        "rows = archive rows - duplicates for every pair" if not bad else f"mismatch for {bad[:20]}",
        {"rows": rows, "archive_rows": archive_rows, "duplicates_dropped": dups, "pairs_mismatched": len(bad)},
    )  # fmt: skip


def csv_open_times_on_grid(per_symbol: dict[str, dict]) -> Outcome:
    """Every open_time is inside the month (enforced while normalizing) and on the interval's grid."""
    off = {s: p["off_grid"] for s, p in per_symbol.items() if p["off_grid"]}
    return Outcome(
        "open_times_on_grid", not off, "ERROR",
        "all open times on the interval grid" if not off else f"off-grid open times: {dict(list(off.items())[:20])}",
        {"off_grid_rows": sum(off.values()), "pairs_off_grid": len(off)},
    )  # fmt: skip
