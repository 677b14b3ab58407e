"""A coverage chart as PNG with the standard library only (zlib + struct): rows per month as bars on top, and a
months x symbols grid below (a filled cell = the symbol has candles that month). Labels use a 3x5 pixel font.

A plotting library would add ~50 MB of dependencies for two rectangles-based figures; this is 100 lines.
"""

from __future__ import annotations

import struct
import zlib

_FONT = {  # 3x5 glyphs, rows top to bottom, bits left to right
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", "-": "000000111000000", " ": "000000000000000",
}  # fmt: skip
_BG, _AXIS, _TEXT = (255, 255, 255), (90, 90, 90), (30, 30, 30)
_BAR, _CELL, _EMPTY = (46, 110, 180), (60, 150, 90), (235, 235, 235)


class _Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(_BG) * width * height)

    def rect(self, x: int, y: int, w: int, h: int, color: tuple[int, int, int]) -> None:
        row = bytes(color) * max(0, min(w, self.width - x))
        for yy in range(max(0, y), min(self.height, y + h)):
            start = (yy * self.width + x) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, text: str, scale: int = 2) -> None:
        for ch in text:
            glyph = _FONT.get(ch, _FONT[" "])
            for i, bit in enumerate(glyph):
                if bit == "1":
                    self.rect(x + (i % 3) * scale, y + (i // 3) * scale, scale, scale, _TEXT)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
        return b"\x89PNG\r\n\x1a\n" + body


def coverage_png(months: list[str], symbols: list[str], present: set[tuple[str, str]], rows: dict[str, int]) -> bytes:
    """Bars of rows per month over a months x symbols presence grid; months label the x axis (YYYY-MM)."""
    cell_w = max(12, 40 if len(months) <= 24 else 12)
    cell_h = 2 if len(symbols) > 150 else 4
    left, top, bars_h, label_h = 10, 10, 120, 30
    width = left * 2 + cell_w * max(len(months), 1)
    height = top + bars_h + label_h + cell_h * max(len(symbols), 1) + 10
    canvas = _Canvas(width, height)
    peak = max(rows.values(), default=0) or 1
    for i, month in enumerate(months):
        h = round(bars_h * rows.get(month, 0) / peak)
        canvas.rect(left + i * cell_w + 2, top + bars_h - h, cell_w - 4, h, _BAR)
        if cell_w >= 40:
            canvas.text(left + i * cell_w + 1, top + bars_h + 8, month[2:], scale=1 if cell_w < 60 else 2)
        elif i % 6 == 0:
            canvas.text(left + i * cell_w, top + bars_h + 8, month[2:], scale=1)
    canvas.rect(left, top + bars_h, cell_w * len(months), 1, _AXIS)
    grid_top = top + bars_h + label_h
    for j, symbol in enumerate(symbols):
        for i, month in enumerate(months):
            color = _CELL if (month, symbol) in present else _EMPTY
            canvas.rect(left + i * cell_w + 1, grid_top + j * cell_h, cell_w - 2, cell_h - (cell_h > 2), color)
    return canvas.png()
