"""The lab folder and the base images."""

from __future__ import annotations

import re

from hvlab.spec.models import WINDOWS_BUILDS, Lab
from hvlab.spec.names import show
from hvlab.spec.rules.common import Loc, Problem

# Top-level folders of Windows itself; a lab folder there would be removed with the lab.
_SYSTEM_FOLDERS = {"windows", "program files", "program files (x86)", "programdata", "users"}


def check_root(lab: Lab, p: list[Problem]) -> None:
    """lab.down removes the lab folder recursively, so it must be a folder of its own."""
    root = lab.root.rstrip("\\")
    parts = root.split("\\")
    if len(parts) < 2:
        p.append(
            (
                ("host", "root"),
                f"{root}\\ is a drive root; use a folder such as C:\\hvlab\\{lab.name}",
            )
        )
    elif parts[1].lower() in _SYSTEM_FOLDERS:
        p.append(
            (
                ("host", "root"),
                f"{root} is inside a Windows system folder; use C:\\hvlab\\{lab.name}",
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
