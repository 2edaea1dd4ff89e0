"""hvsim's model of building a base image on the host (R-115..R-123): ISO media,
WIM indexes, the Gen2 disk layout, DISM apply, bcdboot, packages, staged roles,
file hashes and renames. Through the real executor (binding included)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from guestlab import add_vm, start, stop, unattend_xml
from hostkit import GiB, cmd, out, pipe, run, u64

from hvsim import executor, scripts
from hvsim.errors import PSError
from hvsim.model import iso
from hvsim.model.guest import GuestOS
from hvsim.model.winimage import bootable
from hvsim.model.world import HostProfile, World
from hvsim.objects import PSObj

ISO = "C:\\isos\\server.iso"
VHD = "C:\\hvlab\\images\\t.vhdx"
BASIC = "{ebd0a0a2-b9e5-4433-87c0-68b6b72699c7}"
ESP = "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}"
MSR = "{e3c9e316-0b5c-4db8-817d-f92df00215ae}"
ROOT = Path(__file__).resolve().parent.parent
CIM = "Microsoft.Management.Infrastructure.CimInstance"


def _world(indexes: list[iso.WimIndex] | None = None, **profile: Any) -> World:
    world = World.create(HostProfile(**profile)) if profile else World.create()
    media = iso.manifest_bytes(indexes or iso.server_2022_indexes(evaluation=True))
    world.host.fs.write(ISO, media, create_parents=True)
    return world


def _script(world: World, name: str, **params: Any) -> list[Any]:
    text = (ROOT / "templates" / "host" / name).read_text(encoding="utf-8")
    command = executor.Command(text, list(params.items()), is_script=True)
    return executor.run_pipeline(world, world.host, "HV01\\Administrator", [command], _Sink())


class _Sink:
    def error(self, e: PSError) -> None: ...
    def warning(self, t: str) -> None: ...
    def verbose(self, t: str) -> None: ...
    def information(self, d: object) -> None: ...
    def progress(self, a: str, s: str, p: int = -1) -> None: ...


def _mount_iso(world: World) -> str:
    out(world, "Mount-DiskImage", ImagePath=ISO)
    volumes, streams = pipe(world, cmd("Get-DiskImage", ImagePath=ISO), cmd("Get-Volume"))
    assert not streams.errors
    return str(volumes[0].props["DriveLetter"])


def _new_disk(world: World, size: int = 60 * GiB) -> int:
    out(world, "New-Item", ItemType="Directory", Path="C:\\hvlab\\images", Force=True)
    out(world, "New-VHD", Path=VHD, SizeBytes=u64(size), Dynamic=True)
    return int(out(world, "Mount-VHD", Path=VHD, Passthru=True)[0].props["DiskNumber"])


def _layout(world: World, number: int) -> tuple[str, str]:
    out(world, "Initialize-Disk", Number=number, PartitionStyle="GPT")
    esp = out(
        world,
        "New-Partition",
        DiskNumber=number,
        Size=u64(200 * 2**20),
        GptType=BASIC,
        AssignDriveLetter=True,
    )[0]
    system = str(esp.props["DriveLetter"])
    out(world, "Format-Volume", DriveLetter=system, FileSystem="FAT32", Force=True)
    out(world, "Set-Partition", DiskNumber=number, PartitionNumber=1, GptType=ESP)
    out(world, "New-Partition", DiskNumber=number, Size=u64(16 * 2**20), GptType=MSR)
    win = out(
        world, "New-Partition", DiskNumber=number, UseMaximumSize=True, AssignDriveLetter=True
    )
    windows = str(win[0].props["DriveLetter"])
    out(world, "Format-Volume", DriveLetter=windows, FileSystem="NTFS", Force=True)
    return system, windows


def _built(world: World, index: int = 4, features: list[str] | None = None) -> None:
    letter = _mount_iso(world)
    system, windows = _layout(world, _new_disk(world))
    out(
        world,
        "Expand-WindowsImage",
        ImagePath=f"{letter}:\\sources\\install.wim",
        Index=index,
        ApplyPath=f"{windows}:\\",
    )
    _script(
        world,
        "Set-ImageBootFiles.ps1",
        WindowsPath=f"{windows}:\\Windows",
        SystemDrive=f"{system}:",
    )
    out(world, "Dismount-VHD", Path=VHD)
    if features:
        out(world, "Install-WindowsFeature", Vhd=VHD, Name=features, IncludeManagementTools=True)
    out(world, "Dismount-DiskImage", ImagePath=ISO)


# -- ISO media (R-121, R-115) ------------------------------------------------------------


def test_an_iso_mounts_read_only_and_lists_its_editions() -> None:
    world = _world()
    image = out(world, "Get-DiskImage", ImagePath=ISO)[0]
    assert image.props["Attached"] is False and image.props["StorageType"] == 1
    letter = _mount_iso(world)
    assert out(world, "Get-DiskImage", ImagePath=ISO)[0].props["DevicePath"] == "\\\\.\\CDROM0"
    listed = out(world, "Get-WindowsImage", ImagePath=f"{letter}:\\sources\\install.wim")
    assert [str(i.props["ImageName"]) for i in listed] == [
        "Windows Server 2022 Standard Evaluation",
        "Windows Server 2022 Standard Evaluation (Desktop Experience)",
        "Windows Server 2022 Datacenter Evaluation",
        "Windows Server 2022 Datacenter Evaluation (Desktop Experience)",
    ]
    detail = out(world, "Get-WindowsImage", ImagePath=f"{letter}:\\sources\\install.wim", Index=3)[
        0
    ]
    assert detail.props["EditionId"] == "ServerDatacenterEvalCor"
    assert detail.props["InstallationType"] == "Server Core"
    assert detail.props["Languages"] == ["en-US"]
    with pytest.raises(PSError, match="does not exist in the image file"):
        run(world, "Get-WindowsImage", ImagePath=f"{letter}:\\sources\\install.wim", Index=9)
    # a mounted medium is read-only.
    with pytest.raises(PSError, match="write protected"):
        run(world, "Set-Content", Path=f"{letter}:\\x.txt", Value="x")
    with pytest.raises(PSError, match="write protected"):
        run(world, "New-Item", ItemType="Directory", Path=f"{letter}:\\new")


def test_mounting_twice_and_odd_files_are_refused() -> None:
    world = _world()
    out(world, "Mount-DiskImage", ImagePath=ISO)
    with pytest.raises(PSError, match="being used by another process") as err:  # documented
        run(world, "Mount-DiskImage", ImagePath=ISO)
    assert err.value.fqid.startswith("HRESULT 0x80070020")
    world.host.fs.write("C:\\isos\\junk.iso", b"not a medium")
    with pytest.raises(PSError, match="corrupted and unreadable"):
        run(world, "Mount-DiskImage", ImagePath="C:\\isos\\junk.iso")
    with pytest.raises(PSError, match="cannot find the file"):
        run(world, "Mount-DiskImage", ImagePath="C:\\isos\\missing.iso")
    out(world, "Dismount-DiskImage", ImagePath=ISO)
    with pytest.raises(PSError, match="not attached"):
        run(world, "Dismount-DiskImage", ImagePath=ISO)
    assert not any(getattr(v.owner, "image_path", None) for v in world.host.fs.drives.values())


def test_storage_objects_bind_by_cim_class() -> None:
    """`Get-DiskImage | Get-Volume` binds -DiskImage only (its PSTypeName), not -Partition."""
    world = _world()
    out(world, "Mount-DiskImage", ImagePath=ISO)
    volumes, streams = pipe(world, cmd("Get-DiskImage", ImagePath=ISO), cmd("Get-Volume"))
    assert not streams.errors
    assert [v.props["FileSystem"] for v in volumes] == ["UDF"]
    assert volumes[0].props["DriveType"] == "CD-ROM"
    # Another storage object does not bind to -DiskImage, nor a disk image to -Partition.
    from hvsim.bind_pipeline import assignable
    from hvsim.catalog import catalog

    def cim(cls: str) -> PSObj:
        return PSObj([f"{CIM}#ROOT/Microsoft/Windows/Storage/{cls}", CIM, "System.Object"], {})

    params = catalog().get("Get-Volume").params
    assert assignable(cim("MSFT_DiskImage"), params["DiskImage"])
    assert not assignable(cim("MSFT_Partition"), params["DiskImage"])
    assert not assignable(cim("MSFT_DiskImage"), params["Partition"])


# -- the disk layout (R-116) --------------------------------------------------------------


def test_disk_layout_rules() -> None:
    world = _world()
    number = _new_disk(world, 40 * GiB)
    with pytest.raises(PSError, match="has not been initialized"):
        run(world, "New-Partition", DiskNumber=number, UseMaximumSize=True)
    out(world, "Initialize-Disk", Number=number)
    with pytest.raises(PSError, match="already been initialized"):
        run(world, "Initialize-Disk", Number=number)
    with pytest.raises(PSError, match="Not enough available capacity"):
        run(world, "New-Partition", DiskNumber=number, Size=u64(41 * GiB))
    esp = out(
        world,
        "New-Partition",
        DiskNumber=number,
        Size=u64(200 * 2**20),
        GptType=ESP,
        AssignDriveLetter=True,
    )[0]
    assert esp.props["Type"] == "System" and esp.props["Offset"] == 2**20
    # The ESP is formatted as a data partition and typed afterwards (Convert-WindowsImage).
    with pytest.raises(PSError, match="EFI system partition"):
        run(world, "Format-Volume", DriveLetter=str(esp.props["DriveLetter"]), FileSystem="FAT32")
    data = out(world, "New-Partition", DiskNumber=number, Size=u64(GiB), AssignDriveLetter=True)[0]
    assert data.props["Offset"] == 201 * 2**20
    letter = str(data.props["DriveLetter"])
    assert letter != str(esp.props["DriveLetter"]), "letters of unformatted partitions are taken"
    out(world, "Format-Volume", DriveLetter=letter, FileSystem="NTFS")
    with pytest.raises(PSError, match="does not support user interaction"):
        run(world, "Format-Volume", DriveLetter=letter, FileSystem="NTFS")
    rest = out(world, "New-Partition", DiskNumber=number, UseMaximumSize=True)[0]
    assert rest.props["Offset"] + rest.props["Size"] == 40 * GiB - 2**20


def test_an_applied_image_boots_only_with_boot_files(tmp_path: Any) -> None:
    world = _world()
    letter = _mount_iso(world)
    number = _new_disk(world)
    system, windows = _layout(world, number)
    wim = f"{letter}:\\sources\\install.wim"
    # NTFS only.
    with pytest.raises(PSError, match="parameter is incorrect"):
        run(world, "Expand-WindowsImage", ImagePath=wim, Index=4, ApplyPath=f"{system}:\\")
    with pytest.raises(PSError, match="does not exist in the image file"):
        run(world, "Expand-WindowsImage", ImagePath=wim, Index=7, ApplyPath=f"{windows}:\\")
    before = world.host.fs.read(VHD).file_size
    out(world, "Expand-WindowsImage", ImagePath=wim, Index=4, ApplyPath=f"{windows}:\\")
    disk = world.host.fs.read(VHD)
    assert disk.file_size - before >= 9 * GiB, "the image grows the dynamic VHDX (R-14)"
    assert disk.image.edition == "ServerDatacenterEval" and disk.image.generalized
    assert not bootable(disk), "no boot files yet (R-118)"
    with pytest.raises(PSError, match="Failure when attempting to copy boot files"):
        _script(
            world,
            "Set-ImageBootFiles.ps1",
            WindowsPath=f"{system}:\\Windows",
            SystemDrive=f"{windows}:",
        )
    assert _script(
        world,
        "Set-ImageBootFiles.ps1",
        WindowsPath=f"{windows}:\\Windows",
        SystemDrive=f"{system}:",
    ) == ["Boot files successfully created."]
    assert bootable(disk)
    out(world, "Dismount-VHD", Path=VHD)
    info = out(world, "Get-WindowsImage", ImagePath=VHD, Index=1)[0]
    assert info.props["EditionId"] == "ServerDatacenterEval"


def test_a_disk_without_boot_files_never_answers() -> None:
    world = _world()
    letter = _mount_iso(world)
    number = _new_disk(world)
    _, windows = _layout(world, number)
    out(
        world,
        "Expand-WindowsImage",
        ImagePath=f"{letter}:\\sources\\install.wim",
        Index=4,
        ApplyPath=f"{windows}:\\",
    )
    out(world, "Dismount-VHD", Path=VHD)
    out(world, "New-VM", Name="nb", Generation=2, MemoryStartupBytes=u64(2 * GiB), VHDPath=VHD)
    out(world, "Start-VM", Name="nb")
    assert world.vm("nb").state == "Running"
    assert world.vm("nb").guest is None, "the firmware finds no OS (R-118)"


def test_the_host_volume_too_small_fails_the_apply() -> None:
    world = _world(c_free=5 * GiB, images=[])
    letter = _mount_iso(world)
    _, windows = _layout(world, _new_disk(world))
    with pytest.raises(PSError, match="not enough space on the disk"):
        run(
            world,
            "Expand-WindowsImage",
            ImagePath=f"{letter}:\\sources\\install.wim",
            Index=4,
            ApplyPath=f"{windows}:\\",
        )
    assert world.host.fs.read(VHD).image is None, "nothing a VM could boot (R-79)"


# -- packages, staged roles and what guests report (R-120, R-55) -----------------


def test_packages_must_fit_the_build() -> None:
    world = _world()
    letter = _mount_iso(world)
    _, windows = _layout(world, _new_disk(world))
    out(
        world,
        "Expand-WindowsImage",
        ImagePath=f"{letter}:\\sources\\install.wim",
        Index=4,
        ApplyPath=f"{windows}:\\",
    )
    world.host.fs.write(
        "C:\\pkgs\\kb1.msu", iso.package_bytes(iso.Package("KB1", 17763, 100)), create_parents=True
    )
    world.host.fs.write("C:\\pkgs\\kb2.msu", iso.package_bytes(iso.Package("KB2", 20348, 2031)))
    with pytest.raises(PSError, match="not applicable to this image"):
        run(world, "Add-WindowsPackage", Path=f"{windows}:\\", PackagePath="C:\\pkgs\\kb1.msu")
    out(world, "Add-WindowsPackage", Path=f"{windows}:\\", PackagePath="C:\\pkgs\\kb2.msu")
    image = world.host.fs.read(VHD).image
    assert image.version == "10.0.20348.2031" and image.packages == ["KB2"]
    with pytest.raises(PSError, match="not point to a Windows image"):
        run(world, "Add-WindowsPackage", Path="C:\\", PackagePath="C:\\pkgs\\kb2.msu")


def _boot_child(world: World, name: str) -> GuestOS:
    """A VM on a child of the built image with an answer file, started (guestlab)."""
    vm = add_vm(world, name, [], xml=unattend_xml(name.upper(), {}), base=VHD)
    guest = start(world, vm)
    assert isinstance(guest, GuestOS)
    guest.phase()
    return guest


def _first_boot_seconds(guest: GuestOS) -> float:
    ready = next(s.start for s in guest.timeline if s.phase == "Ready")
    return ready - guest.timeline[0].start


def test_guests_report_the_applied_edition_and_staged_roles() -> None:
    world = _world()
    _built(world, index=2, features=["Hyper-V", "Failover-Clustering"])
    guest = _boot_child(world, "std")
    assert guest.os.edition == "ServerStandardEval" and guest.os.sku == 79
    assert guest.os.caption == "Microsoft Windows Server 2022 Standard Evaluation"
    assert guest.edition_is_datacenter() is False, "S2D validation refuses it (R-55)"
    assert guest.features["Hyper-V"] == "Installed", "staged roles finish at first boot (R-120)"
    assert guest.features["Failover-Clustering"] == "Installed"
    assert guest.hyperv is not None and guest.services["vmms"] == "Running"
    os_info = out(world, "Get-CimInstance", ClassName="Win32_OperatingSystem", machine=guest)[0]
    assert os_info.props["OperatingSystemSKU"] == 79


def test_staged_roles_lengthen_the_first_boot_only() -> None:
    plain, staged = _world(), _world()
    _built(plain)
    _built(staged, features=["Hyper-V"])
    from hvsim import timing

    grown = _first_boot_seconds(_boot_child(staged, "a")) - _first_boot_seconds(
        _boot_child(plain, "a")
    )
    assert grown == pytest.approx(timing.seconds("feature.staged_first_boot"))


def test_staging_into_a_parent_with_children_corrupts_them() -> None:
    world = _world()
    _built(world)
    _boot_child(world, "c1")
    stop(world, world.vm("c1"))
    out(world, "Install-WindowsFeature", Vhd=VHD, Name=["Failover-Clustering"])
    assert world.host.fs.read("C:\\lab\\c1\\c1-os.vhdx").corrupt, "R-16"


# -- files: hashes, renames, upload chunks (R-122, R-123) ------------------------------


def test_file_hash_and_rename() -> None:
    world = _world()
    digest = out(world, "Get-FileHash", Path=ISO)[0]
    data = world.host.fs.read(ISO)
    assert digest.props["Hash"] == hashlib.sha256(data).hexdigest().upper()
    _built(world)
    out(world, "Set-Content", Path="C:\\hvlab\\images\\x.json", Value="{}")
    with pytest.raises(PSError, match="already exists"):
        run(world, "Rename-Item", Path="C:\\hvlab\\images\\x.json", NewName="t.vhdx")
    out(world, "Mount-VHD", Path=VHD)
    with pytest.raises(PSError, match="being used by another process"):
        run(world, "Rename-Item", Path=VHD, NewName="u.vhdx")
    out(world, "Dismount-VHD", Path=VHD)
    _boot_child(world, "c2")
    stop(world, world.vm("c2"))
    out(world, "Rename-Item", Path=VHD, NewName="u.vhdx")
    assert world.host.fs.exists("C:\\hvlab\\images\\u.vhdx")
    assert not world.host.fs.exists(VHD)
    assert world.host.fs.read("C:\\lab\\c2\\c2-os.vhdx").corrupt, "a child loses its parent (R-16)"


def test_chunks_are_written_only_at_the_end_of_the_file() -> None:
    import base64

    world = _world()
    path = "C:\\up\\f.bin.partial"
    out(world, "New-Item", ItemType="Directory", Path="C:\\up")

    def chunk(offset: int, data: bytes) -> int:
        got = _script(
            world,
            "Write-FileChunk.ps1",
            Path=path,
            Offset=offset,
            Data=base64.b64encode(data).decode(),
        )
        return int(got[0])

    assert chunk(0, b"abc") == 3
    assert chunk(0, b"abc") == 3, "a repeated chunk is not written twice"
    assert chunk(3, b"def") == 6
    assert chunk(10, b"zzz") == 6, "a gap is refused: the length tells where to go on"
    assert world.host.fs.read(path) == b"abcdef"
    with pytest.raises(PSError, match="Could not find a part of the path"):
        _script(world, "Write-FileChunk.ps1", Path="C:\\nowhere\\x", Offset=0, Data="")


def test_faults_name_constant_scripts_by_file_name() -> None:
    from hvsim.faults import DropConnection, Faults

    world = _world()
    world.faults = Faults.parse("drop:cmdlet=Write-FileChunk,nth=2")
    out(world, "New-Item", ItemType="Directory", Path="C:\\up")
    _script(world, "Write-FileChunk.ps1", Path="C:\\up\\a", Offset=0, Data="")
    with pytest.raises(DropConnection):
        _script(world, "Write-FileChunk.ps1", Path="C:\\up\\a", Offset=0, Data="")


def test_the_image_scripts_are_known_by_hash() -> None:
    for name in ("Set-ImageBootFiles.ps1", "Write-FileChunk.ps1"):
        text = (ROOT / "templates" / "host" / name).read_text(encoding="utf-8")
        assert scripts.find(text, "host") is not None
        assert scripts.find(text, "guest") is None


@pytest.mark.parametrize(("index", "verdict"), [(2, "Failed"), (4, "Success")])
def test_test_cluster_judges_s2d_by_the_applied_edition(index: int, verdict: str) -> None:
    """Nodes on children of a built image: Standard evaluation fails S2D's edition check,
    Datacenter evaluation passes it (R-55)."""
    from guestlab import guest_cmd
    from test_model_cluster import LAB, NODES, build_domain, build_nodes

    world = _world()
    _built(world, index=index)
    build_domain(world)
    build_nodes(world, base=VHD)
    report = guest_cmd(
        world,
        "node1",
        "Test-Cluster",
        LAB,
        Node=list(NODES),
        Include=["Storage Spaces Direct"],
        ReportName="img",
    )
    html = world.guest("node1").fs.read(report[0]["FullName"])
    assert f"Validate Operating System Edition</td><td>{verdict}" in html
