"""The files hvlab reads at run time, shipped inside the package.

Lab files (hvlab.labs), the constant PowerShell scripts (hvlab.templates), the
unattend.xml template (hvlab.unattend) and the rule reference (hvlab/rules.md)
are package resources, read with importlib.resources: a checkout, an editable
install and an installed wheel read the same files, from any working folder.
In the source tree they live in labs/, templates/ and unattend/ (setup.py maps
those folders into the package).

A resource that is missing or unreadable means a broken install: ResourceError
names it and says how to reinstall (exit 2, no traceback).
"""

from __future__ import annotations

import functools
from importlib import resources
from importlib.resources.abc import Traversable

from hvlab.errors import ConfigError

PACKAGES = {
    "labs": "hvlab.labs",
    "templates": "hvlab.templates",
    "unattend": "hvlab.unattend",
    "hvlab": "hvlab",
}

DEFAULT_LAB = "s2d-2node"

REINSTALL = "pip install --force-reinstall hvlab"


class ResourceError(ConfigError):
    """A file that ships with hvlab is missing or unreadable: the install is broken."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        super().__init__(
            f"hvlab's packaged file {name} {reason}: the installation is broken; "
            f"reinstall it ({REINSTALL})"
        )


def _root(kind: str) -> Traversable:
    try:
        return resources.files(PACKAGES[kind])
    except (ModuleNotFoundError, KeyError):
        raise ResourceError(f"{kind}/", "is missing") from None


def resource(kind: str, relative: str) -> Traversable:
    """The packaged file `relative` (slash-separated) of `kind` (labs, templates, ...)."""
    node = _root(kind)
    for part in relative.split("/"):
        node = node / part
    return node


def text(kind: str, relative: str) -> str:
    """The text of a packaged file; ResourceError when it is missing or unreadable."""
    name = f"{kind}/{relative}" if kind != "hvlab" else relative
    node = resource(kind, relative)
    try:
        return node.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResourceError(name, "is missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ResourceError(name, f"cannot be read ({err})") from None


@functools.cache
def template(relative: str) -> str:
    """A constant script from templates/ (host/... or guest/...), sent unchanged."""
    return text("templates", relative)


def lab_names() -> list[str]:
    """The labs that ship with hvlab, by name (file name without .yaml)."""
    try:
        entries = list(_root("labs").iterdir())
    except OSError:
        raise ResourceError("labs/", "cannot be listed") from None
    return sorted(e.name[: -len(".yaml")] for e in entries if e.name.endswith(".yaml"))


def lab_file(name: str) -> Traversable:
    """A shipped lab by name ('s2d-4node'); ResourceError when the install lacks it."""
    node = resource("labs", f"{name}.yaml")
    if not node.is_file():
        raise ResourceError(f"labs/{name}.yaml", "is missing")
    return node
