"""How each market's assets are named and grouped: spot keeps the design's plain names (``raw_monthly_klines``); a
futures market's chain carries its key prefix (``um/raw_monthly_klines``) in a group of its own, so lineage shows the
markets side by side."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from crypto_assets.binance.archives import MarketType
from crypto_assets.layout import Layout
from crypto_assets.resources import LakeResource

MARKET_NAMES = {MarketType.SPOT: "Binance spot", MarketType.UM: "Binance USD-M futures",
                MarketType.CM: "Binance COIN-M futures"}  # fmt: skip


@dataclass(frozen=True)
class MarketAssets:
    market: MarketType

    @property
    def prefix(self) -> list[str]:
        return [] if self.market is MarketType.SPOT else [self.market.value]

    @property
    def noun(self) -> str:
        """What the market's symbols are: spot pairs, futures contracts."""
        return "pairs" if self.market is MarketType.SPOT else "contracts"

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([*self.prefix, name])

    @property
    def universe_key(self) -> dg.AssetKey:
        return dg.AssetKey("pair_universe") if self.market is MarketType.SPOT else self.key("contract_universe")

    def group(self, spot_group: str) -> str:
        return spot_group if self.market is MarketType.SPOT else f"{self.market.value}_futures"

    def describe(self, doc: str) -> str:
        """``doc`` with ``{market}`` (the market's name) and ``{m}`` (its folder name) filled in."""
        return doc.format(market=MARKET_NAMES[self.market], m=self.market.value)

    def layout(self, lake: LakeResource) -> Layout:
        return lake.layout.for_market(self.market)
