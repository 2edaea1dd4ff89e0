"""Base images from an ISO, on the host: image.build and image.list (R-115..R-123).

image.build mounts the ISO, picks an edition from its install.wim/esd, makes a
dynamic Generation 2 VHDX (EFI system, MSR and Windows partitions), applies the
image, makes it bootable, adds packages and stages roles offline, and writes a
sidecar JSON next to the VHDX: edition, version, build, language, staged roles,
the ISO's SHA-256. All of it is structured cmdlet calls, plus two constant
scripts (bcdboot, upload chunks).

Files, for an image NAME in the images folder (default C:\\hvlab\\images):

    NAME.building.vhdx, NAME.building.json   while a build runs (never used by labs)
    NAME.vhdx, NAME.json                     a finished image: the sidecar is renamed last

A lab refers to NAME only when both final files exist (preflight reads the
sidecar). A failed or interrupted build removes its .building files; one that was
killed leaves them, and the next build of NAME removes them first. An existing
image is never overwritten: the same ISO, edition, roles and packages again do
nothing; anything else under the same name is refused.

This module checks the request (before any host is contacted) and holds the two
tasks; the steps on the host are hvlab.imagebuild.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from hvlab.errors import ConfigError
from hvlab.spec import names
from hvlab.spec.models import IMAGES_FOLDER
from hvlab.spec.units import GIB, TIB, format_size, parse_size
from hvlab.steps.common import SILENT, text, val
from hvlab.steps.images import sidecar_facts

ISO_FOLDER = "C:\\hvlab\\iso"
DEFAULT_SIZE = 60 * GIB
# Windows Server 2022 needs at least 32 GB of disk (hardware requirements), R-115.
MIN_SIZE = 32 * GIB
MAX_SIZE = 64 * TIB  # the VHDX limit
SIDECAR_FORMAT = 1
_FEATURE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_ISO_FILE_RE = re.compile(r"^[A-Za-z0-9 _.()+-]{1,120}\.iso$", re.IGNORECASE)


def presets() -> dict[str, tuple[str, ...]]:
    """--features shorthands: the roles hvlab installs on nodes (R-46) and on the DC (R-40)."""
    from hvlab.steps.guests import NODE_FEATURES

    return {"node": NODE_FEATURES, "dc": ("AD-Domain-Services",)}


# --- the request, checked before anything is contacted ------------------------------


@dataclasses.dataclass
class Request:
    name: str | None
    iso: str  # on the host (after an upload: where it landed)
    iso_local: Path | None
    edition: str | None
    size: int
    features: tuple[str, ...]
    packages: tuple[str, ...]
    folder: str

    def identity(self, iso_sha256: str, packages: list[str]) -> dict[str, Any]:
        """What a rebuild compares before it mounts anything."""
        return {
            "iso_sha256": iso_sha256,
            "edition": self.edition,
            "features": sorted(f.lower() for f in self.features),
            "packages": sorted(packages),
        }


def _path(value: str, what: str) -> str:
    try:
        names.check_windows_path(value, what)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return value.rstrip("\\")


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def request(
    *,
    name: str | None = None,
    iso: str | None = None,
    iso_local: str | None = None,
    edition: str | None = None,
    size: str | int | None = None,
    features: str | None = None,
    packages: str | None = None,
    folder: str | None = None,
) -> Request:
    """The build request, or ConfigError (exit 2) naming what is wrong. Nothing is sent
    to the host before this passes; no value reaches PowerShell as text (R-123)."""
    if bool(iso) == bool(iso_local):
        raise ConfigError(
            "image.build needs exactly one of --iso PATH_ON_HOST or --iso-local PATH (a file on "
            "this machine, uploaded first)"
        )
    folder = _path(folder or IMAGES_FOLDER, "--folder")
    local: Path | None = None
    if iso_local:
        local = Path(iso_local).expanduser()
        if not local.is_file():
            raise ConfigError(f"--iso-local {names.show(iso_local, 80)}: no such file here")
        if not _ISO_FILE_RE.match(local.name):
            raise ConfigError(
                f"--iso-local: the file name {names.show(local.name, 80)} must end in .iso and "
                "hold only letters, digits, spaces and _ . ( ) + -"
            )
        iso = f"{ISO_FOLDER}\\{local.name}"
    assert iso is not None
    iso = _path(iso, "--iso")
    if not iso.lower().endswith(".iso"):
        raise ConfigError(f"--iso {names.show(iso, 80)} is not an .iso file")
    if name is not None:
        try:
            names.check_image_name(name)
        except ValueError as err:
            raise ConfigError(f"--name: {err}") from None
    if edition is not None and (
        not edition.strip() or len(edition) > 128 or not edition.isprintable()
    ):
        raise ConfigError("--edition must be an image name as the ISO lists it, or its index")
    try:
        size_bytes = parse_size(size) if size not in (None, "") else DEFAULT_SIZE
    except ValueError as err:
        raise ConfigError(f"--size: {err}") from None
    if not MIN_SIZE <= size_bytes <= MAX_SIZE:
        raise ConfigError(
            f"--size {format_size(size_bytes)}: Windows Server needs at least "
            f"{format_size(MIN_SIZE)}, a VHDX holds at most 64 TiB"
        )
    wanted: list[str] = []
    for item in _split(features):
        expanded = presets().get(item.lower())
        for feature in expanded or (item,):
            if not _FEATURE_RE.match(feature):
                raise ConfigError(f"--features: {names.show(feature)} is not a feature name")
            if feature.lower() not in (w.lower() for w in wanted):
                wanted.append(feature)
    pkgs: list[str] = []
    for item in _split(packages):
        path = _path(item, "--packages")
        if not path.lower().endswith((".msu", ".cab")):
            raise ConfigError(f"--packages: {names.show(path, 80)} is not a .msu or .cab file")
        pkgs.append(path)
    return Request(name, iso, local, edition, size_bytes, tuple(wanted), tuple(pkgs), folder)


def parse_sidecar(raw: list[Any]) -> dict[str, Any] | None:
    """A sidecar in the format this hvlab writes (Get-Content -Raw), or None."""
    return sidecar_facts(raw, SIDECAR_FORMAT)


# --- the tasks ------------------------------------------------------------------------


def _say(stream: IO[str]) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return say


def build(
    config: Any = None,
    *,
    name: str | None = None,
    iso: str | None = None,
    iso_local: str | None = None,
    edition: str | None = None,
    size: str | None = None,
    features: str | None = None,
    packages: str | None = None,
    folder: str | None = None,
    as_json: bool = False,
    yes: bool = False,
    state_base: Path | None = None,
) -> dict[str, Any]:
    """image.build: see the module docstring. Bad input fails before the host is contacted."""
    from hvlab.lab import confirm
    from hvlab.session import open_session

    req = request(
        name=name,
        iso=iso,
        iso_local=iso_local,
        edition=edition,
        size=size,
        features=features,
        packages=packages,
        folder=folder,
    )
    out = sys.stderr if as_json else sys.stdout
    say = _say(out)
    with open_session(config, state_base=state_base) as session:
        say(f"hvlab image.build on {session.description}")
        if not session.simulated and not yes:
            confirm(f"Build a base image in {req.folder} on {session.description}?")
        from hvlab.imagebuild import Builder

        result = Builder(session.host, req, say).run()
        modelled = session.modelled_seconds()
    if modelled is not None:
        result["modelled_clock_seconds"] = round(modelled, 1)
    if as_json:
        print(json.dumps(result, indent=2, sort_keys=True))
    return result


def list_images(
    config: Any = None,
    *,
    folder: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
) -> list[dict[str, Any]]:
    """image.list: the images in the folder with their sidecar facts."""
    from hvlab.session import open_session

    where = _path(folder or IMAGES_FOLDER, "--folder")
    out = sys.stderr if as_json else sys.stdout
    with open_session(config, state_base=state_base) as session:
        print(f"hvlab image.list on {session.description}", file=out, flush=True)
        rows = _rows(session.host, where)
    if as_json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    else:
        print(_table(where, rows))
    return rows


def _rows(host: Any, folder: str) -> list[dict[str, Any]]:
    files = host.run("Get-ChildItem", Path=folder, File=True, **SILENT)
    sizes = {text(val(f, "Name")).lower(): int(val(f, "Length", 0) or 0) for f in files}
    shown = {text(val(f, "Name")).lower(): text(val(f, "Name")) for f in files}
    sidecars = sorted(n for n in shown if n.endswith(".json") and not n.endswith(".building.json"))
    bodies = host.map(
        [
            ("Get-Content", {"Path": f"{folder}\\{shown[n]}", "Raw": True, **SILENT})
            for n in sidecars
        ]
    )
    rows: list[dict[str, Any]] = []
    described: set[str] = set()
    for n, body in zip(sidecars, bodies, strict=True):
        facts = parse_sidecar(body)
        vhdx = n[: -len(".json")] + ".vhdx"
        if facts is None or vhdx not in sizes:
            continue
        described.add(vhdx)
        rows.append(
            {
                "name": facts.get("name"),
                "path": f"{folder}\\{shown[vhdx]}",
                "state": "ready",
                "edition": facts.get("edition"),
                "image_name": facts.get("image_name"),
                "version": facts.get("version"),
                "language": facts.get("language"),
                "features": facts.get("features") or [],
                "iso_sha256": (facts.get("iso") or {}).get("sha256"),
                "file_bytes": sizes[vhdx],
            }
        )
    for n in sorted(shown):
        if not n.endswith(".vhdx") or n in described:
            continue
        building = n.endswith(".building.vhdx")
        rows.append(
            {
                "name": shown[n][: -len(".building.vhdx") if building else -len(".vhdx")],
                "path": f"{folder}\\{shown[n]}",
                "state": "incomplete build (the next image.build of this name removes it)"
                if building
                else "no sidecar (not built by image.build; a lab can use it by path)",
                "file_bytes": sizes[n],
            }
        )
    return rows


def _table(folder: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f"no images in {folder}; build one with 'invoke image.build --iso PATH'"
    lines = [f"images in {folder}:"]
    for r in rows:
        if r["state"] != "ready":
            lines.append(f"  {r['name']:<28} {r['state']}")
            continue
        roles = ", ".join(r["features"]) or "-"
        lines.append(
            f"  {r['name']:<28} {r['edition']:<22} {r['version']:<16} {r['language']:<6} "
            f"{format_size(r['file_bytes']):>9}  roles: {roles}"
        )
    return "\n".join(lines)
