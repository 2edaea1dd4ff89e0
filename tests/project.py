"""Where the project's own files are, for tests that read the source tree.

The program never uses these paths: it reads its files as package resources
(hvlab.resources). Tests read the tree to compare it with what ships."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
TEMPLATES = ROOT / "templates"
