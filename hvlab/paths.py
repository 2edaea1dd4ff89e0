"""Where hvlab's own files live: the project root holds labs/, templates/, unattend/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
TEMPLATES = ROOT / "templates"
UNATTEND = ROOT / "unattend"
DEFAULT_LAB = LABS / "s2d-2node.yaml"


def state_dir(lab_name: str, base: Path | None = None) -> Path:
    """The folder that holds a lab's state, trace, reports and diagnostics."""
    return (base or Path.cwd() / ".hvlab") / lab_name


def template(relative: str) -> str:
    """The text of a constant script from templates/, sent unchanged."""
    return (TEMPLATES / relative).read_text(encoding="utf-8")
