"""Host-side cmdlets of docs/calls.md through the executor: object shapes, the lab
flow from preflight to teardown, and the host back to its starting snapshot."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hostkit import GiB, cmd, i64, out, pipe, run, u64

from hvsim.errors import PSError
from hvsim.model.hyperv import HyperV
from hvsim.model.world import World

IMG = "C:\\hvlab\\images\\ws2022-datacenter.vhdx"
LAB = "C:\\hvlab\\demo"
SW = "demo-mgmt"
MARK = "hvlab:demo"


@pytest.fixture
def world() -> World:
    return World.create()


def up(w: World, nodes: tuple[str, ...] = ("dc01", "node01")) -> None:
    """The host calls of lab.up, in calls.md order."""
    assert out(w, "Test-Path", Path=LAB) == [False]
    out(w, "New-Item", ItemType="Directory", Path=LAB, Force=True)
    out(w, "Set-Content", Path=f"{LAB}\\.hvlab-lab", Value="demo")
    out(w, "New-VMSwitch", Name=SW, SwitchType="Internal", Notes=MARK)
    out(
        w,
        "New-NetIPAddress",
        InterfaceAlias=f"vEthernet ({SW})",
        IPAddress="10.10.0.1",
        PrefixLength=24,
    )
    out(w, "New-NetNat", Name="demo-nat", InternalIPInterfaceAddressPrefix="10.10.0.0/24")
    for i, name in enumerate(nodes):
        os_vhd = f"{LAB}\\{name}\\{name}-os.vhdx"
        out(w, "New-Item", ItemType="Directory", Path=f"{LAB}\\{name}", Force=True)
        out(w, "New-VHD", Path=os_vhd, ParentPath=IMG, Differencing=True)
        [v] = out(w, "Mount-VHD", Path=os_vhd, Passthru=True)
        n = v["DiskNumber"]
        basic = [p for p in out(w, "Get-Partition", DiskNumber=n) if p["Type"] == "Basic"]
        part = max(basic, key=lambda p: int(p["Size"]))
        out(
            w,
            "Add-PartitionAccessPath",
            DiskNumber=n,
            PartitionNumber=part["PartitionNumber"],
            AssignDriveLetter=True,
        )
        [part] = [
            p
            for p in out(w, "Get-Partition", DiskNumber=n)
            if p["PartitionNumber"] == part["PartitionNumber"]
        ]
        letter = part["DriveLetter"]
        out(w, "New-Item", ItemType="Directory", Path=f"{letter}:\\Windows\\Panther", Force=True)
        out(
            w,
            "Set-Content",
            Path=f"{letter}:\\Windows\\Panther\\unattend.xml",
            Value="<unattend/>",
            Encoding="UTF8",
        )
        out(w, "Dismount-VHD", Path=os_vhd)
        for d in range(2):
            out(
                w,
                "New-VHD",
                Path=f"{LAB}\\{name}\\{name}-data{d}.vhdx",
                SizeBytes=u64(256 * GiB),
                Dynamic=True,
            )
        out(
            w,
            "New-VM",
            Name=name,
            Generation=2,
            MemoryStartupBytes=i64(4 * GiB),
            Path=LAB,
            VHDPath=os_vhd,
            SwitchName=SW,
        )
        out(
            w,
            "Set-VM",
            Name=name,
            ProcessorCount=2,
            StaticMemory=True,
            AutomaticCheckpointsEnabled=False,
            CheckpointType="Disabled",
            Notes=MARK,
        )
        out(w, "Set-VMMemory", VMName=name, DynamicMemoryEnabled=False, StartupBytes=i64(4 * GiB))
        out(w, "Set-VMProcessor", VMName=name, Count=2, ExposeVirtualizationExtensions=True)
        out(w, "Rename-VMNetworkAdapter", VMName=name, Name="Network Adapter", NewName="Mgmt")
        out(
            w,
            "Set-VMNetworkAdapter",
            VMName=name,
            Name="Mgmt",
            StaticMacAddress=f"00155D0A00{i:02X}",
            MacAddressSpoofing="On",
            AllowTeaming="On",
            DeviceNaming="On",
        )
        out(
            w,
            "Add-VMNetworkAdapter",
            VMName=name,
            Name="Storage1",
            SwitchName=SW,
            StaticMacAddress=f"00155D0A01{i:02X}",
        )
        out(
            w,
            "Set-VMNetworkAdapterVlan",
            VMName=name,
            VMNetworkAdapterName="Storage1",
            Access=True,
            VlanId=711,
        )
        for d in range(2):
            out(
                w,
                "Add-VMHardDiskDrive",
                VMName=name,
                ControllerType="SCSI",
                Path=f"{LAB}\\{name}\\{name}-data{d}.vhdx",
            )
        out(
            w,
            "Set-VMFirmware",
            VMName=name,
            EnableSecureBoot="On",
            SecureBootTemplate="MicrosoftWindows",
        )
        [v] = out(w, "Get-VHD", Path=os_vhd)
        assert v["Attached"] is False
        out(w, "Start-VM", Name=name)


def down(w: World, nodes: tuple[str, ...] = ("dc01", "node01")) -> None:
    for name in nodes:
        out(w, "Stop-VM", Name=name, TurnOff=True, Force=True)
        out(w, "Remove-VM", Name=name, Force=True)
    out(w, "Remove-Item", Path=LAB, Recurse=True, Force=True)
    out(w, "Remove-VMSwitch", Name=SW, Force=True)
    out(w, "Remove-NetNat", Name="demo-nat")


def test_lab_up_then_down_restores_the_host(world: World) -> None:
    before = world.snapshot()
    mem_before = world.host.memory_free()
    free_before = world.host.fs.volume_of("C:\\").free()
    up(world)
    vms = out(world, "Get-VM")
    assert sorted(v["Name"] for v in vms) == ["dc01", "node01"]
    assert all(str(v["State"]) == "Running" and v["Notes"] == MARK for v in vms)
    assert world.host.memory_free() == mem_before - 8 * GiB
    # The unattend file is inside the child disk the guest boots from.
    disk = world.host.fs.read(f"{LAB}\\node01\\node01-os.vhdx")
    assert (
        disk.os_partition().volume.root.get("windows").get("panther").get("unattend.xml")
        is not None
    )
    down(world)
    assert world.snapshot() == before
    assert world.host.memory_free() == mem_before
    assert world.host.fs.volume_of("C:\\").free() == free_before


def test_remove_item_keeps_files_in_use(world: World) -> None:
    up(world, ("n1",))
    _result, streams = run(world, "Remove-Item", Path=LAB, Recurse=True, Force=True)
    assert streams.errors and all(
        e.fqid.startswith("RemoveFileSystemItemIOError") for e in streams.errors
    )
    assert world.host.fs.exists(f"{LAB}\\n1\\n1-os.vhdx")
    assert not world.host.fs.exists(f"{LAB}\\.hvlab-lab")


def test_get_vm_shape(world: World) -> None:
    up(world, ("n1",))
    [vm] = out(world, "Get-VM", Name="n1")
    assert vm.type_names[0] == "Microsoft.HyperV.PowerShell.VirtualMachine"
    assert isinstance(vm["Id"], uuid.UUID) and vm["Id"] == vm["VMId"]
    assert vm["State"].type_name == "Microsoft.HyperV.PowerShell.VMState" and vm["State"].value == 2
    assert type(vm["ProcessorCount"]).__name__ == "Int64" and int(vm["ProcessorCount"]) == 2
    assert type(vm["MemoryStartup"]).__name__ == "Int64" and int(vm["MemoryAssigned"]) == 4 * GiB
    assert vm["DynamicMemoryEnabled"] is False and isinstance(vm["Uptime"], dt.timedelta)
    assert vm["Heartbeat"].type_name == "Microsoft.HyperV.PowerShell.VMHeartbeatStatus"
    assert (
        vm["Version"] == "10.0"
        and vm["Path"] == f"{LAB}\\n1"
        and vm["ConfigurationLocation"] == f"{LAB}\\n1"
    )
    assert vm["AutomaticCheckpointsEnabled"] is False and str(vm["CheckpointType"]) == "Disabled"
    assert vm["IsClustered"] is False and vm["ComputerName"] == "HV01"
    assert [a["Name"] for a in vm["NetworkAdapters"]] == ["Mgmt", "Storage1"]
    assert len(vm["HardDrives"]) == 3
    out(world, "Stop-VM", Name="n1", TurnOff=True)
    [vm] = out(world, "Get-VM", Name="n1")
    assert str(vm["State"]) == "Off" and vm["Heartbeat"] is None and vm["Uptime"] == dt.timedelta(0)


def test_adapter_drive_processor_memory_firmware_shapes(world: World) -> None:
    up(world, ("n1",))
    adapters = out(world, "Get-VMNetworkAdapter", VMName="n1")
    mgmt = adapters[0]
    assert mgmt.type_names[0] == "Microsoft.HyperV.PowerShell.VMNetworkAdapter"
    assert mgmt["MacAddress"] == "00155D0A0000" and mgmt["DynamicMacAddressEnabled"] is False
    assert (
        mgmt["SwitchName"] == SW and mgmt["Connected"] is True and mgmt["IsManagementOs"] is False
    )
    assert str(mgmt["AllowTeaming"]) == "On" and mgmt["AllowTeaming"].type_name.endswith(
        "OnOffState"
    )
    [mos] = out(world, "Get-VMNetworkAdapter", ManagementOS=True)
    assert (
        mos.type_names[0] == "Microsoft.HyperV.PowerShell.VMInternalNetworkAdapter"
        and mos["Name"] == SW
    )
    drives = out(world, "Get-VMHardDiskDrive", VMName="n1")
    assert [int(d["ControllerLocation"]) for d in drives] == [0, 1, 2]
    assert all(str(d["ControllerType"]) == "SCSI" for d in drives)
    [p] = out(world, "Get-VMProcessor", VMName="n1")
    assert p.type_names[0] == "Microsoft.HyperV.PowerShell.VMProcessor"
    assert int(p["Count"]) == 2 and p["ExposeVirtualizationExtensions"] is True
    [m] = out(world, "Get-VMMemory", VMName="n1")
    assert int(m["Startup"]) == 4 * GiB
    [fw] = out(world, "Get-VMFirmware", VMName="n1")
    assert str(fw["SecureBoot"]) == "On"
    [hb] = out(world, "Get-VMIntegrationService", VMName="n1", Name="Heartbeat")
    assert hb.type_names[0] == "Microsoft.HyperV.PowerShell.VMIntegrationComponent"
    assert hb["Id"].endswith("\\84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47") and hb["Enabled"] is True
    assert hb["PrimaryStatusDescription"] in ("OK", "No Contact")
    out(world, "Stop-VM", Name="n1", TurnOff=True)
    [hb] = out(world, "Get-VMIntegrationService", VMName="n1", Name="Heartbeat")
    assert hb["PrimaryStatusDescription"] is None


def test_pipelines_act_on_piped_objects(world: World) -> None:
    up(world, ("n1",))
    result, streams = pipe(
        world,
        cmd("Get-VMNetworkAdapter", VMName="n1"),
        cmd("Set-VMNetworkAdapter", MacAddressSpoofing="Off", Passthru=True),
    )
    assert not streams.errors and [str(a["MacAddressSpoofing"]) for a in result] == ["Off", "Off"]
    result, streams = pipe(
        world, cmd("Get-VM", Name="n1"), cmd("Stop-VM", TurnOff=True, Passthru=True)
    )
    assert not streams.errors and str(result[0]["State"]) == "Off"


def test_host_reads_preflight(world: World) -> None:
    [os_] = out(world, "Get-CimInstance", ClassName="Win32_OperatingSystem")
    assert os_.type_names[0].endswith("root/cimv2/Win32_OperatingSystem")
    assert os_["BuildNumber"] == "20348" and int(os_["FreePhysicalMemory"]) == 60 * 1024 * 1024
    [cpu0, _cpu1] = out(world, "Get-CimInstance", ClassName="Win32_Processor")
    assert cpu0["Manufacturer"] == "GenuineIntel" and int(cpu0["NumberOfLogicalProcessors"]) == 16
    # The hypervisor runs on the host: the firmware flag reads False (docs/model-notes.md).
    assert cpu0["VirtualizationFirmwareEnabled"] is False
    [cs] = out(world, "Get-CimInstance", ClassName="Win32_ComputerSystem")
    assert (
        cs["HypervisorPresent"] is True
        and cs["PartOfDomain"] is False
        and cs["Domain"] == "WORKGROUP"
    )
    [vol] = out(world, "Get-Volume", DriveLetter="C")
    assert vol["FileSystemType"] == "NTFS" and int(vol["Size"]) == 2 * 1024**4
    [img] = out(world, "Get-WindowsImage", ImagePath=IMG, Index=1)
    assert img.type_names[0] == "Microsoft.Dism.Commands.WimImageInfoObject"
    assert img["EditionId"] == "ServerDatacenter" and img["Version"].startswith("10.0.20348")
    [basic] = out(world, "Get-WindowsImage", ImagePath=IMG)
    assert basic.type_names[0] == "Microsoft.Dism.Commands.BasicImageInfoObject"
    versions = out(world, "Get-VMHostSupportedVersion")
    assert [v.to_string for v in versions][-1] == "10.0" and len(versions) > 5
    with pytest.raises(PSError, match="does not model"):
        run(world, "Get-CimInstance", ClassName="Win32_BIOS")


def test_get_disk_on_host_lists_mounted_vhds(world: World) -> None:
    [v] = out(world, "Mount-VHD", Path=IMG, Passthru=True, ReadOnly=True)
    disks = out(world, "Get-Disk")
    assert [int(d["Number"]) for d in disks] == [0, int(v["DiskNumber"])]
    assert disks[1]["Location"] == IMG and disks[1]["PartitionStyle"] == "GPT"
    # A read-only mount (how a base image is inspected, R-16) refuses writes.
    out(
        world,
        "Add-PartitionAccessPath",
        DiskNumber=v["DiskNumber"],
        PartitionNumber=3,
        AssignDriveLetter=True,
    )
    [part] = out(world, "Get-Partition", DiskNumber=v["DiskNumber"], PartitionNumber=3)
    letter = str(part["DriveLetter"])
    assert letter == "E"  # D: is the host's data volume
    with pytest.raises(PSError, match="write protected"):
        run(world, "Set-Content", Path=f"{letter}:\\x.txt", Value="x")
    out(world, "Dismount-VHD", Path=IMG)
    assert out(world, "Get-Disk", Number=0)[0]["IsBoot"] is True
    assert len(out(world, "Get-Disk")) == 1


def test_file_cmdlets(world: World) -> None:
    result, streams = run(world, "Get-Content", Path="C:\\none.txt")
    assert (
        result == []
        and streams.errors[0].fqid == "PathNotFound,Microsoft.PowerShell.Commands.GetContentCommand"
    )
    assert streams.errors[0].message == "Cannot find path 'C:\\none.txt' because it does not exist."
    out(world, "New-Item", ItemType="Directory", Path="C:\\t\\a", Force=True)
    with pytest.raises(PSError) as exc:
        run(world, "New-Item", ItemType="Directory", Path="C:\\t\\a")
    assert exc.value.fqid == "DirectoryExist,Microsoft.PowerShell.Commands.NewItemCommand"
    out(world, "Set-Content", Path="C:\\t\\a\\f.txt", Value=["one", "two"])
    assert out(world, "Get-Content", Path="C:\\T\\A\\F.TXT") == ["one", "two"]
    assert out(world, "Get-Content", Path="C:\\t\\a\\f.txt", Raw=True) == ["one\r\ntwo\r\n"]
    [item] = out(world, "Get-Item", Path="C:\\t\\a\\f.txt")
    assert item.type_names[0] == "System.IO.FileInfo" and item["FullName"] == "C:\\t\\a\\f.txt"
    assert item.notes["PSIsContainer"] is False
    out(world, "Copy-Item", Path="C:\\t\\a\\f.txt", Destination="C:\\t")
    assert out(world, "Test-Path", Path="C:\\t\\f.txt", PathType="Leaf") == [True]
    names = [i["Name"] for i in out(world, "Get-ChildItem", Path="C:\\t", Recurse=True)]
    assert names == ["a", "f.txt", "f.txt"]
    result, streams = run(world, "Set-Content", Path="C:\\missing\\x.txt", Value="x")
    assert streams.errors[0].message == "Could not find a part of the path 'C:\\missing\\x.txt'."
    out(world, "Remove-Item", Path="C:\\t", Recurse=True)
    assert out(world, "Test-Path", Path="C:\\t") == [False]


def test_hyperv_cmdlets_run_inside_a_guest_with_the_role(world: World) -> None:
    """The same handlers act on ctx.machine: a guest that runs Hyper-V (R-70)."""
    up(world, ("n1",))
    guest = world.vm("n1").guest
    assert guest is not None
    with pytest.raises(PSError, match=r"is not recognized|Virtual Machine Management"):
        run(world, "Get-VM", machine=guest)
    guest.hyperv = HyperV(guest)  # what the guest model does once the role runs
    guest.fs.mkdir("C:\\ClusterStorage\\vol1")
    out(world, "New-VMSwitch", Name="Compute", SwitchType="Internal", machine=guest)
    out(
        world,
        "New-VM",
        Name="l2",
        Generation=2,
        MemoryStartupBytes=i64(GiB),
        Path="C:\\ClusterStorage\\vol1",
        NewVHDPath="C:\\ClusterStorage\\vol1\\l2\\l2.vhdx",
        NewVHDSizeBytes=u64(40 * GiB),
        SwitchName="Compute",
        machine=guest,
    )
    [vm] = out(world, "Get-VM", Name="l2", machine=guest)
    assert vm["ComputerName"] == guest.name and vm["Path"] == "C:\\ClusterStorage\\vol1\\l2"
    assert "l2" not in [o["Name"] for o in out(world, "Get-VM")]  # the host does not see it
    [d] = out(world, "Get-VMHardDiskDrive", VMName="l2", machine=guest)
    assert d["Path"] == "C:\\ClusterStorage\\vol1\\l2\\l2.vhdx"
    # The nested host's memory is the VM's: a 1 GiB L2 fits in a 4 GiB node, 8 GiB does not.
    out(world, "Set-VMMemory", VMName="l2", StartupBytes=i64(8 * GiB), machine=guest)
    with pytest.raises(PSError) as exc:
        run(world, "Start-VM", Name="l2", machine=guest)
    assert exc.value.fqid == "OutOfMemory,Microsoft.HyperV.PowerShell.Commands.StartVM"


def test_cim_inside_a_guest_follows_the_vm(world: World) -> None:
    up(world, ("n1",))
    guest = world.vm("n1").guest
    [cs] = out(world, "Get-CimInstance", ClassName="Win32_ComputerSystem", machine=guest)
    assert cs["Manufacturer"] == "Microsoft Corporation" and cs["Model"] == "Virtual Machine"
    assert cs["HypervisorPresent"] is True and int(cs["NumberOfLogicalProcessors"]) == 2
    [cpu] = out(world, "Get-CimInstance", ClassName="Win32_Processor", machine=guest)
    # Extensions were exposed before the first start: the guest sees VT-x, and
    # no hypervisor runs inside it yet, so the firmware flag reads True.
    assert cpu["VMMonitorModeExtensions"] is True and cpu["VirtualizationFirmwareEnabled"] is True
    [os_] = out(world, "Get-CimInstance", ClassName="Win32_OperatingSystem", machine=guest)
    assert os_["BuildNumber"] == "20348" and int(os_["TotalVisibleMemorySize"]) == 4 * 1024 * 1024
