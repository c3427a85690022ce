"""Every text colour against its background meets WCAG AA (4.5:1): the theme and each screen.

The screens are checked as drawn: every character the app renders, with the
colours it is rendered in (a dim one blended halfway into its background, as
terminals draw it), at rest and with every key and button pressed. Lines and
blocks (borders, the typed code's dots) are graphics and need 3:1 (WCAG 1.4.11).
"""

from __future__ import annotations

from typing import Any

import pytest
from rich.color import Color as RichColor
from ui_screens import SCREENS
from ui_support import KIOSK, make_app, until

from kiosk.ui.app import CONTRAST

TEXT_AA = 4.5
GRAPHICS_AA = 3.0


def luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def test_the_arithmetic():
    assert round(contrast((0, 0, 0), (255, 255, 255)), 1) == 21.0
    assert round(contrast(rgb("#777777"), rgb("#ffffff")), 2) == 4.48  # the classic near miss


@pytest.mark.parametrize("name", ["foreground", "primary", "secondary", "warning", "success"])
@pytest.mark.parametrize("ground", ["background", "surface", "panel"])
def test_theme_colours_on_theme_grounds(name, ground):
    colour, back = getattr(CONTRAST, name), getattr(CONTRAST, ground)
    assert contrast(rgb(colour), rgb(back)) >= TEXT_AA, f"{name} {colour} on {ground} {back}"


def test_theme_error_on_the_background():
    assert contrast(rgb(CONTRAST.error), rgb(CONTRAST.background)) >= TEXT_AA


def _triplet(colour: RichColor | None, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if colour is None or colour.is_default:
        return default
    triplet = colour.get_truecolor()
    return triplet.red, triplet.green, triplet.blue


def too_faint(app: Any) -> list[str]:
    """Every character drawn on the current screen below its contrast, described once."""
    found: dict[str, str] = {}
    for widget in app.screen.query("*"):
        if not widget.display or not widget.region.area:
            continue
        if not all(a.display for a in widget.ancestors_with_self[:-1]):
            continue
        for strip in widget.render_lines(widget.region.reset_offset):
            for segment in strip:
                text, style = segment.text.strip(), segment.style
                if not text or style is None:
                    continue
                back = _triplet(style.bgcolor, (0, 0, 0))
                fore = _triplet(style.color, (255, 255, 255))
                if style.reverse:
                    fore, back = back, fore
                if style.dim:
                    fore = tuple((f + b) // 2 for f, b in zip(fore, back, strict=True))  # type: ignore[assignment]
                graphics = all(0x2500 <= ord(ch) <= 0x259F for ch in text)
                need = GRAPHICS_AA if graphics else TEXT_AA
                ratio = contrast(fore, back)
                if ratio < need:
                    key = f"{type(widget).__name__}#{widget.id} {fore} on {back}"
                    found.setdefault(key, f"{key}: {ratio:.2f} < {need} in {text[:20]!r}")
    return sorted(found.values())


@pytest.mark.parametrize("screen", list(SCREENS))
async def test_every_text_on_every_screen_meets_aa(rig, admin, screen):
    app = make_app(rig.socket)
    async with app.run_test(size=KIOSK) as pilot:
        await until(pilot, lambda: app.link.up and app.last_status is not None, what="status")
        await SCREENS[screen](app, pilot, admin, rig)
        await pilot.pause()
        faint = too_faint(app)
        for target in app.screen.query("Button, .key"):  # as a finger on each shows it
            target.add_class("-pressed")
        await pilot.pause()
        faint += [f"pressed: {line}" for line in too_faint(app)]
    assert not faint, "\n".join(faint)
