"""Each Hyper-V host rule broken on purpose, and the error Windows writes (R-xx)."""

from __future__ import annotations

import pytest
from hostkit import GiB, i64, out, run, u64

from hvsim.errors import PSError
from hvsim.model.world import World

IMG = "C:\\hvlab\\images\\ws2022-datacenter.vhdx"
HV = "Microsoft.HyperV.PowerShell.Commands."


@pytest.fixture
def world() -> World:
    w = World.create()
    w.host.fs.mkdir("C:\\lab")
    return w


def make_vm(w: World, name: str = "n1", mem: int = 4 * GiB, disk: bool = True) -> None:
    kw = {}
    if disk:
        out(w, "New-VHD", Path=f"C:\\lab\\{name}-os.vhdx", ParentPath=IMG, Differencing=True)
        kw["VHDPath"] = f"C:\\lab\\{name}-os.vhdx"
    out(w, "New-VM", Name=name, Generation=2, MemoryStartupBytes=i64(mem), Path="C:\\lab", **kw)


def fails(w: World, name: str, **params: object) -> PSError:
    with pytest.raises(PSError) as exc:
        run(w, name, **params)
    return exc.value


def test_r01_expose_extensions_only_when_off(world: World) -> None:
    make_vm(world)
    out(world, "Set-VMProcessor", VMName="n1", ExposeVirtualizationExtensions=True)
    out(world, "Start-VM", Name="n1")
    err = fails(world, "Set-VMProcessor", VMName="n1", ExposeVirtualizationExtensions=False)
    assert err.message == "Failed to modify device 'Processor'."
    assert err.fqid == f"InvalidState,{HV}SetVMProcessor"
    assert err.category == "InvalidOperation"
    [p] = out(world, "Get-VMProcessor", VMName="n1")
    assert p["ExposeVirtualizationExtensions"] is True  # unchanged
    assert world.vm("n1").booted_with["expose_virtualization_extensions"] is True


def test_r11_processor_count_only_when_off(world: World) -> None:
    make_vm(world)
    out(world, "Start-VM", Name="n1")
    err = fails(world, "Set-VMProcessor", VMName="n1", Count=4)
    assert err.fqid == f"InvalidState,{HV}SetVMProcessor"
    err = fails(world, "Set-VM", Name="n1", ProcessorCount=4)
    assert err.message == "Failed to modify device 'Processor'."
    assert world.vm("n1").processor_count == 1


def test_r05_memory_changes_while_running(world: World) -> None:
    make_vm(world)
    out(world, "Start-VM", Name="n1")
    err = fails(world, "Set-VMMemory", VMName="n1", StartupBytes=i64(8 * GiB))
    assert err.message == "Failed to modify device 'Memory'."
    assert err.fqid == f"InvalidState,{HV}SetVMMemory"
    assert err.category == "InvalidOperation"
    err = fails(world, "Set-VMMemory", VMName="n1", DynamicMemoryEnabled=True)
    assert err.fqid == f"InvalidState,{HV}SetVMMemory"
    assert world.vm("n1").memory_startup == 4 * GiB
    out(world, "Stop-VM", Name="n1", TurnOff=True)
    out(world, "Set-VMMemory", VMName="n1", DynamicMemoryEnabled=False, StartupBytes=i64(8 * GiB))
    [m] = out(world, "Get-VMMemory", VMName="n1")
    assert int(m["Startup"]) == 8 * GiB and m["DynamicMemoryEnabled"] is False


def test_r03_config_version_numeric(world: World) -> None:
    [v] = out(world, "Get-VMHostSupportedVersion", Default=True)
    assert v["Version"].to_string == "10.0" and int(v["Version"]["Major"]) == 10
    make_vm(world, disk=False)
    [vm] = out(world, "Get-VM", Name="n1")
    assert vm["Version"] == "10.0"
    out(world, "New-VM", Name="old", Generation=2, Version="9.3", NoVHD=True)
    assert world.vm("old").version == "9.3"
    err = fails(world, "New-VM", Name="bad", Generation=2, Version="11.0", NoVHD=True)
    assert "11.0" in err.message and err.category == "InvalidArgument"
    # A WS2022 host runs 8.0 to 10.0 (windowsserverdocs "Upgrade virtual machine version").
    fails(world, "New-VM", Name="old5", Generation=2, Version="5.0", NoVHD=True)
    versions = [v["Version"].to_string for v in out(world, "Get-VMHostSupportedVersion")]
    assert versions[0] == "8.0" and versions[-1] == "10.0" and "9.3" in versions
    from hvsim.model.hyperv import version_tuple

    assert version_tuple("10.0") > version_tuple("9.3")  # as strings it would be the other way


def test_r09_gen2_defaults_and_no_ide(world: World) -> None:
    out(world, "New-VM", Name="g2", Generation=2, NoVHD=True)
    [vm] = out(world, "Get-VM", Name="g2")
    assert int(vm["Generation"]) == 2 and int(vm["MemoryStartup"]) == 512 * 1024**2
    [fw] = out(world, "Get-VMFirmware", VMName="g2")
    assert str(fw["SecureBoot"]) == "On" and fw["SecureBootTemplate"] == "MicrosoftWindows"
    out(world, "New-VHD", Path="C:\\lab\\d.vhdx", SizeBytes=u64(GiB), Dynamic=True)
    err = fails(
        world, "Add-VMHardDiskDrive", VMName="g2", ControllerType="IDE", Path="C:\\lab\\d.vhdx"
    )
    assert "Generation 2" in err.message and err.category == "InvalidArgument"
    err = fails(world, "Add-VMNetworkAdapter", VMName="g2", IsLegacy=True)
    assert "legacy" in err.message


def test_r10_start_admission_against_free_memory(world: World) -> None:
    make_vm(world, "big1", mem=40 * GiB)
    make_vm(world, "big2", mem=30 * GiB)
    out(world, "Start-VM", Name="big1")
    assert world.host.memory_free() == 20 * GiB
    err = fails(world, "Start-VM", Name="big2")
    assert err.fqid == f"OutOfMemory,{HV}StartVM"
    assert "Not enough memory in the system to start the virtual machine big2." in err.message
    assert "(0x8007000E)" in err.message
    assert world.vm("big2").state == "Off"
    out(world, "Stop-VM", Name="big1", TurnOff=True)
    assert world.host.memory_free() == 60 * GiB
    out(world, "Start-VM", Name="big2")


def test_r12_firmware_needs_vm_off(world: World) -> None:
    make_vm(world)
    out(world, "Start-VM", Name="n1")
    err = fails(
        world, "Set-VMFirmware", VMName="n1", SecureBootTemplate="MicrosoftUEFICertificateAuthority"
    )
    assert err.message == "Failed to modify device 'Firmware'."
    out(
        world,
        "Set-VMFirmware",
        VMName="n1",
        EnableSecureBoot="On",
        SecureBootTemplate="MicrosoftWindows",
    )


def test_r13_checkpoint_refused_when_disabled(world: World) -> None:
    make_vm(world, disk=False)
    [vm] = out(world, "Get-VM", Name="n1")
    assert vm["AutomaticCheckpointsEnabled"] is True and str(vm["CheckpointType"]) == "Production"
    out(world, "Checkpoint-VM", Name="n1")
    out(world, "Set-VM", Name="n1", AutomaticCheckpointsEnabled=False, CheckpointType="Disabled")
    err = fails(world, "Checkpoint-VM", Name="n1")
    assert err.category == "InvalidOperation" and "Checkpoint" in err.message
    assert len(world.vm("n1").checkpoints) == 1


def test_r14_new_vhd_existing_path(world: World) -> None:
    out(world, "New-VHD", Path="C:\\lab\\d.vhdx", SizeBytes=u64(GiB), Dynamic=True)
    err = fails(world, "New-VHD", Path="C:\\lab\\d.vhdx", SizeBytes=u64(GiB), Dynamic=True)
    assert err.message.endswith("The file exists. (0x80070050).")


def test_r15_copy_keeps_identifier_reset_gives_new(world: World) -> None:
    [a] = out(world, "New-VHD", Path="C:\\lab\\a.vhdx", SizeBytes=u64(GiB), Dynamic=True)
    out(world, "Copy-Item", Path="C:\\lab\\a.vhdx", Destination="C:\\lab\\b.vhdx")
    [b] = out(world, "Get-VHD", Path="C:\\lab\\b.vhdx")
    assert b["DiskIdentifier"] == a["DiskIdentifier"]
    out(world, "Mount-VHD", Path="C:\\lab\\b.vhdx")
    err = fails(world, "Set-VHD", Path="C:\\lab\\b.vhdx", ResetDiskIdentifier=True, Force=True)
    assert (
        err.message == "This operation cannot be performed when the virtual disk chain is attached."
    )
    out(world, "Dismount-VHD", Path="C:\\lab\\b.vhdx")
    out(world, "Set-VHD", Path="C:\\lab\\b.vhdx", ResetDiskIdentifier=True, Force=True)
    [b] = out(world, "Get-VHD", Path="C:\\lab\\b.vhdx")
    assert b["DiskIdentifier"] != a["DiskIdentifier"]


def test_r16_writing_a_parent_corrupts_children(world: World) -> None:
    make_vm(world)
    [v] = out(world, "Mount-VHD", Path=IMG, Passthru=True)
    out(
        world,
        "Add-PartitionAccessPath",
        DiskNumber=v["DiskNumber"],
        PartitionNumber=3,
        AssignDriveLetter=True,
    )
    letter = next(
        p["DriveLetter"]
        for p in out(world, "Get-Partition", DiskNumber=v["DiskNumber"])
        if p["Type"] == "Basic"
    )
    out(world, "Set-Content", Path=f"{letter}:\\changed.txt", Value="x")
    out(world, "Dismount-VHD", Path=IMG)
    err = fails(world, "Start-VM", Name="n1")
    assert "The chain of virtual hard disks is corrupted" in err.message


def test_r17_start_while_mounted_and_mount_while_running(world: World) -> None:
    make_vm(world)
    out(world, "Mount-VHD", Path="C:\\lab\\n1-os.vhdx")
    [v] = out(world, "Get-VHD", Path="C:\\lab\\n1-os.vhdx")
    assert v["Attached"] is True and int(v["DiskNumber"]) == 1
    err = fails(world, "Start-VM", Name="n1")
    assert (
        "Failed to Power on with Error 'The process cannot access the file because it is being "
        "used by another process.' (0x80070020)"
    ) in err.message
    out(world, "Dismount-VHD", Path="C:\\lab\\n1-os.vhdx")
    out(world, "Start-VM", Name="n1")
    err = fails(world, "Mount-VHD", Path="C:\\lab\\n1-os.vhdx")
    assert "0x80070020" in err.message


def test_r17_unattend_written_while_mounted_is_in_the_disk(world: World) -> None:
    make_vm(world)
    [v] = out(world, "Mount-VHD", Path="C:\\lab\\n1-os.vhdx", Passthru=True)
    n = v["DiskNumber"]
    parts = out(world, "Get-Partition", DiskNumber=n)
    assert [str(p["Type"]) for p in parts] == ["System", "Reserved", "Basic", "Recovery"]
    assert all(p["DriveLetter"] == "\x00" for p in parts)
    out(world, "Add-PartitionAccessPath", DiskNumber=n, PartitionNumber=3, AssignDriveLetter=True)
    [os_part] = [p for p in out(world, "Get-Partition", DiskNumber=n) if p["Type"] == "Basic"]
    letter = os_part["DriveLetter"]
    assert letter == "E"  # the first free letter: D: is the host's data volume
    out(world, "New-Item", ItemType="Directory", Path=f"{letter}:\\Windows\\Panther", Force=True)
    out(
        world,
        "Set-Content",
        Path=f"{letter}:\\Windows\\Panther\\unattend.xml",
        Value="<unattend/>",
        Encoding="UTF8",
    )
    out(world, "Dismount-VHD", Path="C:\\lab\\n1-os.vhdx")
    assert out(world, "Test-Path", Path=f"{letter}:\\Windows") == [False]
    disk = world.host.fs.read("C:\\lab\\n1-os.vhdx")
    assert (
        disk.os_partition().volume.root.get("windows").get("panther").get("unattend.xml")
        is not None
    )
    parent = world.host.fs.read(IMG)
    assert (
        parent.os_partition().volume.root.get("windows").get("panther").get("unattend.xml") is None
    )


def test_r19_dynamic_mac_on_first_start(world: World) -> None:
    make_vm(world)
    [a] = out(world, "Get-VMNetworkAdapter", VMName="n1")
    assert a["MacAddress"] == "000000000000" and a["DynamicMacAddressEnabled"] is True
    out(world, "Start-VM", Name="n1")
    [a] = out(world, "Get-VMNetworkAdapter", VMName="n1")
    mac = a["MacAddress"]
    assert len(mac) == 12 and mac == mac.upper() and mac.startswith("00155D")
    out(world, "Stop-VM", Name="n1", TurnOff=True)
    out(world, "Start-VM", Name="n1")
    assert out(world, "Get-VMNetworkAdapter", VMName="n1")[0]["MacAddress"] == mac


def test_r20_duplicate_names_act_on_all(world: World) -> None:
    out(world, "New-VM", Name="dup", Generation=2, NoVHD=True)
    out(world, "New-VM", Name="dup", Generation=2, NoVHD=True)
    vms = out(world, "Get-VM", Name="dup")
    assert len(vms) == 2 and vms[0]["Id"] != vms[1]["Id"]
    out(world, "Set-VM", Name="dup", Notes="both")
    assert [vm.notes for vm in world.host.hyperv.vms] == ["both", "both"]


def test_r21_not_found_shapes(world: World) -> None:
    err = fails(world, "Set-VMFirmware", VMName="ghost", EnableSecureBoot="On")
    assert err.message == 'Hyper-V was unable to find a virtual machine with name "ghost".'
    assert err.fqid == f"ObjectNotFound,{HV}SetVMFirmware" and err.category == "ObjectNotFound"
    assert err.target == "ghost"


def test_r71_internal_switch_adds_host_vnic_private_does_not(world: World) -> None:
    [s] = out(world, "New-VMSwitch", Name="lab-mgmt", SwitchType="Internal", Notes="hvlab:lab")
    assert (
        s.type_names[0] == "Microsoft.HyperV.PowerShell.VMSwitch"
        and str(s["SwitchType"]) == "Internal"
    )
    out(world, "New-VMSwitch", Name="lab-priv", SwitchType="Private")
    names = [a["Name"] for a in out(world, "Get-NetAdapter")]
    assert "vEthernet (lab-mgmt)" in names and "vEthernet (lab-priv)" not in names
    out(world, "New-VMSwitch", Name="lab-mgmt", SwitchType="Internal")  # duplicates are allowed
    assert len(out(world, "Get-VMSwitch", Name="lab-mgmt")) == 2
    assert "vEthernet (lab-mgmt) 2" in [a["Name"] for a in out(world, "Get-NetAdapter")]
    result, streams = run(world, "Get-VMSwitch", Name="none")
    assert result == [] and "virtual switch" in streams.errors[0].message


def test_r72_duplicate_ip_refused(world: World) -> None:
    out(world, "New-VMSwitch", Name="lab-mgmt", SwitchType="Internal")
    alias = "vEthernet (lab-mgmt)"
    objs = out(
        world, "New-NetIPAddress", InterfaceAlias=alias, IPAddress="10.0.0.1", PrefixLength=24
    )
    assert [o["PolicyStore"] for o in objs] == ["ActiveStore", "PersistentStore"]
    err = fails(
        world, "New-NetIPAddress", InterfaceAlias=alias, IPAddress="10.0.0.1", PrefixLength=24
    )
    assert err.message == "Instance MSFT_NetIPAddress already exists"
    assert err.fqid == "Windows System Error 87,New-NetIPAddress"
    [ip] = out(world, "Get-NetIPAddress", InterfaceAlias=alias)
    assert ip["IPAddress"] == "10.0.0.1" and int(ip["PrefixLength"]) == 24
    out(world, "Remove-NetIPAddress", InterfaceAlias=alias, IPAddress="10.0.0.1")
    result, streams = run(world, "Get-NetIPAddress", InterfaceAlias=alias)
    assert (
        result == []
        and streams.errors[0].fqid == "CmdletizationQuery_NotFound_InterfaceAlias,Get-NetIPAddress"
    )


def test_r73_one_nat_per_host(world: World) -> None:
    out(world, "New-NetNat", Name="lab-nat", InternalIPInterfaceAddressPrefix="10.0.0.0/24")
    err = fails(world, "New-NetNat", Name="other", InternalIPInterfaceAddressPrefix="10.1.0.0/24")
    assert (
        err.message == "The parameter is incorrect."
        and err.fqid == "Windows System Error 87,New-NetNat"
    )
    [n] = out(world, "Get-NetNat")
    assert n["InternalIPInterfaceAddressPrefix"] == "10.0.0.0/24"
    out(world, "Remove-NetNat", Name="lab-nat")
    assert out(world, "Get-NetNat") == []


def test_r74_vlan_and_r06_spoofing(world: World) -> None:
    make_vm(world, disk=False)
    out(
        world,
        "Set-VMNetworkAdapterVlan",
        VMName="n1",
        VMNetworkAdapterName="Network Adapter",
        Access=True,
        VlanId=711,
    )
    out(
        world,
        "Set-VMNetworkAdapter",
        VMName="n1",
        Name="Network Adapter",
        MacAddressSpoofing="On",
        AllowTeaming="On",
        DeviceNaming="On",
    )
    [a] = out(world, "Get-VMNetworkAdapter", VMName="n1")
    assert (
        str(a["VlanSetting"]["OperationMode"]) == "Access"
        and int(a["VlanSetting"]["AccessVlanId"]) == 711
    )
    assert str(a["MacAddressSpoofing"]) == "On" and str(a["DeviceNaming"]) == "On"
    [vlan] = out(
        world, "Get-VMNetworkAdapterVlan", VMName="n1", VMNetworkAdapterName="Network Adapter"
    )
    assert vlan.type_names[0] == "Microsoft.HyperV.PowerShell.VMNetworkAdapterVlanSetting"
    assert str(vlan["OperationMode"]) == "Access" and int(vlan["AccessVlanId"]) == 711
    err = fails(
        world,
        "Set-VMNetworkAdapterVlan",
        VMName="n1",
        VMNetworkAdapterName="Network Adapter",
        Access=True,
        VlanId=5000,
    )
    assert err.category == "InvalidArgument"


def test_r79_full_volume_and_vhd_growth(world: World) -> None:
    c = world.host.fs.volume_of("C:\\")
    files = c.used() - c.used_base
    c.used_base = c.size - files - 3 * GiB  # 3 GiB left
    out(world, "New-VHD", Path="C:\\lab\\small.vhdx", SizeBytes=u64(256 * GiB), Dynamic=True)
    err = fails(world, "New-VHD", Path="C:\\lab\\fixed.vhdx", SizeBytes=u64(4 * GiB), Fixed=True)
    assert "There is not enough space on the disk. (0x80070070)" in err.message
    [v] = out(world, "Get-Volume", DriveLetter="C")
    assert int(v["SizeRemaining"]) == 3 * GiB - 4 * 1024**2  # the dynamic VHDX took 4 MiB
    # A dynamic disk grows with what is written into it, until the volume is full.
    disk = world.host.fs.read("C:\\lab\\small.vhdx")
    disk.grow(2 * GiB)
    from hvsim.model.fs import FsError

    with pytest.raises(FsError):
        disk.grow(2 * GiB)


def test_second_vm_cannot_attach_a_disk_in_use(world: World) -> None:
    make_vm(world)
    out(world, "New-VM", Name="n2", Generation=2, NoVHD=True)
    err = fails(
        world, "Add-VMHardDiskDrive", VMName="n2", ControllerType="SCSI", Path="C:\\lab\\n1-os.vhdx"
    )
    assert "already attached to virtual machine 'n1'" in err.message and "0x80070020" in err.message


def test_remove_vm_running_is_turned_off_and_keeps_vhds(world: World) -> None:
    make_vm(world)
    out(world, "Start-VM", Name="n1")
    err = fails(world, "Remove-VM", Name="n1")
    assert err.fqid == f"HostFunctionNotImplemented,{HV}RemoveVM"
    out(world, "Remove-VM", Name="n1", Force=True)
    assert world.host.hyperv.vms == []
    assert world.host.memory_free() == 60 * GiB
    [v] = out(world, "Get-VHD", Path="C:\\lab\\n1-os.vhdx")
    assert v["Attached"] is False
    assert not world.host.fs.exists("C:\\lab\\n1\\Virtual Machines\\" + "x.vmcx")


def test_hyperv_cmdlets_missing_on_machine_without_role(world: World) -> None:
    from hvsim.model.machine import Machine

    bare = Machine("plain")
    world.host.features["Hyper-V-PowerShell"] = "Installed"
    err = fails_on(world, bare, "Get-VM")
    assert err.fqid == "CommandNotFoundException" and err.category == "ObjectNotFound"
    assert "The term 'Get-VM' is not recognized" in err.message


def fails_on(world: World, machine: object, name: str) -> PSError:
    with pytest.raises(PSError) as exc:
        run(world, name, machine=machine)
    return exc.value


def test_r16_parent_of_a_running_child_is_open_read_only(world: World) -> None:
    make_vm(world)
    out(world, "Start-VM", Name="n1")
    err = fails(world, "Mount-VHD", Path=IMG)
    assert "0x80070020" in err.message
    out(world, "Mount-VHD", Path=IMG, ReadOnly=True)  # sharing for reading is allowed
    out(world, "Dismount-VHD", Path=IMG)
    _, streams = run(world, "Remove-Item", Path=IMG, Force=True)
    assert streams.errors and streams.errors[0].fqid.startswith("RemoveFileSystemItemIOError")
    assert world.host.fs.exists(IMG)
    out(world, "Stop-VM", Name="n1", TurnOff=True)
    out(world, "Mount-VHD", Path=IMG)


def test_new_vm_defaults_from_the_doc(world: World) -> None:
    [vm] = out(world, "New-VM", NewVHDPath="x.vhdx", NewVHDSizeBytes=u64(40 * GiB))
    assert vm["Name"] == "New virtual machine" and int(vm["Generation"]) == 1
    [d] = out(world, "Get-VMHardDiskDrive", VMName="New virtual machine")
    # A bare file name lands in the host's VirtualHardDiskPath.
    assert d["Path"] == "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual Hard Disks\\x.vhdx"
    assert str(d["ControllerType"]) == "IDE"
    err = fails(world, "New-VM", Name="g2", Generation=2, BootDevice="Floppy", NoVHD=True)
    assert "Floppy" in err.message and err.category == "InvalidArgument"


def test_r21_get_cmdlets_write_missing_vms_and_go_on(world: World) -> None:
    make_vm(world)
    for name in ("Get-VMProcessor", "Get-VMNetworkAdapter", "Get-VMHardDiskDrive", "Get-VMMemory"):
        result, streams = run(world, name, VMName=["ghost", "n1"])
        assert len(result) == 1, name
        [err] = streams.errors
        assert err.category == "ObjectNotFound" and err.target == "ghost", name
    result, streams = run(world, "Get-VMProcessor", VMName="ghost", ErrorAction="SilentlyContinue")
    assert result == [] and streams.errors == []


def test_r79_first_boot_grows_the_os_disk_and_a_full_volume_pauses_the_vm(world: World) -> None:
    make_vm(world)
    c = world.host.fs.volume_of("C:\\")
    files = c.used() - c.used_base
    c.used_base = c.size - files - GiB  # 1 GiB left: less than a first boot writes
    out(world, "Start-VM", Name="n1")
    [vm] = out(world, "Get-VM", Name="n1")
    assert str(vm["State"]) == "PausedCritical" and str(vm["Heartbeat"]) == "Paused"
    assert world.vm("n1").guest is None  # Windows never got to run
    err = fails(world, "Resume-VM", Name="n1")
    assert "0x80070070" in err.message
    c.used_base -= 4 * GiB  # the operator frees space
    out(world, "Resume-VM", Name="n1")
    assert world.vm("n1").state == "Running" and world.vm("n1").guest is not None
    [v] = out(world, "Get-VHD", Path="C:\\lab\\n1-os.vhdx")
    assert int(v["FileSize"]) > GiB  # the differencing disk took the first boot's writes


def test_r140_adapters_hot_add_and_remove_on_a_running_generation_2_vm(world: World) -> None:
    make_vm(world)
    out(world, "New-VMSwitch", Name="sw", SwitchType="Private")
    out(world, "Start-VM", Name="n1")
    out(world, "Add-VMNetworkAdapter", VMName="n1", Name="Extra", SwitchName="sw")
    assert [a.name for a in world.vm("n1").adapters] == ["Network Adapter", "Extra"]
    out(world, "Remove-VMNetworkAdapter", VMName="n1", Name="Extra")
    assert [a.name for a in world.vm("n1").adapters] == ["Network Adapter"]
    err = fails(world, "Set-VMNetworkAdapter", VMName="n1", StaticMacAddress="00155D0000AA")
    assert err.message == "Failed to modify device 'Network Adapter'."
    err = fails(world, "Remove-VMNetworkAdapter", VMName="n1", Name="Missing")
    assert "Missing" in err.message


def test_r140_adapters_of_a_running_generation_1_vm_need_it_off(world: World) -> None:
    out(world, "New-VM", Name="g1", Generation=1, MemoryStartupBytes=i64(GiB), Path="C:\\lab")
    out(world, "Start-VM", Name="g1")
    err = fails(world, "Remove-VMNetworkAdapter", VMName="g1", Name="Network Adapter")
    assert err.message == "Failed to modify device 'Network Adapter'."
    assert len(world.vm("g1").adapters) == 1
    out(world, "Stop-VM", Name="g1", TurnOff=True)
    out(world, "Remove-VMNetworkAdapter", VMName="g1", Name="Network Adapter")
    assert world.vm("g1").adapters == []
