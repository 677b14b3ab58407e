"""The materialized universes in the lake, which the monthly assets read: spot's pairs (``universe/pair_universe.json``)
and each futures market's contracts (``universe/{market}_contract_universe.json``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

from crypto_assets.binance.futures import Contract, FuturesUniverse
from crypto_assets.binance.universe import Pair, Universe
from crypto_assets.files import write_atomically
from crypto_assets.layout import Layout


def write_universe(layout: Layout, universe: Universe) -> None:
    """Write ``universe`` as JSON, atomically: a failed run never leaves a half-written universe behind."""
    payload = {
        "mode": universe.mode,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fallback_used": universe.fallback_used,
        "count": len(universe.pairs),
        "rejected": universe.rejected,
        "excluded_leveraged": universe.excluded_leveraged,
        "status_note": universe.status_note,
        "pairs": [asdict(p) for p in universe.pairs],
    }
    write_atomically(layout.universe_file, json.dumps(payload, indent=1))


def read_universe(layout: Layout) -> Universe:
    """The last universe pair_universe wrote; FileNotFoundError naming the file when there is none yet."""
    path = layout.universe_file
    if not path.exists():
        raise FileNotFoundError(f"no pair universe at {path}; materialize pair_universe first")
    payload = json.loads(path.read_text())
    return Universe(
        mode=payload["mode"],
        pairs=[Pair(**p) for p in payload["pairs"]],
        fallback_used=payload.get("fallback_used", False),
        rejected=payload.get("rejected", []),
        excluded_leveraged=payload.get("excluded_leveraged", []),
        status_note=payload.get("status_note"),
    )


def write_contract_universe(layout: Layout, universe: FuturesUniverse) -> None:
    """Write a futures market's contract universe (``layout.market``) as JSON, atomically."""
    payload = {
        "market": universe.market,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "count": len(universe.contracts),
        "exchange_info": universe.exchange_info,
        "status_note": universe.status_note,
        "rejected": universe.rejected,
        "excluded_delivery": universe.excluded_delivery,
        "other_quotes": universe.other_quotes,
        "contracts": [asdict(c) for c in universe.contracts],
    }
    write_atomically(layout.universe_file, json.dumps(payload, indent=1))


def read_contract_universe(layout: Layout) -> FuturesUniverse:
    """The last contract universe of ``layout.market`` its universe asset wrote; FileNotFoundError naming the file
    and the asset when there is none yet."""
    path = layout.universe_file
    if not path.exists():
        raise FileNotFoundError(f"no {layout.market.value} contract universe at {path}; materialize "
                                f"{layout.market.value}/contract_universe first")  # fmt: skip
    payload = json.loads(path.read_text())
    return FuturesUniverse(
        market=payload["market"],
        contracts=[Contract(**c) for c in payload["contracts"]],
        exchange_info=payload.get("exchange_info", "not asked"),
        status_note=payload.get("status_note"),
        rejected=payload.get("rejected", []),
        excluded_delivery=payload.get("excluded_delivery", []),
        other_quotes=payload.get("other_quotes", []),
    )


def universe_symbols(layout: Layout) -> list[str]:
    """The symbols the monthly assets of ``layout.market`` cover: spot's pairs, or the futures market's contracts."""
    if layout.market.is_futures:
        return read_contract_universe(layout).symbols
    return read_universe(layout).symbols
