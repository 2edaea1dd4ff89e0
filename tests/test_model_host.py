"""The default host profile and the first Hyper-V/VHD reads (R-03, R-14, R-21, R-79)."""

from __future__ import annotations

import pytest
from hostkit import GiB, out, run, u64

from hvsim.errors import PSError
from hvsim.model.world import World

IMG = "C:\\hvlab\\images\\ws2022-datacenter.vhdx"


@pytest.fixture
def world() -> World:
    return World.create()


def test_default_profile(world: World) -> None:
    host = world.host
    assert host.name == "HV01"
    assert host.os.build == 20348 and "Datacenter" in host.os.caption
    assert host.hardware.manufacturer == "GenuineIntel"
    assert host.hardware.logical_processors == 32
    assert host.memory_total == 64 * GiB
    assert host.memory_free() == 60 * GiB  # 4 GiB host reserve
    c = host.fs.volume_of("C:\\")
    assert c.file_system == "NTFS" and c.size == 2 * 1024**4
    assert c.free() == 3 * 1024**4 // 2
    assert host.hyperv is not None and host.hyperv.default_version == "10.0"
    for name in ("ws2022-datacenter.vhdx", "ws2022-standard.vhdx"):
        vhd = host.fs.read(f"C:\\hvlab\\images\\{name}")
        assert vhd.image.generalized and vhd.image.build == 20348
    assert host.fs.read(IMG).image.edition == "ServerDatacenter"
    assert host.fs.read("c:/HVLAB/images/WS2022-STANDARD.vhdx").image.edition == "ServerStandard"


def test_get_vmhost_shape(world: World) -> None:
    [h] = out(world, "Get-VMHost")
    assert h.type_names[0] == "Microsoft.HyperV.PowerShell.VMHost"
    assert h["ComputerName"] == "HV01"
    assert int(h["MemoryCapacity"]) == 64 * GiB and type(h["MemoryCapacity"]).__name__ == "Int64"
    assert int(h["LogicalProcessorCount"]) == 32
    assert h["VirtualMachinePath"] == "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"
    assert h["MacAddressMinimum"] == "00155D010A00"


def test_get_vm_missing_is_non_terminating_r21(world: World) -> None:
    result, streams = run(world, "Get-VM", Name="nope")
    assert result == []
    [err] = streams.errors
    assert err.message == 'Hyper-V was unable to find a virtual machine with name "nope".'
    assert err.category == "InvalidArgument"
    assert err.fqid == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert err.exception == "Microsoft.HyperV.PowerShell.VirtualizationException"
    assert err.target == "nope"


def test_get_vm_missing_silently_continue(world: World) -> None:
    result, streams = run(world, "Get-VM", Name="nope", ErrorAction="SilentlyContinue")
    assert result == [] and streams.errors == []


def test_new_vhd_dynamic_r14(world: World) -> None:
    [v] = out(
        world, "New-VHD", Path="C:\\lab\\..\\hvlab\\d1.vhdx", SizeBytes=u64(256 * GiB), Dynamic=True
    )
    assert v.type_names[0] == "Microsoft.Vhd.PowerShell.VirtualHardDisk"
    assert v["Path"] == "C:\\hvlab\\d1.vhdx"
    assert str(v["VhdType"]) == "Dynamic" and str(v["VhdFormat"]) == "VHDX"
    assert int(v["Size"]) == 274877906944 and type(v["Size"]).__name__ == "UInt64"
    assert int(v["FileSize"]) == 4 * 1024**2
    assert v["Attached"] is False and v["DiskNumber"] is None


def test_new_vhd_existing_path_fails_r14(world: World) -> None:
    out(world, "New-VHD", Path="C:\\hvlab\\d1.vhdx", SizeBytes=u64(GiB), Dynamic=True)
    with pytest.raises(PSError) as exc:
        run(world, "New-VHD", Path="C:\\HVLAB\\D1.VHDX", SizeBytes=u64(GiB), Dynamic=True)
    assert "The file exists. (0x80070050)" in exc.value.message
    assert exc.value.fqid == "OperationFailed,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd"


def test_new_vhd_missing_folder_fails(world: World) -> None:
    with pytest.raises(PSError) as exc:
        run(world, "New-VHD", Path="C:\\nowhere\\d1.vhdx", SizeBytes=u64(GiB), Dynamic=True)
    assert "(0x80070003)" in exc.value.message


def test_differencing_child_r16(world: World) -> None:
    [v] = out(world, "New-VHD", Path="C:\\hvlab\\os.vhdx", ParentPath=IMG, Differencing=True)
    assert str(v["VhdType"]) == "Differencing" and v["ParentPath"] == IMG
    parent = world.host.fs.read(IMG)
    # MS-VHDX 2.6.1.2: a differencing disk copies the parent's Virtual Disk ID.
    assert v["DiskIdentifier"] == parent.disk_identifier
    child = world.host.fs.read("C:\\hvlab\\os.vhdx")
    # The child sees the parent's Windows files.
    assert child.os_partition().volume.root.get("windows").get("panther") is not None


def test_get_vhd_missing_r21_family(world: World) -> None:
    result, streams = run(world, "Get-VHD", Path="C:\\hvlab\\none.vhdx")
    assert result == []
    [err] = streams.errors
    assert err.message == "'C:\\hvlab\\none.vhdx' is not an existing virtual hard disk file."
    assert err.category == "InvalidArgument"
    assert err.fqid == "InvalidParameter,Microsoft.Vhd.PowerShell.Cmdlets.GetVHD"


def test_new_vhd_fixed_needs_space_r79(world: World) -> None:
    with pytest.raises(PSError) as exc:
        run(world, "New-VHD", Path="C:\\hvlab\\big.vhdx", SizeBytes=u64(2 * 1024**4), Fixed=True)
    assert "There is not enough space on the disk. (0x80070070)" in exc.value.message
    assert not world.host.fs.exists("C:\\hvlab\\big.vhdx")
