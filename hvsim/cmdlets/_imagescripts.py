"""What hvlab's host scripts for base images do, for hvsim.scripts:
templates/host/Set-ImageBootFiles.ps1 (bcdboot, R-118) and
templates/host/Write-FileChunk.ps1 (one chunk of an upload, R-122).

A `throw "text"` in those scripts surfaces as a RuntimeException whose FQID is
the text itself; the handlers raise the same.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.errors import PSError, not_modelled
from hvsim.model import winimage
from hvsim.model.fs import FsError, fs_error_to_ps, normalize, split_path
from hvsim.objects import Int64
from hvsim.registry import Context


def _throw(message: str, target: Any = None) -> PSError:
    return PSError(
        message,
        fqid=message,
        category="OperationStopped",
        exception="System.Management.Automation.RuntimeException",
        target=target,
    )


def _dotnet_error(method: str, message: str, exception: str) -> PSError:
    # A .NET method that throws inside the script: "Exception calling ..." (MethodInvocationException).
    text = f'Exception calling "{method}" with "{4 if method == "Open" else 1}" argument(s): "{message}"'
    return PSError(
        text,
        fqid=exception.rsplit(".", 1)[-1],
        category="NotSpecified",
        exception="System.Management.Automation.MethodInvocationException",
    )


BCDBOOT_FAILED = "Failure when attempting to copy boot files."


def set_image_boot_files(ctx: Context, windows_path: str, system_drive: str) -> Iterable[Any]:
    """bcdboot <WindowsPath> /s <SystemDrive> /f UEFI (R-118)."""
    fs = ctx.machine.fs
    try:
        drive, parts = split_path(windows_path)
        windows_vol = fs.volume_of(f"{drive}:\\")
        letter = system_drive.strip().rstrip("\\").rstrip(":").upper()
        system_vol = fs.drives.get(letter) if len(letter) == 1 else None
    except FsError:
        windows_vol, system_vol, parts = None, None, []
    ok = (
        windows_vol is not None
        and [p.lower() for p in parts] == ["windows"]
        and winimage.windows_present(windows_vol)
        and system_vol is not None
        and not system_vol.read_only
        # UEFI boots from a FAT32 system partition.
        and system_vol.file_system.upper() == "FAT32"
    )
    if not ok:
        raise _throw(f"bcdboot failed with exit code 1: {BCDBOOT_FAILED}", windows_path)
    assert windows_vol is not None and system_vol is not None
    winimage.write_boot_files(system_vol, windows_vol)
    ctx.work(timing.seconds("bcdboot"), "bcdboot")
    return ["Boot files successfully created."]


def write_file_chunk(ctx: Context, path: str, offset: Any, data: Any) -> Iterable[Any]:
    """One chunk of an upload: written only at the file's current end (R-122)."""
    fs = ctx.machine.fs
    full = normalize(str(path))
    try:
        chunk = base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError):
        raise _dotnet_error(
            "FromBase64String",
            "The input is not a valid Base-64 string as it contains a non-base 64 character, "
            "more than two padding characters, or an illegal character among the padding "
            "characters.",
            "System.FormatException",
        ) from None
    try:
        start = int(offset)
    except (TypeError, ValueError):
        raise not_modelled("Write-FileChunk.ps1 with an Offset that is not a number") from None
    node = fs.node(full)
    if node is None:
        current = b""
    else:
        content = getattr(node, "content", None)
        if not isinstance(content, bytes | bytearray):
            raise not_modelled(f"writing chunks into {full}, which is not a plain file")
        current = bytes(content)
    if len(current) == start:
        try:
            fs.write(full, current + chunk)
        except FsError as err:
            if err.kind == "not_found":
                raise _dotnet_error(
                    "Open",
                    f"Could not find a part of the path '{full}'.",
                    "System.IO.DirectoryNotFoundException",
                ) from None
            raise fs_error_to_ps(err, "Set-Content") from None
        current = current + chunk
    return [Int64(len(current))]
