"""A walk through a whole lab, written as the plain cmdlet calls a person would type
on the host, sent through the executor (no hvlab code): switch and NAT, differencing
disks with the answer file written offline, VMs, boots, a forest, joins, roles,
validation, a cluster with a witness, S2D, a CSV volume, an HA VM and a live
migration. Then everything is removed and the host must look as it did before.

Runs at timescale 0, so modelled time passes without waiting, and once more at
a small timescale where the clock moves by itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hvsim import executor
from hvsim.errors import PSError
from hvsim.model.world import World
from hvsim.objects import Credential, Int64, SecureString, UInt64

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = (ROOT / "templates/host/Invoke-GuestCommand.ps1").read_text()
SCRIPT_WRAPPER = (ROOT / "templates/host/Invoke-GuestScript.ps1").read_text()
BASE = "C:\\hvlab\\images\\ws2022-datacenter.vhdx"
LABDIR = "C:\\Lab"
GiB = 1024**3
TEST_PASSWORD = "Walk-Test-Pw1!"  # the encoded form is in the answer file below
LOCAL = Credential(".\\Administrator", SecureString(TEST_PASSWORD))
DOMAIN = Credential("WALK\\Administrator", SecureString(TEST_PASSWORD))
VMS = {
    "dc": ("00155D0B0010", "10.10.0.10"),
    "node1": ("00155D0B0011", "10.10.0.11"),
    "node2": ("00155D0B0012", "10.10.0.12"),
}


def answer_file(name: str, mac_dashed: str, ip: str) -> str:
    # The answer file as a person writes it; the password is
    # base64(UTF-16LE("Walk-Test-Pw1!AdministratorPassword")).
    return f"""<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
  <settings pass="specialize">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <ComputerName>{name}</ComputerName>
      <TimeZone>UTC</TimeZone>
    </component>
    <component name="Microsoft-Windows-TCPIP" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <Interfaces>
        <Interface wcm:action="add">
          <Ipv4Settings><DhcpEnabled>false</DhcpEnabled></Ipv4Settings>
          <Identifier>{mac_dashed}</Identifier>
          <UnicastIpAddresses><IpAddress wcm:action="add" wcm:keyValue="1">{ip}/24</IpAddress></UnicastIpAddresses>
          <Routes><Route wcm:action="add"><Identifier>0</Identifier><Prefix>0.0.0.0/0</Prefix><NextHopAddress>10.10.0.1</NextHopAddress></Route></Routes>
        </Interface>
      </Interfaces>
    </component>
    <component name="Microsoft-Windows-DNS-Client" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <Interfaces>
        <Interface wcm:action="add">
          <Identifier>{mac_dashed}</Identifier>
          <DNSServerSearchOrder><IpAddress wcm:action="add" wcm:keyValue="1">10.10.0.10</IpAddress></DNSServerSearchOrder>
        </Interface>
      </Interfaces>
    </component>
  </settings>
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <UserAccounts>
        <AdministratorPassword>
          <Value>VwBhAGwAawAtAFQAZQBzAHQALQBQAHcAMQAhAEEAZABtAGkAbgBpAHMAdAByAGEAdABvAHIAUABhAHMAcwB3AG8AcgBkAA==</Value>
          <PlainText>false</PlainText>
        </AdministratorPassword>
      </UserAccounts>
    </component>
  </settings>
</unattend>
"""


class Session:
    """A PSRP session on the host as a person would use it: one cmdlet per call."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.warnings: list[str] = []

    def error(self, err: PSError) -> None:
        raise err  # the walk stops on any error, as with $ErrorActionPreference = 'Stop'

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def verbose(self, text: str) -> None:
        pass

    def information(self, data: Any) -> None:
        pass

    def progress(self, activity: str, status: str, percent: int = -1) -> None:
        pass

    def run(self, name: str, **params: Any) -> list[Any]:
        cmd = executor.Command(name, list(params.items()))
        return executor.run_pipeline(
            self.world, self.world.host, "HV01\\Administrator", [cmd], self
        )

    def guest(self, vm: str, cred: Credential, command: str, **params: Any) -> list[Any]:
        args = [("VMName", vm), ("Credential", cred), ("Command", command), ("Parameters", params)]
        cmd = executor.Command(WRAPPER, args, is_script=True)
        return executor.run_pipeline(
            self.world, self.world.host, "HV01\\Administrator", [cmd], self
        )

    def guest_script(self, vm: str, cred: Credential, script: str, **params: Any) -> list[Any]:
        text = (ROOT / "templates/guest" / script).read_text()
        args = [("VMName", vm), ("Credential", cred), ("Script", text), ("Parameters", params)]
        cmd = executor.Command(SCRIPT_WRAPPER, args, is_script=True)
        return executor.run_pipeline(
            self.world, self.world.host, "HV01\\Administrator", [cmd], self
        )

    def restart(self, vm: str, cred: Credential) -> None:
        """A clean restart from inside the guest (R-37): a Restart-VM would be a hard
        reset that leaves pending servicing undone. The session it ends says so (R-82)."""
        try:
            self.guest(vm, cred, "Restart-Computer", Force=True)
        except PSError as exc:
            assert "The I/O operation has been aborted" in exc.message, exc.message
        else:
            raise AssertionError("Restart-Computer did not end the session")

    def wait_ready(self, vm: str, cred: Credential, since: Any = None, tries: int = 60) -> Any:
        """Poll every 5 modelled seconds until a round trip works and, after a reboot,
        the boot marker has changed (R-35, R-37). Bounded: fails after `tries`."""
        last = None
        for _ in range(tries):
            try:
                os_info = self.guest(
                    vm, cred, "Get-CimInstance", ClassName="Win32_OperatingSystem"
                )[0]
                if since is None or os_info["LastBootUpTime"] != since:
                    return os_info
                last = "still the old boot"
            except PSError as exc:
                last = exc.message
            self.world.clock.sleep(5)
        raise AssertionError(f"{vm} not ready after {tries} polls; last: {last}")


def _create_vm(s: Session, name: str, data_disks: int) -> None:
    mac, ip = VMS[name]
    folder = f"{LABDIR}\\{name}"
    os_vhd = f"{folder}\\{name}-os.vhdx"
    s.run("New-Item", ItemType="Directory", Path=folder, Force=True)
    s.run("New-VHD", Path=os_vhd, ParentPath=BASE, Differencing=True)
    disk = s.run("Mount-VHD", Path=os_vhd, Passthru=True)[0]
    number = disk["DiskNumber"]
    part = next(p for p in s.run("Get-Partition", DiskNumber=number) if str(p["Type"]) == "Basic")
    if part["DriveLetter"] in (None, "", "\x00"):  # a Char 0 when there is no letter
        s.run(
            "Add-PartitionAccessPath",
            DiskNumber=number,
            PartitionNumber=part["PartitionNumber"],
            AssignDriveLetter=True,
        )
        part = next(
            p for p in s.run("Get-Partition", DiskNumber=number) if str(p["Type"]) == "Basic"
        )
    letter = str(part["DriveLetter"])
    s.run("New-Item", ItemType="Directory", Path=f"{letter}:\\Windows\\Panther", Force=True)
    mac_dashed = "-".join(mac[i : i + 2] for i in range(0, 12, 2))
    s.run(
        "Set-Content",
        Path=f"{letter}:\\Windows\\Panther\\unattend.xml",
        Value=answer_file(name, mac_dashed, ip),
        Encoding="UTF8",
    )
    s.run("Dismount-VHD", Path=os_vhd)
    s.run(
        "New-VM",
        Name=name,
        Generation=2,
        MemoryStartupBytes=Int64(8 * GiB),
        Path=LABDIR,
        VHDPath=os_vhd,
        SwitchName="walk-mgmt",
    )
    s.run("Set-VMProcessor", VMName=name, Count=4, ExposeVirtualizationExtensions=True)
    s.run("Set-VMMemory", VMName=name, DynamicMemoryEnabled=False, StartupBytes=Int64(8 * GiB))
    s.run(
        "Set-VMNetworkAdapter",
        VMName=name,
        Name="Network Adapter",
        StaticMacAddress=mac,
        MacAddressSpoofing="On",
        DeviceNaming="On",
    )
    for i in range(1, data_disks + 1):
        path = f"{folder}\\{name}-data{i}.vhdx"
        s.run("New-VHD", Path=path, SizeBytes=UInt64(256 * GiB), Dynamic=True)
        s.run("Add-VMHardDiskDrive", VMName=name, ControllerType="SCSI", Path=path)
    s.run("Start-VM", Name=name)


@pytest.mark.parametrize("timescale", [0.0, 0.001], ids=["instant", "real-time-1ms"])
def test_walk_build_and_remove_a_lab(timescale: float) -> None:
    # Timescale 0 is the walk proper; 1 ms per modelled second runs the same calls
    # against a clock that moves by itself, so the waits must really wait.
    world = World.create(timescale=timescale)
    before = world.snapshot()
    s = Session(world)

    # Host network (R-71..R-73).
    s.run("New-VMSwitch", Name="walk-mgmt", SwitchType="Internal")
    s.run(
        "New-NetIPAddress",
        InterfaceAlias="vEthernet (walk-mgmt)",
        IPAddress="10.10.0.1",
        PrefixLength=24,
    )
    s.run("New-NetNat", Name="walk-nat", InternalIPInterfaceAddressPrefix="10.10.0.0/24")

    # VMs (R-09..R-19, R-75), three booting side by side.
    _create_vm(s, "dc", 0)
    _create_vm(s, "node1", 4)
    _create_vm(s, "node2", 4)
    for vm in VMS:
        os_info = s.wait_ready(vm, LOCAL)
        assert os_info["BuildNumber"] == "20348"

    # The forest.
    s.guest(
        "dc",
        LOCAL,
        "Install-WindowsFeature",
        Name=["AD-Domain-Services"],
        IncludeManagementTools=True,
    )
    s.guest(
        "dc",
        LOCAL,
        "Install-ADDSForest",
        DomainName="walk.test",
        DomainNetbiosName="WALK",
        SafeModeAdministratorPassword=SecureString(TEST_PASSWORD),
        InstallDns=True,
        NoRebootOnCompletion=True,
        Force=True,
    )
    boot = s.guest("dc", LOCAL, "Get-CimInstance", ClassName="Win32_OperatingSystem")[0][
        "LastBootUpTime"
    ]
    s.restart("dc", LOCAL)  # the local SAM still exists until the promotion boot
    s.wait_ready("dc", DOMAIN, since=boot)
    for _ in range(60):  # AD becomes ready a while after the reboot
        try:
            s.guest("dc", DOMAIN, "Get-ADDomainController")
            break
        except PSError:
            world.clock.sleep(10)
    else:
        raise AssertionError("AD never became ready")

    # Nodes: join, roles, HwTimeout, one restart (R-41..R-46, R-61).
    for node in ("node1", "node2"):
        s.guest(node, LOCAL, "Add-Computer", DomainName="walk.test", Credential=DOMAIN, Force=True)
        s.guest(
            node,
            LOCAL,
            "Install-WindowsFeature",
            Name=[
                "Hyper-V",
                "Failover-Clustering",
                "FS-FileServer",
                "Hyper-V-PowerShell",
                "RSAT-Clustering-PowerShell",
            ],
            IncludeManagementTools=True,
        )
        s.guest(
            node,
            LOCAL,
            "Set-ItemProperty",
            Path="HKLM:\\SYSTEM\\CurrentControlSet\\Services\\spaceport\\Parameters",
            Name="HwTimeout",
            Value=30000,
            Type="DWord",
        )
        boot = s.guest(node, LOCAL, "Get-CimInstance", ClassName="Win32_OperatingSystem")[0][
            "LastBootUpTime"
        ]
        s.restart(node, LOCAL)
        s.wait_ready(node, DOMAIN, since=boot)
        # Hyper-V boots twice; the first boot answers without vmms. Poll, bounded.
        for _ in range(60):
            try:
                vmms = s.guest(
                    node, DOMAIN, "Get-Service", Name="vmms", ErrorAction="SilentlyContinue"
                )
                if vmms and str(vmms[0]["Status"]) == "Running":
                    break
            except PSError:
                pass  # between the two boots the session may end
            world.clock.sleep(5)
        else:
            raise AssertionError(f"vmms never ran on {node}")
        cs = s.guest(node, DOMAIN, "Get-CimInstance", ClassName="Win32_ComputerSystem")[0]
        assert cs["PartOfDomain"] is True and cs["Domain"] == "walk.test"

    # Validation and the cluster.
    report = s.guest(
        "node1",
        DOMAIN,
        "Test-Cluster",
        Node=["node1", "node2"],
        Include=["Storage Spaces Direct", "Inventory", "Network", "System Configuration"],
        ReportName="walk",
    )[0]["FullName"]
    html = s.guest("node1", DOMAIN, "Get-Content", Path=report)
    assert "Failed" not in "".join(str(x) for x in html)
    s.guest(
        "node1",
        DOMAIN,
        "New-Cluster",
        Name="walkcl",
        Node=["node1", "node2"],
        StaticAddress="10.10.0.20",
        NoStorage=True,
    )
    s.guest("dc", DOMAIN, "New-Item", ItemType="Directory", Path="C:\\Witness\\walkcl", Force=True)
    s.guest(
        "dc",
        DOMAIN,
        "New-SmbShare",
        Name="walkcl-witness",
        Path="C:\\Witness\\walkcl",
        FullAccess=["WALK\\walkcl$", "WALK\\Administrator"],
    )
    s.guest("dc", DOMAIN, "Set-SmbPathAcl", ShareName="walkcl-witness")
    s.guest("node1", DOMAIN, "Set-ClusterQuorum", FileShareWitness="\\\\dc\\walkcl-witness")
    quorum = s.guest("node1", DOMAIN, "Get-ClusterQuorum")[0]
    assert str(quorum["QuorumResource"]["State"]) == "Online"
    role = s.guest_script(
        "node1",
        DOMAIN,
        "Set-ClusterNetworkRole.ps1",
        Address="10.10.0.0",
        Name="Management",
        Role=3,
    )
    assert role[0]["Name"] == "Management"

    # S2D and a volume (R-60..R-65).
    s.guest(
        "node1", DOMAIN, "Enable-ClusterStorageSpacesDirect", CacheState="Disabled", Confirm=False
    )
    pool = s.guest("node1", DOMAIN, "Get-StoragePool", IsPrimordial=False)
    assert [p["FriendlyName"] for p in pool] == ["S2D on WALKCL"]
    s.guest(
        "node1",
        DOMAIN,
        "New-Volume",
        StoragePoolFriendlyName="S2D on WALKCL",
        FriendlyName="vol1",
        FileSystem="CSVFS_ReFS",
        Size=UInt64(200 * GiB),
        ResiliencySettingName="Mirror",
    )
    for node in ("node1", "node2"):
        assert s.guest(node, DOMAIN, "Test-Path", Path="C:\\ClusterStorage\\vol1") == [True]
        s.guest(
            node,
            DOMAIN,
            "Set-VMHost",
            VirtualMachinePath="C:\\ClusterStorage\\vol1",
            VirtualHardDiskPath="C:\\ClusterStorage\\vol1",
        )
        s.guest(
            node,
            DOMAIN,
            "New-VMSwitch",
            Name="Compute",
            NetAdapterName="Ethernet",
            AllowManagementOS=True,
        )

    # An HA VM and a live migration (R-67..R-70).
    s.guest(
        "node1",
        DOMAIN,
        "New-VM",
        Name="l2",
        Generation=2,
        MemoryStartupBytes=Int64(1 * GiB),
        Path="C:\\ClusterStorage\\vol1",
        NewVHDPath="C:\\ClusterStorage\\vol1\\l2\\l2.vhdx",
        NewVHDSizeBytes=UInt64(20 * GiB),
        SwitchName="Compute",
    )
    s.guest("node1", DOMAIN, "Add-ClusterVirtualMachineRole", VMName="l2")
    s.guest("node1", DOMAIN, "Start-ClusterGroup", Name="l2")
    up1 = world.vm("l2").uptime(world.clock.now())
    s.guest(
        "node1",
        DOMAIN,
        "Move-ClusterVirtualMachineRole",
        Name="l2",
        Node="node2",
        MigrationType="Live",
    )
    group = s.guest("node1", DOMAIN, "Get-ClusterGroup", Name="l2")[0]
    assert group["OwnerNode"].to_string == "NODE2" and str(group["State"]) == "Online"
    assert world.vm("l2").uptime(world.clock.now()) > up1  # Uptime keeps counting
    assert world.cluster("walkcl").witness == "\\\\dc\\walkcl-witness"

    # the answer file is still in the guest until someone deletes it.
    assert world.guest("node1").fs.exists("C:\\Windows\\Panther\\unattend.xml")
    s.guest("node1", DOMAIN, "Remove-Item", Path="C:\\Windows\\Panther\\unattend.xml", Force=True)
    assert not world.guest("node1").fs.exists("C:\\Windows\\Panther\\unattend.xml")

    # Down: VMs, files, switch, address, NAT.
    for vm in VMS:
        s.run("Stop-VM", Name=vm, TurnOff=True, Force=True)
        s.run("Remove-VM", Name=vm, Force=True)
    s.run("Remove-Item", Path=LABDIR, Recurse=True, Force=True)
    s.run("Remove-VMSwitch", Name="walk-mgmt", Force=True)
    s.run("Remove-NetNat", Name="walk-nat", Confirm=False)
    assert world.snapshot() == before
