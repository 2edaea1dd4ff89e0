"""The steps of image.build on the host (R-115..R-123): read what the images folder
holds for a name, finish or refuse what an earlier run left, mount the ISO, pick
the edition, check the space, lay out the disk, apply, make it bootable, add
packages, stage roles, write the sidecar and rename. hvlab.image checks the
request and runs a Builder; see its docstring for the files and their names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from hvlab.errors import ConfigError, HvlabError, StepError
from hvlab.image import SIDECAR_FORMAT, Request, parse_sidecar
from hvlab.resources import template
from hvlab.spec import names
from hvlab.spec.units import GIB, MIB, format_size
from hvlab.steps.common import SILENT, first, text, val

# The ESP as Convert-WindowsImage (microsoft/MSLab) makes it, and the MSR.
ESP_BYTES = 200 * MIB
MSR_BYTES = 16 * MIB
# Room the image needs beyond what DISM reports: boot files, file-system metadata,
# staged roles and the first boot's own writes (an estimate).
HEADROOM = 2 * GIB

GPT_BASIC = "{ebd0a0a2-b9e5-4433-87c0-68b6b72699c7}"
GPT_EFI = "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}"
GPT_MSR = "{e3c9e316-0b5c-4db8-817d-f92df00215ae}"
_PRODUCTS = {14393: "ws2016", 17763: "ws2019", 20348: "ws2022", 26100: "ws2025"}


# --- on the host ----------------------------------------------------------------------


@dataclasses.dataclass
class Files:
    """What the images folder holds for one name."""

    name: str
    folder: str
    final_vhd: Any = None  # Get-VHD record
    sidecar: dict[str, Any] | None = None
    sidecar_present: bool = False
    temp_vhd: Any = None
    temp_sidecar: dict[str, Any] | None = None
    temp_sidecar_present: bool = False

    def path(self, suffix: str) -> str:
        return f"{self.folder}\\{self.name}{suffix}"


def default_name(image: Any, features: tuple[str, ...]) -> str:
    """ws2022-datacenter, ws2022-datacenter-core, ...-eval, ...-staged: from the index chosen."""
    build = int(val(image, "Build", 0) or 0)
    product = _PRODUCTS.get(build, f"build{build}")
    edition = text(val(image, "EditionId")).lower()
    core = text(val(image, "InstallationType")).lower().endswith("core")
    edition = edition.removesuffix("cor").removeprefix("server")
    eval_ = edition.endswith("eval")
    edition = edition.removesuffix("eval") or "windows"
    parts = [product, edition, *(["core"] if core else []), *(["eval"] if eval_ else [])]
    if features:
        parts.append("staged")
    return "-".join(parts)


def _letter(partition: Any) -> str:
    letter = text(val(partition, "DriveLetter")).strip("\x00 ")
    if len(letter) != 1 or not letter.isalpha():
        raise HvlabError(f"the new partition got no drive letter (saw {letter!r})")
    return letter.upper()


class Builder:
    """One image.build against one host."""

    def __init__(self, host: Any, req: Request, say: Callable[[str], None]) -> None:
        self.host = host
        self.req = req
        self.say = say
        self.mounted_iso = False

    # -- reads -----------------------------------------------------------------

    def files(self, name: str) -> Files:
        f = Files(name, self.req.folder)
        reads = [
            ("Get-VHD", {"Path": f.path(".vhdx"), **SILENT}),
            ("Test-Path", {"Path": f.path(".json")}),
            ("Get-Content", {"Path": f.path(".json"), "Raw": True, **SILENT}),
            ("Get-VHD", {"Path": f.path(".building.vhdx"), **SILENT}),
            ("Test-Path", {"Path": f.path(".building.json")}),
            ("Get-Content", {"Path": f.path(".building.json"), "Raw": True, **SILENT}),
        ]
        vhd, has_json, body, temp, has_temp_json, temp_body = self.host.map(reads)
        f.final_vhd = first(vhd)
        f.sidecar_present = bool(has_json) and has_json[0] is True
        f.sidecar = parse_sidecar(body) if f.sidecar_present else None
        f.temp_vhd = first(temp)
        f.temp_sidecar_present = bool(has_temp_json) and has_temp_json[0] is True
        f.temp_sidecar = parse_sidecar(temp_body) if f.temp_sidecar_present else None
        return f

    def settle(self, f: Files) -> Files:
        """Finish what an interrupted build left half-done, or refuse what is not ours."""
        if (
            f.final_vhd is not None
            and not f.sidecar_present
            and f.temp_sidecar is not None
            and f.temp_sidecar.get("file") == f"{f.name}.vhdx"
        ):
            # Killed between the two renames: the image is complete, finish the rename.
            self.say(
                f"finishing the build of {f.name} an interrupted run left: renaming its sidecar"
            )
            self.host.run("Rename-Item", Path=f.path(".building.json"), NewName=f"{f.name}.json")
            return self.files(f.name)
        if f.final_vhd is not None and f.sidecar is None:
            raise ConfigError(
                f"{f.path('.vhdx')} exists and was not built by image.build (no readable "
                f"{f.name}.json next to it); hvlab never overwrites it: choose another --name"
            )
        if f.final_vhd is None and f.sidecar_present:
            if f.sidecar is None:
                raise ConfigError(
                    f"{f.path('.json')} exists and is not an image.build sidecar; choose another --name"
                )
            self.say(f"{f.path('.json')} describes a VHDX that is gone; removing the stale sidecar")
            self.host.run("Remove-Item", Path=f.path(".json"), Force=True)
            return self.files(f.name)
        return f

    # -- the steps -------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        req, host = self.req, self.host
        t0 = time.monotonic()
        if req.iso_local is not None:
            self._upload()
        reads: list[tuple[str, dict[str, Any]]] = [
            ("Test-Path", {"Path": req.iso, "PathType": "Leaf"}),
            ("Get-Volume", {"DriveLetter": req.folder[0], **SILENT}),
            ("Get-DiskImage", {"ImagePath": req.iso, **SILENT}),
        ]
        reads += [("Test-Path", {"Path": p, "PathType": "Leaf"}) for p in req.packages]
        if req.features:
            reads.append(("Get-WindowsFeature", {"Name": list(req.features)}))
        answers = host.map(reads)
        if not (answers[0] and answers[0][0] is True):
            raise ConfigError(f"the ISO {req.iso} does not exist on the host; nothing was started")
        volume = first(answers[1])
        if volume is None:
            raise ConfigError(f"the host has no volume {req.folder[0]}: for {req.folder}")
        attached = val(first(answers[2]), "Attached") is True
        for path, found in zip(req.packages, answers[3 : 3 + len(req.packages)], strict=True):
            if not (found and found[0] is True):
                raise ConfigError(
                    f"the package {path} does not exist on the host; nothing was started"
                )
        features = list(req.features)
        if req.features:
            known = {text(val(r, "Name")).lower(): text(val(r, "Name")) for r in answers[-1]}
            unknown = [f for f in req.features if f.lower() not in known]
            if unknown:
                raise ConfigError(
                    f"--features: the host knows no feature {', '.join(unknown)} "
                    "(Get-WindowsFeature); nothing was started"
                )
            features = [known[f.lower()] for f in req.features]
        self.say(f"reading the SHA-256 of {req.iso}")
        iso_sha = text(
            val(first(host.run("Get-FileHash", Path=req.iso, Algorithm="SHA256")), "Hash")
        ).upper()
        pkg_shas = [
            text(val(first(host.run("Get-FileHash", Path=p, Algorithm="SHA256")), "Hash")).upper()
            for p in req.packages
        ]
        identity = req.identity(iso_sha, pkg_shas)
        if req.name is not None:
            f = self.settle(self.files(req.name))
            if f.sidecar is not None and f.sidecar.get("request") == identity:
                return self._unchanged(f, t0)
        letter = self._mount(attached)
        try:
            wim = self._image_file(letter)
            chosen = self._choose(wim)
            details = first(
                host.run("Get-WindowsImage", ImagePath=wim, Index=int(val(chosen, "ImageIndex")))
            )
            name = req.name or default_name(details, req.features)
            f = self.settle(self.files(name))
            key = _key(iso_sha, details, features, pkg_shas)
            if f.sidecar is not None:
                if f.sidecar.get("key") == key:
                    return self._unchanged(f, t0)
                raise ConfigError(
                    f"image {name} exists, built from {_describe(f.sidecar)}; this build would be "
                    f"{text(val(details, 'ImageName'))} from ISO {iso_sha[:12]}... with "
                    f"{', '.join(features) or 'no staged roles'}. hvlab never overwrites an image: "
                    "choose another --name, or remove the old one when no lab uses it"
                )
            self._check_space(details, volume)
            self._discard(f, leftover=True)
            facts = self._make(f, wim, details, features, iso_sha, pkg_shas, key, identity)
        finally:
            if self.mounted_iso:
                self._dismount_iso()
        facts["changed"] = True
        facts["seconds"] = round(time.monotonic() - t0, 3)
        self.say(
            f"image {facts['name']} is ready: {facts['image_name']} {facts['version']} "
            f"{facts['language']}, staged roles: {', '.join(facts['features']) or 'none'}"
        )
        return facts

    def _upload(self) -> None:
        from hvlab.upload import progress_printer, upload

        req = self.req
        assert req.iso_local is not None
        self.say(f"uploading {req.iso_local} to {req.iso}")
        done = upload(
            self.host,
            req.iso_local,
            req.iso,
            progress=progress_printer(req.iso_local.name, self.say),
            note=self.say,
        )
        if done.sent_bytes:
            self.say(
                f"uploaded {format_size(done.sent_bytes)}; SHA-256 {done.sha256[:16]}... checked"
            )

    def _mount(self, attached: bool) -> str:
        req = self.req
        if attached:
            self.say(f"{req.iso} is mounted already; using it as it is")
        else:
            self.say(f"mounting {req.iso}")
            self.host.run("Mount-DiskImage", ImagePath=req.iso, StorageType="ISO")
            self.mounted_iso = True
        volume = first(
            self.host.pipeline([("Get-DiskImage", {"ImagePath": req.iso}), ("Get-Volume", {})])
        )
        return _letter(volume)

    def _dismount_iso(self) -> None:
        try:
            self.host.run("Dismount-DiskImage", ImagePath=self.req.iso)
            self.mounted_iso = False
        except HvlabError as err:
            self.say(f"could not dismount {self.req.iso}: {err}")

    def _image_file(self, letter: str) -> str:
        candidates = [f"{letter}:\\sources\\install.wim", f"{letter}:\\sources\\install.esd"]
        found = self.host.map([("Test-Path", {"Path": p, "PathType": "Leaf"}) for p in candidates])
        for path, hit in zip(candidates, found, strict=True):
            if hit and hit[0] is True:
                return path
        raise ConfigError(
            f"{self.req.iso} holds no sources\\install.wim or install.esd: it is not a Windows "
            "installation medium (R-115)"
        )

    def _choose(self, wim: str) -> Any:
        """The index asked for (its name or number), or Datacenter with the Desktop
        Experience, else Datacenter (R-115)."""
        images = self.host.run("Get-WindowsImage", ImagePath=wim)
        listed = [f"{int(val(i, 'ImageIndex'))}: {text(val(i, 'ImageName'))}" for i in images]
        want = self.req.edition
        if want is not None:
            for image in images:
                if text(val(image, "ImageName")).lower() == want.strip().lower():
                    return image
                if want.strip().isdigit() and int(val(image, "ImageIndex")) == int(want):
                    return image
            raise ConfigError(
                f"{self.req.iso} has no edition {names.show(want, 80)}; it holds: "
                + "; ".join(listed)
                + ". Pass one of these names (or its number) to --edition"
            )
        datacenter = [i for i in images if "datacenter" in text(val(i, "ImageName")).lower()]
        desktop = [
            i for i in datacenter if "desktop experience" in text(val(i, "ImageName")).lower()
        ]
        pick = (desktop or datacenter or [None])[0]
        if pick is None:
            raise ConfigError(
                f"{self.req.iso} holds no Datacenter edition, which S2D needs (R-55); it holds: "
                + "; ".join(listed)
                + ". Pass --edition to build another one"
            )
        self.say(f"edition: {text(val(pick, 'ImageName'))} (index {int(val(pick, 'ImageIndex'))})")
        return pick

    def _check_space(self, details: Any, volume: Any) -> None:
        """Before anything is created: the image must fit in the VHDX and on the host (R-79)."""
        image_size = int(val(details, "ImageSize", 0) or 0)
        need_virtual = image_size + ESP_BYTES + MSR_BYTES + 2 * MIB + HEADROOM
        if self.req.size < need_virtual:
            raise ConfigError(
                f"--size {format_size(self.req.size)} is too small: "
                f"{text(val(details, 'ImageName'))} takes {format_size(image_size)} applied, "
                f"the disk needs at least {format_size(need_virtual)}; nothing was started"
            )
        need_host = image_size + HEADROOM + len(self.req.packages) * GIB
        free = int(val(volume, "SizeRemaining", 0) or 0)
        if need_host > free:
            raise ConfigError(
                f"volume {self.req.folder[0]}: has {format_size(free)} free; the image needs about "
                f"{format_size(need_host)} ({format_size(image_size)} applied plus "
                f"{format_size(need_host - image_size)} headroom); nothing was started (R-79)"
            )

    def _discard(self, f: Files, *, leftover: bool) -> None:
        """Remove NAME.building.*: what an interrupted build left (leftover) or this
        build's own after a failure. Best effort after a failure: the next build retries."""
        temp_vhd, temp_json = f.path(".building.vhdx"), f.path(".building.json")
        try:
            vhd = first(self.host.run("Get-VHD", Path=temp_vhd, **SILENT))
            present = self.host.map(
                [("Test-Path", {"Path": temp_vhd}), ("Test-Path", {"Path": temp_json})]
            )
            if vhd is None and not any(p and p[0] is True for p in present):
                return
            if leftover:
                self.say(f"removing what an interrupted build of {f.name} left behind")
            if vhd is not None and val(vhd, "Attached") is True:
                self.host.run("Dismount-VHD", Path=temp_vhd)
            for path, there in zip((temp_vhd, temp_json), present, strict=True):
                if there and there[0] is True:
                    self.host.run("Remove-Item", Path=path, Force=True)
        except HvlabError as err:
            if leftover:
                raise
            self.say(
                f"could not remove {temp_vhd}: {err}; the next image.build of {f.name} removes it"
            )

    def _make(
        self,
        f: Files,
        wim: str,
        details: Any,
        features: list[str],
        iso_sha: str,
        pkg_shas: list[str],
        key: str,
        identity: dict[str, Any],
    ) -> dict[str, Any]:
        host, req = self.host, self.req
        temp = f.path(".building.vhdx")
        try:
            host.run("New-Item", ItemType="Directory", Path=req.folder, Force=True)
            self.say(f"creating {temp} ({format_size(req.size)}, dynamic, generation 2 layout)")
            host.run("New-VHD", Path=temp, SizeBytes=req.size, Dynamic=True)
            disk = first(host.run("Mount-VHD", Path=temp, Passthru=True))
            number = int(val(disk, "DiskNumber"))
            host.run("Initialize-Disk", Number=number, PartitionStyle="GPT")
            # The ESP is made as a data partition, formatted, then typed ESP.
            esp, system = self._formatted(number, "FAT32", "System", Size=ESP_BYTES)
            host.run(
                "Set-Partition",
                DiskNumber=number,
                PartitionNumber=int(val(esp, "PartitionNumber")),
                GptType=GPT_EFI,
            )
            host.run("New-Partition", DiskNumber=number, Size=MSR_BYTES, GptType=GPT_MSR)
            _, windows = self._formatted(number, "NTFS", "Windows", UseMaximumSize=True)
            index = int(val(details, "ImageIndex"))
            self.say(
                f"applying {text(val(details, 'ImageName'))} "
                f"({format_size(int(val(details, 'ImageSize', 0) or 0))}) to {windows}:"
            )
            host.run("Expand-WindowsImage", ImagePath=wim, Index=index, ApplyPath=f"{windows}:\\")
            self.say("making the disk bootable (bcdboot, UEFI)")
            host.script(
                template("host/Set-ImageBootFiles.ps1"),
                _label="Set-ImageBootFiles",
                WindowsPath=f"{windows}:\\Windows",
                SystemDrive=f"{system}:",
            )
            for package in req.packages:
                self.say(f"adding package {package}")
                host.run("Add-WindowsPackage", Path=f"{windows}:\\", PackagePath=package)
            host.run("Dismount-VHD", Path=temp)
            if features:
                self.say(f"staging roles offline: {', '.join(features)} (R-18, R-120)")
                result = first(
                    host.run(
                        "Install-WindowsFeature",
                        Vhd=temp,
                        Name=features,
                        IncludeManagementTools=True,
                    )
                )
                if val(result, "Success") is False:
                    raise StepError(
                        "image.build",
                        f"Install-WindowsFeature -Vhd {', '.join(features)} did not succeed "
                        f"(ExitCode {val(result, 'ExitCode')})",
                    )
            applied = first(host.run("Get-WindowsImage", ImagePath=temp, Index=1))
            if text(val(applied, "EditionId")) != text(val(details, "EditionId")):
                raise StepError(
                    "image.build",
                    f"{temp} holds {val(applied, 'EditionId')}, not {val(details, 'EditionId')}",
                )
            facts = _sidecar(f, req, details, applied, features, iso_sha, pkg_shas, key, identity)
            host.run(
                "Set-Content",
                Path=f.path(".building.json"),
                Value=json.dumps(facts, indent=2, sort_keys=True),
                Encoding="ASCII",
            )
            # The VHDX first, the sidecar last: a lab uses NAME only once NAME.json exists.
            host.run("Rename-Item", Path=temp, NewName=f"{f.name}.vhdx")
            host.run("Rename-Item", Path=f.path(".building.json"), NewName=f"{f.name}.json")
        except BaseException:
            self._discard(f, leftover=False)
            raise
        return facts

    def _formatted(self, number: int, fs: str, label: str, **size: Any) -> tuple[Any, str]:
        """A new basic partition on disk `number` with a drive letter, formatted `fs`;
        the partition and its letter. `size`: Size=... or UseMaximumSize=True."""
        part = first(
            self.host.run(
                "New-Partition",
                DiskNumber=number,
                **size,
                GptType=GPT_BASIC,
                AssignDriveLetter=True,
            )
        )
        letter = _letter(part)
        self.host.run(
            "Format-Volume",
            DriveLetter=letter,
            FileSystem=fs,
            NewFileSystemLabel=label,
            Force=True,
            Confirm=False,
        )
        return part, letter

    def _unchanged(self, f: Files, t0: float) -> dict[str, Any]:
        assert f.sidecar is not None
        self.say(
            f"image {f.name} is up to date (same ISO, edition, roles and packages); nothing to do"
        )
        return {**f.sidecar, "changed": False, "seconds": round(time.monotonic() - t0, 3)}


def _key(iso_sha: str, details: Any, features: list[str], pkg_shas: list[str]) -> str:
    """What makes two images the same (R-123): ISO, edition (index name), roles, packages."""
    body = json.dumps(
        {
            "iso_sha256": iso_sha,
            "image_name": text(val(details, "ImageName")),
            "edition": text(val(details, "EditionId")),
            "features": sorted(f.lower() for f in features),
            "packages": sorted(pkg_shas),
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _describe(sidecar: dict[str, Any]) -> str:
    return (
        f"{sidecar.get('image_name')} from ISO {text(sidecar.get('iso', {}).get('sha256'))[:12]}... "
        f"with {', '.join(sidecar.get('features') or []) or 'no staged roles'}"
    )


def _sidecar(
    f: Files,
    req: Request,
    details: Any,
    applied: Any,
    features: list[str],
    iso_sha: str,
    pkg_shas: list[str],
    key: str,
    identity: dict[str, Any],
) -> dict[str, Any]:
    languages = val(applied, "Languages") or val(details, "Languages") or []
    language = text(languages[0] if isinstance(languages, list) and languages else languages)
    return {
        "hvlab_image": SIDECAR_FORMAT,
        "name": f.name,
        "file": f"{f.name}.vhdx",
        "key": key,
        "request": identity,
        "image_name": text(val(details, "ImageName")),
        "edition": text(val(applied, "EditionId")),
        "installation_type": text(val(details, "InstallationType")),
        "version": text(val(applied, "Version")),
        "build": int(val(applied, "Build", 0) or 0),
        "language": language,
        "features": features,
        "packages": [{"path": p, "sha256": s} for p, s in zip(req.packages, pkg_shas, strict=True)],
        "iso": {
            "path": req.iso,
            "sha256": iso_sha,
            "image_index": int(val(details, "ImageIndex")),
        },
        "size_bytes": req.size,
        "built_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
