"""Installation media: ISO files that hold a Windows image file with several editions.

hvsim cannot read a real ISO. On a modelled host an ISO file holds a small
manifest (`manifest_bytes()`): a magic line, then JSON naming the medium's
label, its image file (sources\\install.wim or install.esd) and the image's
indexes (name, EditionId, installation type, version, languages, size when
applied). Tests and benchmarks write such files; Mount-DiskImage reads the
manifest and shows the medium as a read-only UDF volume whose image file is a
`WimFile` (R-121). A file that is no manifest does not mount.

Get-WindowsImage lists the indexes of a WimFile, Expand-WindowsImage applies one
to an NTFS volume (hvsim.model.winimage, R-115, R-117).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hvsim.model.fs import FsError, GiB

MiB = 1024**2
MAGIC = b"HVSIM-ISO 1\n"
SECTOR = 2048  # ISO 9660 / UDF logical sector size

# OperatingSystemSKU per EditionId (GetProductInfo: PRODUCT_STANDARD_SERVER 7,
# PRODUCT_DATACENTER_SERVER 8, PRODUCT_STANDARD_EVALUATION_SERVER 79 (0x4F),
# PRODUCT_DATACENTER_EVALUATION_SERVER 80 (0x50); R-55). Server Core indexes
# report the same SKU here (modelled).
_SKUS = {
    "serverstandard": 7,
    "serverdatacenter": 8,
    "serverstandardeval": 79,
    "serverdatacentereval": 80,
}


@dataclasses.dataclass
class WimIndex:
    """One image of a WIM/ESD file, as Get-WindowsImage -Index reports it."""

    index: int
    name: str  # ImageName
    edition: str  # EditionId
    installation_type: str = "Server"  # "Server" (Desktop Experience) or "Server Core"
    version: str = "10.0.20348.587"
    languages: list[str] = dataclasses.field(default_factory=lambda: ["en-US"])
    size: int = 9 * GiB + 512 * MiB  # ImageSize: bytes the applied image takes
    description: str = ""

    @property
    def build(self) -> int:
        parts = self.version.split(".")
        return int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0

    @property
    def sku(self) -> int:
        key = self.edition.lower()
        return _SKUS.get(key.removesuffix("cor"), 0)

    @property
    def caption(self) -> str:
        """Win32_OperatingSystem.Caption of a machine installed from this index."""
        return "Microsoft " + self.name.replace(" (Desktop Experience)", "")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WimIndex:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclasses.dataclass
class WimFile:
    """The content of sources\\install.wim (or .esd) on a medium."""

    indexes: list[WimIndex]
    file_size: int = 0  # the file's own size (compressed); File.size reads it

    def find(self, index: int | None = None, name: str | None = None) -> WimIndex | None:
        for image in self.indexes:
            if index is not None and image.index != index:
                continue
            if name is not None and image.name.lower() != name.lower():
                continue
            return image
        return None


@dataclasses.dataclass
class Medium:
    """What a manifest describes: the volume label and the image file."""

    label: str
    image_file: str  # install.wim or install.esd
    indexes: list[WimIndex]

    @property
    def wim_size(self) -> int:
        # A WIM stores files once and compresses them: about 45 % of the largest index
        # plus a little per further index (modelled; only used for sizes shown).
        if not self.indexes:
            return 0
        biggest = max(i.size for i in self.indexes)
        return int(biggest * 0.45) + 200 * MiB * (len(self.indexes) - 1)


def manifest_bytes(
    indexes: list[WimIndex],
    *,
    label: str = "SSS_X64FRE_EN-US_DV9",
    image_file: str = "install.wim",
    padding: int = 0,
) -> bytes:
    """The bytes of a modelled ISO file holding `indexes` (what tests write to a host),
    followed by `padding` bytes that stand for the rest of the medium."""
    body = {
        "label": label,
        "image_file": image_file,
        "indexes": [i.to_json() for i in indexes],
    }
    head = MAGIC + json.dumps(body, sort_keys=True).encode("utf-8") + b"\n"
    filler = bytes((n * 131 + 7) % 251 for n in range(min(padding, 4096)))
    return head + (filler * (padding // 4096 + 1))[:padding] if padding else head


def parse_manifest(data: Any) -> Medium | None:
    """The medium an ISO file's bytes describe, or None when they are no manifest."""
    if not isinstance(data, bytes | bytearray) or not bytes(data).startswith(MAGIC):
        return None
    # One JSON line after the magic; what follows (padding a test adds to make the
    # file larger) is the rest of the medium and not read.
    line = bytes(data)[len(MAGIC) :].split(b"\n", 1)[0]
    try:
        body = json.loads(line.decode("utf-8"))
        indexes = [WimIndex.from_json(i) for i in body["indexes"]]
        label = str(body.get("label", ""))
        image_file = str(body.get("image_file", "install.wim"))
    except (ValueError, KeyError, TypeError):
        return None
    if image_file.lower() not in ("install.wim", "install.esd"):
        return None
    return Medium(label, image_file, indexes)


def server_2022_indexes(
    *, language: str = "en-US", evaluation: bool = False, version: str = "10.0.20348.587"
) -> list[WimIndex]:
    """The four indexes of a Windows Server 2022 medium: Standard and Datacenter, each as
    Server Core and with the Desktop Experience. The EditionId spellings of the Core
    indexes (a "Cor" suffix) are modelled."""
    suffix = " Evaluation" if evaluation else ""
    eval_id = "Eval" if evaluation else ""
    out = []
    n = 1
    for edition in ("Standard", "Datacenter"):
        for core in (True, False):
            name = f"Windows Server 2022 {edition}{suffix}" + (
                "" if core else " (Desktop Experience)"
            )
            out.append(
                WimIndex(
                    index=n,
                    name=name,
                    edition=f"Server{edition}{eval_id}" + ("Cor" if core else ""),
                    installation_type="Server Core" if core else "Server",
                    version=version,
                    languages=[language],
                    size=(5 * GiB + 700 * MiB) if core else (9 * GiB + 512 * MiB),
                )
            )
            n += 1
    return out


@dataclasses.dataclass(eq=False)
class IsoMount:
    """The owner of a mounted medium's volume: which file, which CD-ROM device.

    It refuses writes: a mounted ISO is read-only (UDF), R-121."""

    image_path: str
    device_number: int

    @property
    def device_path(self) -> str:
        return f"\\\\.\\CDROM{self.device_number}"

    def before_partition_write(self, volume: Any, path: str, growth: int) -> None:
        raise FsError("read_only", path)


PACKAGE_MAGIC = b"HVSIM-PKG 1\n"


@dataclasses.dataclass
class Package:
    """An update package (.msu/.cab) as a modelled file: which build it serves and the
    revision it brings (10.0.20348.<revision>), R-119."""

    name: str  # KB number or package identity
    build: int
    revision: int
    size: int = 300 * MiB  # what it adds to the image


def package_bytes(package: Package) -> bytes:
    return PACKAGE_MAGIC + json.dumps(dataclasses.asdict(package), sort_keys=True).encode() + b"\n"


def parse_package(data: Any) -> Package | None:
    if not isinstance(data, bytes | bytearray) or not bytes(data).startswith(PACKAGE_MAGIC):
        return None
    try:
        body = json.loads(bytes(data)[len(PACKAGE_MAGIC) :].decode("utf-8"))
        return Package(
            str(body["name"]), int(body["build"]), int(body["revision"]), int(body["size"])
        )
    except (ValueError, KeyError, TypeError):
        return None
