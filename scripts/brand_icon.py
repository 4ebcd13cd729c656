"""Draw the brand icon HACS and HA (2026.3+) show: custom_components/adaptive_modbus/brand/.

A bus line with three devices below, and a pulse above whose read ticks crowd where
the signal moves (the adaptive polling). Run: .venv/bin/python scripts/brand_icon.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

BRAND = (
    Path(__file__).resolve().parent.parent
    / "custom_components"
    / "adaptive_modbus"
    / "brand"
)
BLUE = (16, 74, 120, 255)
WHITE = (255, 255, 255, 255)
AMBER = (255, 196, 0, 255)


def draw(size: int) -> Image.Image:
    """Draw the icon at ``size`` x ``size`` pixels (on a 256 grid)."""
    s = size / 256
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((8 * s, 8 * s, 248 * s, 248 * s), radius=44 * s, fill=BLUE)
    bus_y = 176 * s
    d.line((40 * s, bus_y, 216 * s, bus_y), fill=WHITE, width=round(10 * s))
    for x in (64, 128, 192):
        d.line((x * s, bus_y, x * s, 208 * s), fill=WHITE, width=round(8 * s))
        box = ((x - 16) * s, 200 * s, (x + 16) * s, 226 * s)
        d.rounded_rectangle(box, radius=5 * s, fill=WHITE)
    pulse = [
        (36, 120),
        (80, 120),
        (100, 70),
        (122, 140),
        (142, 56),
        (160, 120),
        (220, 120),
    ]
    d.line(
        [(x * s, y * s) for x, y in pulse],
        fill=AMBER,
        width=round(12 * s),
        joint="curve",
    )
    for x in (44, 92, 108, 124, 140, 156, 204):
        d.ellipse(((x - 5) * s, 34 * s, (x + 5) * s, 44 * s), fill=AMBER)
    return img


def main() -> None:
    """Write icon.png (256 px) and icon@2x.png (512 px)."""
    BRAND.mkdir(exist_ok=True)
    draw(256).save(BRAND / "icon.png", optimize=True)
    draw(512).save(BRAND / "icon@2x.png", optimize=True)


if __name__ == "__main__":
    main()
