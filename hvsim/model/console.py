"""What a VM's console shows, as Msvm_VirtualSystemManagementService's
GetVirtualSystemThumbnailImage hands it out: raw RGB 565, little-endian, row by row
(learn.microsoft.com, "GetVirtualSystemThumbnailImage method of the
Msvm_VirtualSystemManagementService class": "The requested image data, in raw RGB 565
format").

The picture depends on the VM's state and its guest's phase: the firmware's boot
summary when no OS loads, a spinner while Windows boots, Setup's "Getting devices
ready" in specialize, the OOBE password page, the setup error dialog of a broken
answer file (R-33), the lock screen once Windows runs. Layouts and colours are
modelled (close to Windows Server 2022's screens, drawn with a 5x7 font); what is
claimed is that the image follows the state, so a person looking at the thumbnail
of a stuck guest sees where it stopped.
"""

from __future__ import annotations

import dataclasses

RGB = tuple[int, int, int]

# 5x7 glyphs, one string of five 0/1 per row.
_FONT: dict[str, tuple[str, ...]] = {
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "B": ("11110", "10001", "10001", "11110", "10001", "10001", "11110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "D": ("11110", "10001", "10001", "10001", "10001", "10001", "11110"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "G": ("01110", "10001", "10000", "10111", "10001", "10001", "01111"),
    "H": ("10001", "10001", "10001", "11111", "10001", "10001", "10001"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "J": ("00111", "00010", "00010", "00010", "00010", "10010", "01100"),
    "K": ("10001", "10010", "10100", "11000", "10100", "10010", "10001"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "N": ("10001", "10001", "11001", "10101", "10011", "10001", "10001"),
    "O": ("01110", "10001", "10001", "10001", "10001", "10001", "01110"),
    "P": ("11110", "10001", "10001", "11110", "10000", "10000", "10000"),
    "Q": ("01110", "10001", "10001", "10001", "10101", "10010", "01101"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    "U": ("10001", "10001", "10001", "10001", "10001", "10001", "01110"),
    "V": ("10001", "10001", "10001", "10001", "10001", "01010", "00100"),
    "W": ("10001", "10001", "10001", "10101", "10101", "10101", "01010"),
    "X": ("10001", "10001", "01010", "00100", "01010", "10001", "10001"),
    "Y": ("10001", "10001", "01010", "00100", "00100", "00100", "00100"),
    "Z": ("11111", "00001", "00010", "00100", "01000", "10000", "11111"),
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    ":": ("00000", "01100", "01100", "00000", "01100", "01100", "00000"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    "+": ("00000", "00100", "00100", "11111", "00100", "00100", "00000"),
    " ": ("00000",) * 7,
}

BLACK: RGB = (0, 0, 0)
WHITE: RGB = (255, 255, 255)
SETUP_BLUE: RGB = (0, 99, 177)  # Windows' setup and restart screens
LOCK_BLUE: RGB = (16, 60, 120)  # the lock screen's picture, much simplified
DIALOG_GREY: RGB = (240, 240, 240)
ERROR_RED: RGB = (200, 40, 40)
FIRMWARE_GREY: RGB = (96, 96, 96)

# Design size of every screen; render() scales to the size asked for.
BASE_W, BASE_H = 320, 240


@dataclasses.dataclass(frozen=True)
class Screen:
    """One console picture: a background, boxes (x, y, w, h, colour) and text lines
    (x or None for centred, y, scale, colour, text) on the 320x240 design grid."""

    name: str
    background: RGB
    boxes: tuple[tuple[int, int, int, int, RGB], ...] = ()
    texts: tuple[tuple[int | None, int, int, RGB, str], ...] = ()


def _spinner(y: int, colour: RGB) -> tuple[tuple[int, int, int, int, RGB], ...]:
    return tuple((136 + i * 10, y, 6, 6, colour) for i in range(5))


def _logo(y: int) -> tuple[tuple[int, int, int, int, RGB], ...]:
    blue = (0, 120, 215)
    return tuple((148 + dx, y + dy, 11, 11, blue) for dx in (0, 13) for dy in (0, 13))


SCREENS: dict[str, Screen] = {
    "no-os": Screen(
        "no-os",
        BLACK,
        texts=(
            (16, 24, 1, WHITE, "VIRTUAL MACHINE BOOT SUMMARY"),
            (16, 48, 1, WHITE, "NO OPERATING SYSTEM WAS LOADED."),
        ),
    ),
    "firmware": Screen(
        "firmware", BLACK, boxes=_logo(90), texts=((None, 200, 1, FIRMWARE_GREY, "HYPER-V"),)
    ),
    "booting": Screen("booting", BLACK, boxes=_logo(80) + _spinner(150, WHITE)),
    "specialize": Screen(
        "specialize",
        BLACK,
        boxes=_spinner(140, WHITE),
        texts=((None, 110, 1, WHITE, "GETTING DEVICES READY"),),
    ),
    "oobe": Screen(
        "oobe",
        SETUP_BLUE,
        boxes=((40, 90, 240, 14, WHITE), (40, 112, 240, 14, WHITE)),
        texts=(
            (None, 40, 2, WHITE, "CUSTOMIZE SETTINGS"),
            (None, 70, 1, WHITE, "TYPE A PASSWORD"),
        ),
    ),
    "setup-error": Screen(
        "setup-error",
        SETUP_BLUE,
        boxes=((30, 70, 260, 100, DIALOG_GREY), (30, 70, 260, 14, ERROR_RED)),
        texts=(
            (None, 74, 1, WHITE, "WINDOWS SETUP"),
            (None, 100, 1, BLACK, "COULD NOT PARSE OR PROCESS"),
            (None, 112, 1, BLACK, "THE UNATTEND ANSWER FILE"),
            (None, 124, 1, BLACK, "FOR PASS SPECIALIZE"),
        ),
    ),
    "restarting": Screen(
        "restarting",
        SETUP_BLUE,
        boxes=_spinner(140, WHITE),
        texts=((None, 110, 1, WHITE, "RESTARTING"),),
    ),
    "lock": Screen(
        "lock",
        LOCK_BLUE,
        texts=(
            (16, 170, 4, WHITE, "08:00"),
            (16, 210, 1, WHITE, "PRESS CTRL+ALT+DEL TO UNLOCK"),
        ),
    ),
}


def screen_of(vm: object) -> Screen:
    """What the console of `vm` (a running or paused hvsim VM) shows now."""
    from hvsim.model import guest as G

    g = getattr(vm, "guest", None)
    if g is None:
        return SCREENS["no-os"]
    phase = g.phase()
    if phase in (G.OFF, G.FIRMWARE):
        return SCREENS["firmware"]
    if g.setup == "failed":
        return SCREENS["setup-error"]
    if phase == G.SPECIALIZE:
        return SCREENS["specialize"]
    if phase == G.OOBE or (phase == G.READY and g.setup == "no_password"):
        return SCREENS["oobe"]
    if phase == G.BOOTING:
        return SCREENS["booting"]
    if phase == G.RESTARTING:
        return SCREENS["restarting"]
    return SCREENS["lock"]


def draw(screen: Screen) -> list[list[RGB]]:
    """The screen on its 320x240 design grid, as rows of RGB pixels."""
    px = [[screen.background] * BASE_W for _ in range(BASE_H)]
    for x, y, w, h, colour in screen.boxes:
        for yy in range(max(0, y), min(BASE_H, y + h)):
            row = px[yy]
            for xx in range(max(0, x), min(BASE_W, x + w)):
                row[xx] = colour
    for x, y, scale, colour, text in screen.texts:
        width = len(text) * 6 * scale - scale
        left = (BASE_W - width) // 2 if x is None else x
        for i, ch in enumerate(text):
            glyph = _FONT.get(ch, _FONT[" "])
            for gy, bits in enumerate(glyph):
                for gx, bit in enumerate(bits):
                    if bit != "1":
                        continue
                    for sy in range(scale):
                        for sx in range(scale):
                            xx = left + (i * 6 + gx) * scale + sx
                            yy = y + gy * scale + sy
                            if 0 <= xx < BASE_W and 0 <= yy < BASE_H:
                                px[yy][xx] = colour
    return px


def rgb565(colour: RGB) -> int:
    r, g, b = colour
    return ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)


def render(screen: Screen, width: int, height: int) -> bytes:
    """The screen scaled (nearest pixel) to width x height, RGB 565 little-endian."""
    px = draw(screen)
    out = bytearray()
    for y in range(height):
        row = px[y * BASE_H // height]
        for x in range(width):
            out += rgb565(row[x * BASE_W // width]).to_bytes(2, "little")
    return bytes(out)
