"""The lab folder and the base images."""

from __future__ import annotations

import re

from hvlab.spec.models import WINDOWS_BUILDS, Lab
from hvlab.spec.names import show
from hvlab.spec.rules.common import Loc, Problem

# Top-level folders of Windows itself (and the junctions it keeps for old paths, R-101): a
# lab folder there, or one of them as the lab folder, would put Windows' own files in
# reach of lab.down. C:\\Users may hold a lab deeper down, never a profile itself.
_SYSTEM_FOLDERS = {
    "windows",
    "program files",
    "program files (x86)",
    "programdata",
    "recovery",
    "system volume information",
    "perflogs",
    "boot",
    "documents and settings",
    "application data",
}
_PROFILES = "users"


def check_root(lab: Lab, p: list[Problem]) -> None:
    """The lab folder must be a folder of its own: never a drive root or Windows' own."""
    root = lab.root.rstrip("\\")
    parts = root.split("\\")
    top = parts[1].lower() if len(parts) > 1 else ""
    if len(parts) < 2:
        p.append(
            (
                ("host", "root"),
                f"{root}\\ is a drive root; use a folder such as C:\\hvlab\\{lab.name}",
            )
        )
    elif top in _SYSTEM_FOLDERS or (top == _PROFILES and len(parts) <= 3):
        p.append(
            (
                ("host", "root"),
                f"{root} is a Windows system folder or inside one ({parts[0]}\\{parts[1]}); "
                f"use a folder of its own such as C:\\hvlab\\{lab.name}",
            )
        )
    for key, image in lab.host.images.items():
        if image.path.lower().startswith(root.lower() + "\\"):
            # the parent image must never change; lab.down removes the lab folder.
            p.append(
                (
                    ("host", "images", key, "path"),
                    f"the base image is inside the lab folder {root}, which lab.down removes; "
                    "keep images outside it (R-16)",
                )
            )


def check_images(lab: Lab, p: list[Problem], warnings: list[str]) -> None:
    for key, image in lab.host.images.items():
        loc: Loc = ("host", "images", key)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,31}", key):
            p.append((loc, f"image name {show(key)} must be a word of letters, digits, _ or -"))
        if not image.path.lower().endswith(".vhdx"):
            p.append(((*loc, "path"), "a Generation 2 VM boots from a .vhdx file (R-09, R-16)"))
        expected = WINDOWS_BUILDS[image.version]
        if image.build != expected:
            p.append(
                (
                    (*loc, "build"),
                    f"Windows Server {image.version} is build {expected}, not {image.build}",
                )
            )
        if image.version != "2022":
            warnings.append(
                f"image {key} is Windows Server {image.version}; hvlab is tested with 2022 (R-78)"
            )
