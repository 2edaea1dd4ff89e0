"""Where hvlab keeps what a run leaves behind, and which lab file a task uses.

State, reports, traces and the embedded simulated host's state go under one
folder: $HVLAB_HOME, else the `home` setting (hvlab section of invoke.yaml),
else `.hvlab/` in the current folder. Nothing is ever written next to the
installed package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hvlab.errors import ConfigError

HOME_ENV = "HVLAB_HOME"


def _setting(config: Any, key: str) -> Any:
    if config is None:
        return None
    try:
        return config["hvlab"][key]
    except (KeyError, TypeError, AttributeError):
        return None


def home(config: Any = None) -> Path:
    """The folder that holds every lab's state and the embedded host's state."""
    raw = os.environ.get(HOME_ENV) or _setting(config, "home")
    if raw:
        return Path(str(raw)).expanduser()
    return Path.cwd() / ".hvlab"


def state_dir(lab_name: str, base: Path | None = None) -> Path:
    """The folder that holds a lab's state, trace, reports and diagnostics."""
    return (base or home()) / lab_name


def lab_path(config: Any = None, lab: str | None = None) -> tuple[Path, str]:
    """The lab file a task works on, and how it was chosen (for the task's first line).

    `--lab` (or the `lab` setting) names a file, relative to the current folder, or a
    lab that ships with hvlab by its name ('s2d-4node'). With neither, the default
    lab: labs/s2d-2node.yaml in the current folder when there is one (a checkout),
    else the copy inside the package."""
    from hvlab import resources

    given = lab or _setting(config, "lab")
    if given:
        path = Path(str(given)).expanduser()
        if path.exists() or path.suffix or len(path.parts) > 1:
            return path, "given"
        if str(given) in resources.lab_names():
            return _packaged(str(given)), "shipped with hvlab"
        raise ConfigError(
            f"no lab file {given!r} here, and hvlab ships no lab of that name "
            f"(shipped: {', '.join(resources.lab_names())})"
        )
    local = Path("labs") / f"{resources.DEFAULT_LAB}.yaml"
    if local.is_file():
        return local, "default"
    return _packaged(resources.DEFAULT_LAB), "default, shipped with hvlab"


def _packaged(name: str) -> Path:
    from hvlab import resources

    # Installed packages live on the file system (wheels are unpacked), so the
    # resource is a path the loader can read and show with line numbers.
    return Path(str(resources.lab_file(name)))
