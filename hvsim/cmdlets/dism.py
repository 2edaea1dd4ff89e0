"""DISM on the host: Get-WindowsImage of a WIM/ESD file, Expand-WindowsImage and
Add-WindowsPackage (R-115, R-117, R-119).

Get-WindowsImage of a VHD stays in hvsim.cmdlets.storage_host; it hands WIM files
to `wim_image_info` here. Texts of DISM errors follow the Win32 messages of the
codes DISM returns; which code each case returns is modelled unless a rule says
otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim import timing
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import PSError, not_modelled
from hvsim.model import winimage
from hvsim.model.fs import Dir, File, FsError, GiB, normalize
from hvsim.model.iso import WimFile, WimIndex, parse_package
from hvsim.model.vhd import VHD
from hvsim.objects import PSObj, UInt32, UInt64
from hvsim.registry import Call, Context, cmdlet

DISM = "Microsoft.Dism.Commands."


def dism_error(message: str, cmdlet: str, target: Any, category: str = "NotSpecified") -> PSError:
    return PSError(
        message,
        fqid=f"{DISM}{cmdlet.replace('-', '')}Command",
        category=category,
        exception="System.Runtime.InteropServices.COMException",
        target=target,
    )


NO_FILE = "The system cannot find the file specified."
NO_PATH = "The system cannot find the path specified."
NO_IMAGE = "The specified image does not exist in the image file."
NO_SPACE = "There is not enough space on the disk."


# -- Get-WindowsImage of a WIM/ESD ------------------------------------------------------


def _basic(path: str, image: WimIndex) -> dict[str, Any]:
    return {
        "ImagePath": path,
        "ImageIndex": UInt32(image.index),
        "ImageName": image.name,
        "ImageDescription": image.description or image.name,
        "ImageSize": UInt64(image.size),
    }


def wim_image_info(path: str, wim: WimFile, call: Call) -> Iterable[PSObj]:
    """Get-WindowsImage -ImagePath <wim> [-Index n | -Name s] (R-115)."""
    index = call.get("Index")
    name = call.get("Name")
    if index is None and name is None:
        for image in wim.indexes:
            yield PSObj(
                [DISM + "BasicImageInfoObject", "System.Object"],
                _basic(path, image),
                to_string=image.name,
            )
        return
    image = wim.find(int(index) if index is not None else None, str(name) if name else None)
    if image is None:
        raise dism_error(NO_IMAGE, call.name, path)
    major, minor, build, *rest = (int(x) for x in image.version.split("."))
    yield PSObj(
        [DISM + "WimImageInfoObject", DISM + "ImageInfoObject", "System.Object"],
        {
            **_basic(path, image),
            "EditionId": image.edition,
            "InstallationType": image.installation_type,
            "ProductType": "ServerNT",
            "ProductSuite": "Terminal Server",
            "Architecture": "x64",
            "Version": image.version,
            "MajorVersion": UInt32(major),
            "MinorVersion": UInt32(minor),
            "Build": UInt32(build),
            "SPBuild": UInt32(rest[0] if rest else 0),
            "Languages": list(image.languages),
            "DefaultLanguageIndex": UInt32(0),
        },
        to_string=image.name,
    )


# -- Expand-WindowsImage --------------------------------------------------------------


def _wim(ctx: Context, raw: Any, cmdlet: str) -> tuple[str, WimFile]:
    path = normalize(str(raw))
    node = ctx.machine.fs.node(path)
    if not isinstance(node, File):
        raise dism_error(NO_FILE, cmdlet, path, "ObjectNotFound")
    if isinstance(node.content, VHD):
        # "This cmdlet does not apply to virtual hard disk (VHD) files." (Dism/Expand-WindowsImage)
        raise dism_error(
            "An attempt was made to load a program with an incorrect format.", cmdlet, path
        )
    if not isinstance(node.content, WimFile):
        raise dism_error("The file is not a valid Windows image file.", cmdlet, path)
    return path, node.content


@cmdlet(
    "Expand-WindowsImage",
    params=["ImagePath", "Index", "Name", "ApplyPath", "LogPath", "CheckIntegrity", "Verify"],
)
def expand_windows_image(ctx: Context, call: Call) -> None:
    path, wim = _wim(ctx, call.get("ImagePath"), call.name)
    index = call.get("Index")
    name = call.get("Name")
    image = wim.find(int(index) if index is not None else None, str(name) if name else None)
    if image is None:
        raise dism_error(NO_IMAGE, call.name, path)
    apply_path = normalize(str(call.get("ApplyPath")))
    fs = ctx.machine.fs
    if not fs.is_dir(apply_path):
        raise dism_error(NO_PATH, call.name, apply_path, "ObjectNotFound")
    volume = fs.volume_of(apply_path)
    if winimage.disk_of(volume) is None or apply_path.rstrip("\\")[2:]:
        # The model applies images only to the root of a volume on a mounted VHD.
        raise not_modelled("Expand-WindowsImage to anything but the root of a mounted VHD's volume")
    if volume.read_only:
        raise dism_error("The media is write protected.", call.name, apply_path, "WriteError")
    if volume.file_system.upper() != "NTFS":
        # Windows is installed on NTFS; the code DISM returns is modelled.
        raise dism_error("The parameter is incorrect.", call.name, apply_path, "InvalidArgument")
    if winimage.windows_present(volume):
        raise not_modelled("Expand-WindowsImage onto a volume that holds Windows already")
    try:
        winimage.apply(volume, apply_path, image)
    except FsError as err:
        if err.kind == "no_space":
            raise dism_error(NO_SPACE, call.name, apply_path, "WriteError") from None
        raise
    ctx.work(timing.seconds("dism.apply_per_gib") * image.size / GiB, f"applying {image.name}")


# -- Add-WindowsPackage ----------------------------------------------------------------


@cmdlet(
    "Add-WindowsPackage",
    params=["Path", "PackagePath", "IgnoreCheck", "PreventPending", "NoRestart", "LogPath"],
)
def add_windows_package(ctx: Context, call: Call) -> Iterable[PSObj]:
    fs = ctx.machine.fs
    target = normalize(str(call.get("Path")))
    try:
        volume = fs.volume_of(target)
    except FsError:
        raise dism_error(NO_PATH, call.name, target, "ObjectNotFound") from None
    disk = winimage.disk_of(volume)
    if disk is None or disk.image is None or not winimage.windows_present(volume):
        raise dism_error("The specified path does not point to a Windows image.", call.name, target)
    if target.rstrip("\\")[2:]:
        raise dism_error(NO_PATH, call.name, target, "ObjectNotFound")
    for raw in as_list(call.get("PackagePath")):
        pkg_path = normalize(str(raw))
        node = fs.node(pkg_path)
        if isinstance(node, Dir):
            raise not_modelled("Add-WindowsPackage of a folder of packages")
        if not isinstance(node, File):
            raise dism_error(NO_FILE, call.name, pkg_path, "ObjectNotFound")
        if not pkg_path.lower().endswith((".msu", ".cab")):
            raise dism_error(
                "The specified package is not a valid Windows package.", call.name, pkg_path
            )
        package = parse_package(node.content)
        if package is not None and package.build != disk.image.build:
            # DISM's 0x800f081e (CBS_E_NOT_APPLICABLE), R-119.
            raise dism_error(
                "The specified package is not applicable to this image.", call.name, pkg_path
            )
        size = package.size if package is not None else node.size
        label = package.name if package is not None else pkg_path.rsplit("\\", 1)[-1]
        try:
            winimage.add_package(volume, target, label, size)
        except FsError as err:
            if err.kind == "no_space":
                raise dism_error(NO_SPACE, call.name, target, "WriteError") from None
            raise
        if package is not None:
            major, minor, build, *_ = disk.image.version.split(".")
            disk.image.version = f"{major}.{minor}.{build}.{package.revision}"
        ctx.work(timing.seconds("dism.add_package"), f"adding {label}")
    yield PSObj(
        [DISM + "ImageObject", "System.Object"],
        {"Path": target, "Online": False, "RestartNeeded": False},
    )
