"""What the drills lean on, over the real wire (WinRM, NTLM, message encryption):
a node's power cut noticed by missed heartbeats (R-105), its VM restarted elsewhere
after the resiliency period and within the failover policy (R-106), drain and failback
(R-107), repairs after a node or drive returns (R-108), a drive pulled from a running
node (R-109), a node's network cut on the host (R-110), files copied into a guest
(R-111) and Cluster-Aware Updating with the hotfix plug-in (R-112)."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

import pytest
from guestlab import PASSWORD, NicSpec, add_vm, guest_cmd, restart, start, unattend_xml
from test_model_cluster import DOMAIN, LAB, build_cluster, build_domain, mirror_volume, vmops_switch

from hvlab.drill_facts import ps_datetime
from hvlab.errors import HostError
from hvlab.guest import Guest
from hvlab.remote import Credential, Host
from hvlab.secrets import Secret
from hvsim import timing
from hvsim.clock import Clock
from hvsim.model import vmops
from hvsim.model.fs import GiB
from hvsim.model.hyperv import VMSwitch
from hvsim.model.iso import Package, package_bytes
from hvsim.model.world import World

ADMIN = Credential("LAB\\Administrator", Secret(PASSWORD))
NODES = ("node1", "node2")
NIC = {
    "node1": ("00155D0A0011", "10.0.0.11", "00155D0B0011", "10.0.1.11"),
    "node2": ("00155D0A0012", "10.0.0.12", "00155D0B0012", "10.0.1.12"),
}


def _dashed(mac: str) -> str:
    return "-".join(mac[i : i + 2] for i in range(0, 12, 2))


def _node(world: World, name: str) -> None:
    mac, ip, smac, sip = NIC[name]
    xml = unattend_xml(
        name,
        {_dashed(mac): ip + "/24", _dashed(smac): sip + "/24"},
        dns=["10.0.0.10"],
        gateway="10.0.0.1",
    )
    vm = add_vm(
        world,
        name,
        [NicSpec("Mgmt", "lab-mgmt", mac), NicSpec("Storage", "lab-storage", smac)],
        xml=xml,
        data_disks=4,
    )
    start(world, vm)
    guest_cmd(world, name, "Add-Computer", DomainName=DOMAIN, Credential=LAB, Force=True)
    guest_cmd(
        world,
        name,
        "Install-WindowsFeature",
        Name=["Hyper-V", "Failover-Clustering", "Hyper-V-PowerShell", "RSAT-Clustering-PowerShell"],
        IncludeManagementTools=True,
    )
    restart(world, vm)


def cluster_world() -> World:
    """A DC and two nodes (management and storage NICs), a cluster with a witness, S2D
    without auto-replace, a mirror volume and a running HA VM on node1."""
    world = World.create()
    for sw in ("lab-mgmt", "lab-storage"):
        world.host.hyperv.switches.append(VMSwitch(sw, "Private", uuid.uuid4()))
    build_domain(world)
    for n in NODES:
        _node(world, n)
    build_cluster(world)
    guest_cmd(
        world,
        "node1",
        "Enable-ClusterStorageSpacesDirect",
        LAB,
        CacheState="Disabled",
        Confirm=False,
    )
    from guestlab import guest_script

    guest_script(
        world, "node1", "Set-S2DInVMSettings.ps1", LAB, AutoReplace="False", BlockCacheSize=0
    )
    mirror_volume(world)
    for n in NODES:
        vmops_switch(world, n)
    g = world.guest("node1")
    path = "C:\\ClusterStorage\\v1"
    vmops.new_vm(
        world,
        g.hyperv,
        name="l2vm",
        generation=2,
        memory_startup=1 * GiB,
        path=path,
        new_vhd=(path + "\\l2vm\\l2vm.vhdx", 40 * GiB),
        switch_name="Compute",
    )
    guest_cmd(world, "node1", "Add-ClusterVirtualMachineRole", LAB, VMName="l2vm")
    guest_cmd(world, "node1", "Start-ClusterGroup", LAB, Name="l2vm")
    return world


def _in(host: Host, vm: str, cmd: str, **params: Any) -> list[Any]:
    return Guest(host, vm, ADMIN).run(cmd, **params)


def _group(host: Host, via: str = "node1") -> Any:
    return _in(host, via, "Get-ClusterGroup", Name="l2vm")[0]


def _nodes(host: Host, via: str = "node1") -> dict[str, str]:
    return {str(n["Name"]): str(n["State"]) for n in _in(host, via, "Get-ClusterNode")}


def _health(host: Host, via: str = "node1") -> tuple[str, str]:
    vd = _in(host, via, "Get-VirtualDisk", FriendlyName="v1")[0]
    return str(vd["HealthStatus"]), str(vd["OperationalStatus"])


# -- power cut, heartbeats, compute resiliency, failover ----------------------


def test_a_power_cut_is_noticed_after_the_heartbeat_timeout_and_the_vm_fails_over(
    wire: Any,
) -> None:
    world = cluster_world()
    vm = world.vm("l2vm")
    with wire(world) as host:
        cl = _in(host, "node1", "Get-Cluster")[0]
        assert (cl["SameSubnetDelay"], cl["SameSubnetThreshold"]) == (1000, 10)
        assert (cl["ResiliencyLevel"], cl["ResiliencyDefaultPeriod"]) == (2, 240)
        # The power goes once Stop-VM -TurnOff has taken its modelled second.
        cut = world.clock.now() + timing.seconds("vm.turn_off")
        host.run("Stop-VM", Name="node1", TurnOff=True, Force=True)
        # Each look at the cluster waits for the next thing due (timescale 0). First:
        # 10 heartbeats, 1 s apart, missed; node1 is out and its VM Unmonitored.
        assert str(_group(host, "node2")["State"]) == "Unknown"
        assert world.clock.now() == pytest.approx(cut + 10)
        # Then the resiliency period ends and the VM restarts on node2.
        assert _nodes(host, "node2") == {"NODE1": "Down", "NODE2": "Up"}
        assert world.clock.now() == pytest.approx(cut + 10 + 240)
        grp = _group(host, "node2")
        assert str(grp["State"]) == "Online" and str(grp["OwnerNode"]) == "NODE2"
        assert vm.started_at == pytest.approx(cut + 10 + 240)
        running = _in(host, "node2", "Get-VM", Name="l2vm")[0]
        assert str(running["State"]) == "Running"
        # The mirror keeps the volume online while node1's drives are gone.
        assert _health(host, "node2") == ("Warning", "Degraded")
        assert _in(host, "node2", "Test-Path", Path="C:\\ClusterStorage\\v1") == [True]
        lost = [
            d
            for d in _in(host, "node2", "Get-PhysicalDisk")
            if d["OperationalStatus"] == "Lost Communication"
        ]
        assert len(lost) == 4
        # node1 comes back, rejoins, and the repair brings the mirror back.
        host.run("Start-VM", Name="node1")
        assert _nodes(host, "node2") == {"NODE1": "Up", "NODE2": "Up"}
        assert _health(host, "node2") == ("Healthy", "OK")
        assert str(_group(host, "node2")["OwnerNode"]) == "NODE2"


def test_a_second_failure_within_the_failover_period_leaves_the_role_failed(wire: Any) -> None:
    """Two nodes: FailoverThreshold n-1 = 1 failover in 6 hours (R-106)."""
    world = cluster_world()
    with wire(world) as host:
        host.run("Stop-VM", Name="node1", TurnOff=True, Force=True)
        while str(_group(host, "node2")["State"]) != "Online":
            pass
        host.run("Start-VM", Name="node1")
        assert _nodes(host, "node2")["NODE1"] == "Up"
        host.run("Stop-VM", Name="node2", TurnOff=True, Force=True)
        node2 = _in(host, "node1", "Get-ClusterNode", Name="node2")[0]
        assert (str(node2["State"]), str(node2["StatusInformation"])) == ("Down", "Isolated")
        states = [str(_group(host, "node1")["State"]) for _ in range(3)]
        assert states[-1] == "Failed", states
        # Started by hand it runs again: the policy limits automatic failovers only.
        _in(host, "node1", "Start-ClusterGroup", Name="l2vm")
        assert str(_group(host, "node1")["State"]) == "Online"


# -- drain and failback -------------------------------------------------------------


def test_drain_live_migrates_and_failback_brings_the_vm_home(wire: Any) -> None:
    world = cluster_world()
    vm = world.vm("l2vm")
    started = vm.started_at
    with wire(world) as host:
        node = _in(host, "node2", "Suspend-ClusterNode", Name="node1", Drain=True, Wait=True)[0]
        assert str(node["State"]) == "Paused" and str(node["DrainStatus"]) == "Completed"
        grp = _group(host, "node2")
        assert str(grp["OwnerNode"]) == "NODE2" and str(grp["State"]) == "Online"
        assert vm.started_at == started, "a live migration keeps the VM running"
        with pytest.raises(HostError) as err:  # a paused node takes no roles
            _in(
                host,
                "node2",
                "Move-ClusterVirtualMachineRole",
                Name="l2vm",
                Node="node1",
                MigrationType="Live",
            )
        assert "is not Up" in err.value.message
        # A paused node stays paused across a clean restart.
        _in_restart(host, world, "node1")
        assert _nodes(host, "node2")["NODE1"] == "Paused"
        assert _health(host, "node2") == ("Healthy", "OK")
        _in(host, "node2", "Resume-ClusterNode", Name="node1", Failback="Immediate")
        assert _nodes(host, "node2") == {"NODE1": "Up", "NODE2": "Up"}
        assert str(_group(host, "node2")["OwnerNode"]) == "NODE1"
        assert vm.started_at == started


def _in_restart(host: Host, world: World, vm: str) -> None:
    with contextlib.suppress(HostError):  # the session dies with the restart
        _in(host, vm, "Restart-Computer", Force=True)
    world.guest(vm).phase()  # timescale 0: the restart is over once looked at


def test_drain_is_refused_while_a_volume_is_degraded(wire: Any) -> None:
    world = cluster_world()
    with wire(world) as host:
        host.run(
            "Remove-VMHardDiskDrive",
            VMName="node2",
            ControllerType="SCSI",
            ControllerNumber=0,
            ControllerLocation=1,
        )
        with pytest.raises(HostError) as err:
            _in(host, "node2", "Suspend-ClusterNode", Name="node1", Drain=True, Wait=True)
        assert "degraded condition" in err.value.message
        assert _nodes(host, "node2") == {"NODE1": "Up", "NODE2": "Up"}


# -- a drive pulled and returned, the repair job -----------------------------


def test_a_pulled_drive_degrades_the_mirror_and_its_return_starts_a_repair(wire: Any) -> None:
    world = cluster_world()
    path = "C:\\lab\\node2\\node2-data1.vhdx"
    with wire(world) as host:
        host.run(
            "Remove-VMHardDiskDrive",
            VMName="node2",
            ControllerType="SCSI",
            ControllerNumber=0,
            ControllerLocation=1,
        )
        assert _health(host) == ("Warning", "Degraded")
        pool = _in(host, "node1", "Get-StoragePool", IsPrimordial=False)[0]
        assert (str(pool["HealthStatus"]), str(pool["OperationalStatus"])) == (
            "Warning",
            "Degraded",
        )
        lost = [
            d
            for d in _in(host, "node1", "Get-PhysicalDisk")
            if d["OperationalStatus"] == "Lost Communication"
        ]
        assert len(lost) == 1
        csv = _in(host, "node1", "Get-ClusterSharedVolume")
        assert {str(c["State"]) for c in csv} == {"Online"}, "the mirror keeps the volume online"
        # Slow the clock down so the repair can be watched (0.05 real s per modelled s).
        world.clock = Clock(timescale=0.05, start=world.clock.now())
        host.run("Add-VMHardDiskDrive", VMName="node2", ControllerType="SCSI", Path=path)
        jobs = _in(host, "node1", "Get-StorageJob")
        assert jobs and {str(j["Name"]) for j in jobs} == {"Repair"}
        assert all(str(j["JobState"]) == "Running" and j["IsBackgroundTask"] for j in jobs)
        assert _health(host) == ("Warning", "InService")
        deadline = time.monotonic() + 30
        while _in(host, "node1", "Get-StorageJob") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _in(host, "node1", "Get-StorageJob") == []
        assert _health(host) == ("Healthy", "OK")


# -- a node's network cut on the host ------------------------------------------------


def test_a_storage_nic_cut_fails_its_interface_and_the_cluster_stays_up(wire: Any) -> None:
    world = cluster_world()
    vm = world.vm("l2vm")
    started = vm.started_at
    with wire(world) as host:
        cut = world.clock.now()
        host.run("Disconnect-VMNetworkAdapter", VMName="node1", Name="Storage")
        adapter = host.run("Get-VMNetworkAdapter", VMName="node1", Name="Storage")[0]
        assert not adapter["Connected"] and not adapter["SwitchName"]
        faces = {
            (str(i["Node"]), str(i["Network"])): str(i["State"])
            for i in _in(host, "node2", "Get-ClusterNetworkInterface")
        }
        storage_net = next(n for (_, n) in faces if n != "Cluster Network 1")
        assert faces[("NODE1", storage_net)] == "Failed"
        assert world.clock.now() == pytest.approx(cut + 10), "noticed after the heartbeat timeout"
        nets = {str(n["Name"]): str(n["State"]) for n in _in(host, "node2", "Get-ClusterNetwork")}
        assert nets["Cluster Network 1"] == "Up" and nets[storage_net] == "Down"
        assert _nodes(host, "node2") == {"NODE1": "Up", "NODE2": "Up"}
        assert str(_group(host, "node2")["State"]) == "Online" and vm.started_at == started
        assert _health(host, "node2") == ("Healthy", "OK")
        host.run(
            "Connect-VMNetworkAdapter", VMName="node1", Name="Storage", SwitchName="lab-storage"
        )
        nets = {str(n["Name"]): str(n["State"]) for n in _in(host, "node2", "Get-ClusterNetwork")}
        assert set(nets.values()) == {"Up"}
        # Every network cut: the node is lost like a crashed one.
        for nic in ("Mgmt", "Storage"):
            host.run("Disconnect-VMNetworkAdapter", VMName="node1", Name=nic)
        assert _nodes(host, "node2")["NODE1"] == "Down"


# -- files into a guest --------------------------------------------------------------


def test_copy_vmfile_needs_the_guest_service_interface(wire: Any) -> None:
    world = cluster_world()
    world.host.fs.write("C:\\updates\\kb1.msu", b"update", create_parents=True)
    with wire(world) as host:
        args = {
            "Name": "dc",
            "SourcePath": "C:\\updates\\kb1.msu",
            "DestinationPath": "C:\\Hotfixes\\CAUHotfix_All\\kb1.msu",
            "FileSource": "Host",
        }
        with pytest.raises(HostError) as err:
            host.run("Copy-VMFile", **args, CreateFullPath=True)
        assert "Guest Service Interface" in err.value.message
        host.run("Enable-VMIntegrationService", VMName="dc", Name="Guest Service Interface")
        with pytest.raises(HostError) as err:
            host.run("Copy-VMFile", **args)
        assert "-CreateFullPath" in err.value.message
        host.run("Copy-VMFile", **args, CreateFullPath=True)
        assert _in(host, "dc", "Test-Path", Path=args["DestinationPath"]) == [True]
        with pytest.raises(HostError):  # no overwrite without -Force
            host.run("Copy-VMFile", **args, CreateFullPath=True)
        host.run("Copy-VMFile", **args, CreateFullPath=True, Force=True)


# -- Cluster-Aware Updating with the hotfix plug-in -----------------------------------


def _hotfix_share(host: Host, world: World, *, acl_ok: bool = True) -> str:
    folder = "C:\\Hotfixes"
    dc = world.guest("dc")
    pkg = Package("KB5031364", 20348, 2031)
    dc.fs.write(
        f"{folder}\\CAUHotfix_All\\windows10.0-kb5031364-x64.msu",
        package_bytes(pkg),
        create_parents=True,
    )
    _in(host, "dc", "Install-WindowsFeature", Name=["RSAT-Clustering-PowerShell"])
    _in(
        host,
        "dc",
        "Copy-Item",
        Path="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\Modules\\ClusterAwareUpdating\\DefaultHotfixConfig.xml",
        Destination=folder,
    )
    _in(
        host,
        "dc",
        "New-SmbShare",
        Name="Hotfixes",
        Path=folder,
        FullAccess=["BUILTIN\\Administrators"] if acl_ok else ["LAB\\Administrator"],
        ReadAccess=["Everyone"],
        EncryptData=True,
    )
    return "\\\\dc\\Hotfixes"


def test_cau_run_updates_every_node_without_stopping_the_vm(wire: Any) -> None:
    world = cluster_world()
    vm = world.vm("l2vm")
    started = vm.started_at
    with wire(world) as host:
        root = _hotfix_share(host, world)
        run = {
            "ClusterName": "cl1",
            "CauPluginName": ["Microsoft.HotfixPlugin"],
            "CauPluginArguments": [{"HotfixRootFolderPath": root, "RequireSmbEncryption": "True"}],
            "MaxFailedNodes": 0,
            "RequireAllNodesOnline": True,
            "EnableFirewallRules": True,
        }
        _in(host, "node1", "Install-WindowsFeature", Name=["RSAT-Clustering-PowerShell"])
        with pytest.raises(HostError) as err:  # not from a node of the cluster
            _in(host, "node1", "Invoke-CauRun", **run, Force=True)
        assert "cannot be a member of the failover cluster" in err.value.message
        with pytest.raises(HostError) as err:  # it asks first
            _in(host, "dc", "Invoke-CauRun", **run)
        assert "prompts the user" in err.value.message
        # PowerShell Direct returns nested objects as text: the constant script
        # unrolls the report per node.
        rows = Guest(host, "dc", ADMIN).script(
            "Invoke-CauRunByNode.ps1", Run={**run, "Force": True}
        )
        results = {str(r["Node"]): r for r in rows}
        assert set(results) == {"NODE1", "NODE2"}
        for r in results.values():
            assert str(r["RunStatus"]) == "Succeeded" and str(r["Status"]) == "Succeeded"
            assert str(r["Updates"]) == "KB5031364=Installed"
            marks = [
                ps_datetime(r[k])
                for k in ("Started", "Drained", "Installed", "Restarted", "Resumed", "Repaired")
            ]
            assert marks == sorted(marks)
            # The repair starts when the node is back, after the install, and takes
            # s2d.repair; CAU waits for it before the next node.
            assert (marks[-1] - marks[2]).total_seconds() >= timing.seconds("s2d.repair")
        for n in NODES:
            fixes = _in(host, n, "Get-HotFix")
            assert [str(f["HotFixID"]) for f in fixes] == ["KB5031364"]
            os_info = _in(host, n, "Get-CimInstance", ClassName="Win32_OperatingSystem")[0]
            assert str(os_info["Version"]).endswith(".2031")
        assert vm.started_at == started, "the HA VM never stopped"
        assert _nodes(host) == {"NODE1": "Up", "NODE2": "Up"}
        assert str(_group(host)["OwnerNode"]) == "NODE1", "failback brought it home"
        assert _health(host) == ("Healthy", "OK")
        again = _in(host, "dc", "Invoke-CauRun", **run, Force=True)[0]
        assert str(again["Status"]) == "Succeeded"
        assert [str(r) for r in again["NodeResults"]] == ["NODE1", "NODE2"]  # text, as said
        assert _in(host, "node1", "Get-HotFix") != []


def test_cau_refuses_a_hotfix_share_others_can_write(wire: Any) -> None:
    world = cluster_world()
    with wire(world) as host:
        root = _hotfix_share(host, world, acl_ok=False)
        with pytest.raises(HostError) as err:
            _in(
                host,
                "dc",
                "Invoke-CauRun",
                ClusterName="cl1",
                CauPluginName=["Microsoft.HotfixPlugin"],
                CauPluginArguments=[{"HotfixRootFolderPath": root}],
                Force=True,
            )
        assert "access permissions" in err.value.message
        assert world.guest("node1").features and not getattr(world.guest("node1"), "hotfixes", [])
