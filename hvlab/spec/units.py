"""Sizes in lab files: `256GB`, `4GiB`, `512MB` or a plain number of bytes.

The units follow PowerShell, whose numeric suffixes KB/MB/GB/TB/PB are powers of
1024 (so `256GB` in a lab file is the same number as `256GB` typed into New-VHD).
The IEC spellings KiB..PiB mean the same. Decimal fractions are accepted when
they come out as whole bytes (`1.5GB`).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
PIB = 1024**5

_UNITS: dict[str, int] = {
    "": 1,
    "B": 1,
    "KB": KIB,
    "KIB": KIB,
    "MB": MIB,
    "MIB": MIB,
    "GB": GIB,
    "GIB": GIB,
    "TB": TIB,
    "TIB": TIB,
    "PB": PIB,
    "PIB": PIB,
}

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")

SIZE_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([KMGTP]i?B|B)?\s*$"
"""The same grammar as a JSON-Schema pattern (for editor completion)."""


def parse_size(value: object) -> int:
    """Bytes from an int or a size string; ValueError with a readable reason otherwise."""
    if isinstance(value, bool):
        # YAML turns `yes`/`no` into booleans; a size is never one.
        raise ValueError("a size must be a number of bytes or a string such as 256GB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size {value} is negative")
        return value
    if isinstance(value, float):
        raise ValueError("a size must be a whole number of bytes or carry a unit, such as 1.5GB")
    if not isinstance(value, str):
        raise ValueError("a size must be a number of bytes or a string such as 256GB")
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"size {_clip(text)} is negative")
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(
            f"{_clip(text)!r} is not a size; write a number with a unit such as 512MB, 4GiB, 256GB"
        )
    number, unit = match.group(1), match.group(2).upper()
    if unit not in _UNITS:
        raise ValueError(
            f"unknown size unit {_clip(match.group(2))!r} in {_clip(text)!r}; "
            "use B, KB, MB, GB, TB, PB (or KiB..PiB), all powers of 1024 as in PowerShell"
        )
    try:
        exact = Decimal(number) * _UNITS[unit]
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        raise ValueError(f"{_clip(text)!r} is not a size") from None
    if exact != exact.to_integral_value():
        raise ValueError(f"{_clip(text)!r} is not a whole number of bytes")
    return int(exact)


def format_size(n: int) -> str:
    """Human form with one decimal: 8.0 GiB, 2.1 TiB (binary units, as hvlab parses them)."""
    for unit, factor in (("PiB", PIB), ("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
