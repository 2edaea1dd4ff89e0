"""Where hvlab keeps what a run leaves behind, and which lab file a task uses.

State, reports, traces and the embedded simulated host's state go under one
folder: $HVLAB_HOME, else the `home` setting (hvlab section of invoke.yaml),
else `.hvlab/` in the current folder. Inside it, one folder per host and one per
lab on that host: `<home>/<host>/<lab>/`, where the embedded simulated host is
`sim` (its own state, host.state, lives there too) and a real host is named by
its address (`hv01.contoso.com`, with `_<port>` when the port is not WinRM's
default), so runs against two hosts never mix their reports. Nothing is ever
written next to the installed package.
"""

from __future__ import annotations

import os
import re
import urllib.parse
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


EMBEDDED_HOST = "sim"


def host_id(config: Any = None) -> str:
    """The folder name of the host a task works on (see the module's docstring)."""
    from hvlab.config import Settings

    raw = Settings.load(config).host
    if not raw:
        return EMBEDDED_HOST
    text = str(raw).strip()
    url = urllib.parse.urlsplit(text if "://" in text else f"https://{text}")
    try:
        name, port = (url.hostname or text).lower(), url.port
    except ValueError:
        name, port = text.lower(), None
    default = 5985 if url.scheme == "http" else 5986
    ident = name if port in (None, default) else f"{name}_{port}"
    ident = re.sub(r"[^a-z0-9._-]", "_", ident).strip(".") or "host"
    # A real host called "sim" must not share the embedded host's folder.
    return f"{ident}_{port or default}" if ident == EMBEDDED_HOST else ident


def state_dir(lab_name: str, base: Path | None = None, host: str | None = None) -> Path:
    """The folder that holds a lab's state, trace, reports and diagnostics on one host
    (`host` from host_id(); the embedded host when not given)."""
    return (base or home()) / (host or EMBEDDED_HOST) / lab_name


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
