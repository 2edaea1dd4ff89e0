"""hvsim refuses what Windows refuses, over the real wire (issue 10).

Each test drives hvsim with pypsrp through hvlab.remote.Host (WinRM, NTLM,
message encryption) and shows one behaviour of Windows that an orchestrator
must live with: differencing children share their parent's identity (R-15,
R-16), sibling disks mounted together collide (R-91), a hard reset leaves
servicing incomplete (R-37, R-40), a call whose response is lost has run (R-92),
and so on. The end-to-end tests in tests/test_lab_strict.py show hvlab handling
each of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import sim_settings
from test_model_cluster import NODES, build_domain, build_nodes

from hvlab.config import Settings
from hvlab.guest import Guest
from hvlab.remote import Credential
from hvlab.secrets import Secret
from hvsim.model.world import World

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "C:\\hvlab\\images\\ws2022-datacenter.vhdx"
DOMAIN_ADMIN = Credential("LAB\\Administrator", Secret("Lab-Test-Pw1!"))


def _settings(server: Any) -> Settings:
    return sim_settings(server)


def _cluster_world() -> World:
    world = World.create()
    build_domain(world)
    build_nodes(world)
    return world


# -- item 1: disk identity (R-15, R-16) ---------------------------------------------------


def test_differencing_children_carry_the_parents_disk_identifier(wire: Any) -> None:
    world = World.create()
    with wire(world) as host:
        host.run("New-Item", ItemType="Directory", Path="C:\\lab", Force=True)
        parent = host.run("Get-VHD", Path=IMAGE)[0]
        a = host.run("New-VHD", Path="C:\\lab\\a-os.vhdx", ParentPath=IMAGE, Differencing=True)[0]
        b = host.run("New-VHD", Path="C:\\lab\\b-os.vhdx", ParentPath=IMAGE, Differencing=True)[0]
        # MS-VHDX 2.6.1.2: the Virtual Disk ID is copied into a differencing disk.
        assert a["DiskIdentifier"] == b["DiskIdentifier"] == parent["DiskIdentifier"]
        data = host.run("New-VHD", Path="C:\\lab\\a-d1.vhdx", SizeBytes=2**30, Dynamic=True)[0]
        assert data["DiskIdentifier"] != parent["DiskIdentifier"]  # its own


def test_validation_ignores_boot_disks_that_share_an_identifier(wire: Any) -> None:
    world = _cluster_world()
    with wire(world) as host:
        node1 = Guest(host, "node1", DOMAIN_ADMIN)
        report = node1.run(
            "Test-Cluster",
            Node=list(NODES),
            Include=["Storage Spaces Direct"],
            ReportName="ids",
        )[0]
        html = "\n".join(str(x) for x in node1.run("Get-Content", Path=report["FullName"]))
    # Both OS disks are children of one image: same page-83 id, and still Success.
    assert "Verify Unique Device Identifiers</td><td>Success" in html
    from hvsim.model.s2d import guest_disks, unique_id

    boots = {unique_id(guest_disks(world.guest(n))[0].vhd) for n in NODES}
    assert len(boots) == 1


# -- item 2: sibling disks mounted at once collide (R-91) ------------------------------------


def test_a_second_sibling_mounted_at_once_stays_offline_with_a_collision(wire: Any) -> None:
    from hvlab.errors import HostError

    world = World.create()
    with wire(world) as host:
        host.run("New-Item", ItemType="Directory", Path="C:\\lab", Force=True)
        for name in ("a", "b"):
            host.run(
                "New-VHD", Path=f"C:\\lab\\{name}-os.vhdx", ParentPath=IMAGE, Differencing=True
            )
        first = host.run("Mount-VHD", Path="C:\\lab\\a-os.vhdx", Passthru=True)[0]
        second = host.run("Mount-VHD", Path="C:\\lab\\b-os.vhdx", Passthru=True)[0]
        disk = host.run("Get-Disk", Number=second["DiskNumber"])[0]
        assert disk["IsOffline"] is True and disk["OfflineReason"] == "Collision"
        assert host.run("Get-Disk", Number=first["DiskNumber"])[0]["IsOffline"] is False
        with pytest.raises(HostError) as err:
            host.run(
                "Add-PartitionAccessPath",
                DiskNumber=second["DiskNumber"],
                PartitionNumber=3,
                AssignDriveLetter=True,
            )
        assert "offline" in err.value.message
        # One at a time works: dismount the first, then the second mounts online.
        host.run("Dismount-VHD", Path="C:\\lab\\b-os.vhdx")
        host.run("Dismount-VHD", Path="C:\\lab\\a-os.vhdx")
        again = host.run("Mount-VHD", Path="C:\\lab\\b-os.vhdx", Passthru=True)[0]
        assert host.run("Get-Disk", Number=again["DiskNumber"])[0]["IsOffline"] is False
        host.run(
            "Add-PartitionAccessPath",
            DiskNumber=again["DiskNumber"],
            PartitionNumber=3,
            AssignDriveLetter=True,
        )


# -- item 3: a hard reset leaves servicing undone (R-37, R-40) ---------------------------------

LOCAL_ADMIN = Credential(".\\Administrator", Secret("Lab-Test-Pw1!"))
SPACEPORT = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\spaceport\\Parameters"


def _one_guest(name: str = "node1") -> World:
    from guestlab import NicSpec, add_vm, start, unattend_xml

    world = World.create()
    xml = unattend_xml(name, {"00-15-5D-0A-00-11": "10.0.0.11/24"})
    start(world, add_vm(world, name, [NicSpec("Mgmt", "lab-mgmt", "00155D0A0011")], xml=xml))
    return world


def _clean_restart(guest: Guest) -> None:
    """Restart-Computer inside the guest: the session it ends is the expected answer."""
    from hvlab.errors import HostError

    with pytest.raises(HostError) as err:
        guest.run("Restart-Computer", Force=True)
    assert "The I/O operation has been aborted" in err.value.message


@pytest.mark.parametrize("hard", [True, False], ids=["Restart-VM", "Restart-Computer"])
def test_a_hard_reset_rolls_back_a_pending_feature_and_loses_a_fresh_registry_value(
    wire: Any, hard: bool
) -> None:
    world = _one_guest()
    with wire(world) as host:
        node = Guest(host, "node1", LOCAL_ADMIN)
        node.run("Install-WindowsFeature", Name=["Hyper-V"], IncludeManagementTools=True)
        node.run("Set-ItemProperty", Path=SPACEPORT, Name="HwTimeout", Value=30000, Type="DWord")
        if hard:
            host.run("Restart-VM", Name="node1", Force=True)
        else:
            _clean_restart(node)
        state = str(node.run("Get-WindowsFeature", Name="Hyper-V")[0]["InstallState"])
        value = node.run("Get-ItemProperty", Path=SPACEPORT, Name="HwTimeout")[0]["HwTimeout"]
    if hard:
        # The install never finished its restart: it rolled back; the value written a
        # moment before the reset never reached the hive.
        assert state == "Available" and value == 0x1770
    else:
        assert state == "Installed" and value == 30000


@pytest.mark.parametrize("hard", [True, False], ids=["Restart-VM", "Restart-Computer"])
def test_a_promotion_finished_by_a_hard_reset_leaves_ad_down(wire: Any, hard: bool) -> None:
    from hvlab.errors import HostError

    world = _one_guest("dc")
    with wire(world) as host:
        dc = Guest(host, "dc", LOCAL_ADMIN)
        dc.run("Install-WindowsFeature", Name=["AD-Domain-Services"], IncludeManagementTools=True)
        dc.run(
            "Install-ADDSForest",
            DomainName="lab.test",
            DomainNetbiosName="LAB",
            SafeModeAdministratorPassword=Secret("Dsrm-Test-Pw1!"),
            InstallDns=True,
            NoRebootOnCompletion=True,
            Force=True,
        )
        if hard:
            host.run("Restart-VM", Name="dc", Force=True)
        else:
            _clean_restart(dc)
        world.clock.sleep(3600)  # long after AD would have been ready
        as_domain = Guest(host, "dc", DOMAIN_ADMIN)
        ntds = str(as_domain.run("Get-Service", Name="NTDS")[0]["Status"])
        if hard:
            assert ntds == "Stopped"
            with pytest.raises(HostError, match="Active Directory Web Services"):
                as_domain.run("Get-ADDomainController")
        else:
            assert ntds == "Running"
            assert as_domain.run("Get-ADDomainController")


# -- item 4: a call whose response was lost has run (R-92) -------------------------------------


def test_a_lost_response_hides_a_call_that_ran_and_repeating_it_is_not_safe(wire: Any) -> None:
    from hvlab.errors import HostError, TransportError

    world = World.create(faults="lost:cmdlet=New-VM,nth=1;lost:cmdlet=New-VHD,nth=1")
    with wire(world) as host:
        host.run("New-Item", ItemType="Directory", Path="C:\\lab", Force=True)
        with pytest.raises(TransportError):
            host.run("New-VM", Name="vm1", Generation=2, NoVHD=True)
        # The client saw a transport error, but the VM exists.
        assert [v["Name"] for v in host.run("Get-VM", Name="vm1")] == ["vm1"]
        # Repeating the call is not safe: Hyper-V allows two VMs of one name.
        host.run("New-VM", Name="vm1", Generation=2, NoVHD=True)
        assert len(host.run("Get-VM", Name="vm1")) == 2
        with pytest.raises(TransportError):
            host.run("New-VHD", Path="C:\\lab\\d.vhdx", SizeBytes=2**30, Dynamic=True)
        with pytest.raises(HostError, match="0x80070050"):  # the file exists
            host.run("New-VHD", Path="C:\\lab\\d.vhdx", SizeBytes=2**30, Dynamic=True)
    assert "lost New-VM call 1" in world.faults.log


# -- item 8: Install-ADDSForest reports a failed prerequisite in its result ---------------------


def test_a_failed_promotion_prerequisite_is_a_status_not_an_exception(wire: Any) -> None:
    world = _one_guest("dc")
    with wire(world) as host:
        dc = Guest(host, "dc", LOCAL_ADMIN)
        dc.run("Install-WindowsFeature", Name=["AD-Domain-Services"], IncludeManagementTools=True)
        promote = {
            "DomainName": "lab.test",
            "DomainNetbiosName": "LAB",
            "SafeModeAdministratorPassword": Secret("Dsrm-Test-Pw1!"),
            "InstallDns": True,
            "NoRebootOnCompletion": True,
            "Force": True,
        }
        ok = dc.run("Install-ADDSForest", **promote)[0]
        assert ok["Status"] == "Success" and ok["RebootRequired"] is True
        # The same call again (its restart still pending): no error record at all, even
        # with $ErrorActionPreference = 'Stop' in the wrapper; the result says Error.
        again = dc.run("Install-ADDSForest", **promote)[0]
        assert again["Status"] == "Error"
        assert again["Message"].startswith("Verification of prerequisites")
        assert again["RebootRequired"] is False


# -- item 5: the node vSwitch on the management NIC of a running cluster (R-70) --------------


def test_a_management_switch_on_a_clustered_node_fails_the_core_resources(wire: Any) -> None:
    from test_model_cluster import build_cluster

    world = _cluster_world()
    build_cluster(world)
    with wire(world) as host:
        node1 = Guest(host, "node1", DOMAIN_ADMIN)

        def core() -> dict[str, str]:
            return {
                r["Name"]: str(r["State"])
                for r in node1.run("Get-ClusterResource")
                if r["OwnerGroup"] == "Cluster Group"
            }

        assert set(core().values()) == {"Online"}
        node1.run(
            "New-VMSwitch", Name="ClusterSwitch", NetAdapterName="Ethernet", AllowManagementOS=True
        )
        # The address moved to vEthernet (ClusterSwitch); the network dropped under the
        # cluster's IP address, name and witness for a moment.
        assert set(core().values()) == {"Failed"}
        world.clock.sleep(60)
        assert set(core().values()) == {"Online"}
    events = world.cluster("cl1").events
    assert any("Cluster IP Address" in e and e.startswith("1069") for e in events)


def test_a_management_switch_before_the_cluster_disturbs_nothing(wire: Any) -> None:
    world = _cluster_world()
    with wire(world) as host:
        node1 = Guest(host, "node1", DOMAIN_ADMIN)
        node1.run(
            "New-VMSwitch", Name="ClusterSwitch", NetAdapterName="Ethernet", AllowManagementOS=True
        )
        aliases = {a["InterfaceAlias"] for a in node1.run("Get-NetIPAddress", AddressFamily="IPv4")}
    assert "vEthernet (ClusterSwitch)" in aliases
    assert world.clusters == {}


# -- item 10: storage NICs register in DNS unless told not to (R-93) --------------------------


def _two_nic_member(world: World, name: str, octet: int) -> None:
    from guestlab import NicSpec, add_vm, start, unattend_xml

    mgmt, storage = f"00155D0A00{octet:02X}", f"00155D0A01{octet:02X}"
    xml = unattend_xml(
        name,
        {
            "-".join(mgmt[i : i + 2] for i in range(0, 12, 2)): f"10.0.0.{octet}/24",
            "-".join(storage[i : i + 2] for i in range(0, 12, 2)): f"10.0.1.{octet}/24",
        },
        dns=["10.0.0.10"],
    )
    nics = [NicSpec("Mgmt", "lab-mgmt", mgmt), NicSpec("Storage", "lab-storage", storage)]
    start(world, add_vm(world, name, nics, xml=xml))


def test_a_member_registers_every_connections_address_unless_turned_off(wire: Any) -> None:
    world = World.create()
    build_domain(world)
    _two_nic_member(world, "node1", 0x11)
    _two_nic_member(world, "node2", 0x12)
    with wire(world) as host:
        for name, storage_registers in (("node1", True), ("node2", False)):
            node = Guest(host, name, LOCAL_ADMIN)
            clients = {c["InterfaceAlias"]: c for c in node.run("Get-DnsClient")}
            assert clients["Ethernet 2"]["RegisterThisConnectionsAddress"] is True  # the default
            if not storage_registers:
                node.run(
                    "Set-DnsClient",
                    InterfaceAlias="Ethernet 2",
                    RegisterThisConnectionsAddress=False,
                )
            node.run("Add-Computer", DomainName="lab.test", Credential=DOMAIN_ADMIN, Force=True)
            _clean_restart(node)
    zone = world.domains["lab.test"].dns
    # With registration on, the node's name also resolves to its storage address.
    assert sorted(zone["node1"]) == ["10.0.0.17", "10.0.1.17"]
    assert zone["node2"] == ["10.0.0.18"]


# -- item 7: disk cleaning in the Microsoft script's order (R-60) -----------------------------


def test_data_disks_start_offline_and_clear_disk_needs_them_online_and_writable(
    wire: Any,
) -> None:
    from hvlab.errors import HostError
    from hvsim.model.s2d import guest_disks

    world = _cluster_world()
    node = world.guest("node1")
    disks = guest_disks(node)
    disks[1].state.partitions = 2  # used before
    disks[2].state.pool_id = "{old-pool}"  # Storage Spaces metadata of a pool that is gone
    with wire(world) as host:
        g = Guest(host, "node1", DOMAIN_ADMIN)
        seen = {d["Number"]: d for d in g.run("Get-Disk")}
        assert seen[0]["IsOffline"] is False  # the boot disk
        assert {seen[n]["IsOffline"] for n in (1, 2, 3, 4)} == {True}  # SAN policy
        assert seen[1]["OfflineReason"] == "Policy"
        with pytest.raises(HostError, match="The disk is offline"):
            g.run("Clear-Disk", Number=1, RemoveData=True, RemoveOEM=True, Confirm=False)
        g.run("Set-Disk", Number=1, IsOffline=False)
        g.run("Set-Disk", Number=1, IsReadOnly=True)
        with pytest.raises(HostError, match="The disk is read only"):
            g.run("Clear-Disk", Number=1, RemoveData=True, RemoveOEM=True, Confirm=False)
        g.run("Set-Disk", Number=1, IsReadOnly=False)
        g.run("Clear-Disk", Number=1, RemoveData=True, RemoveOEM=True, Confirm=False)
        # Leftover pool metadata keeps a disk out of a new pool until Reset-PhysicalDisk.
        stale = [p for p in g.run("Get-PhysicalDisk") if p["CannotPoolReason"] == "In a Pool"]
        assert len(stale) == 1
        g.run("Reset-PhysicalDisk", UniqueId=stale[0]["UniqueId"])
        pooled = [p for p in g.run("Get-PhysicalDisk") if p["CanPool"] is True]
        assert len(pooled) == 4


# -- item 6: S2D in VMs: automatic drive replacement and the CSV cache (R-62) -----------------


def _s2d_world() -> World:
    from test_model_cluster import _s2d, build_cluster

    world = _cluster_world()
    build_cluster(world)
    _s2d(world)
    return world


@pytest.mark.parametrize("auto_replace", ["True", "False"])
def test_auto_replace_retires_disks_of_a_node_that_was_down(wire: Any, auto_replace: str) -> None:
    from test_model_cluster import _Ctx

    from hvsim.model import vmops

    world = _s2d_world()
    with wire(world) as host:
        node1 = Guest(host, "node1", DOMAIN_ADMIN)
        before = node1.script("Get-S2DInVMSettings.ps1")[0]
        # Windows Server 2019 and later: 1 GiB of CSV read cache; auto-replace on.
        assert (before["AutoReplace"], before["BlockCacheSize"]) == ("True", 1024)
        if auto_replace == "False":
            after = node1.script("Set-S2DInVMSettings.ps1", AutoReplace="False", BlockCacheSize=0)
            assert (after[0]["AutoReplace"], after[0]["BlockCacheSize"]) == ("False", 0)
            assert node1.run("Get-Cluster")[0]["BlockCacheSize"] == 0
        # node2 goes down and comes back: its virtual disks were gone for a while.
        vmops.power_off(_Ctx(world), world.host.hyperv, world.vm("node2"))
        vmops.start(_Ctx(world), world.host.hyperv, world.vm("node2"))
        pool = node1.run("Get-StoragePool", IsPrimordial=False)[0]
        retired = [d for d in node1.run("Get-PhysicalDisk") if d["Usage"] == "Retired"]
    if auto_replace == "True":
        # The Health Service took the returning disks for replaced drives.
        assert len(retired) == 4 and pool["HealthStatus"] == "Warning"
    else:
        assert retired == [] and pool["HealthStatus"] == "Healthy"


# -- item 9: the volume's format and the networks' roles are what was asked ----------------


def test_a_csv_keeps_its_format_and_a_network_takes_the_role_asked_for(wire: Any) -> None:
    from hvlab.errors import HostError

    world = _s2d_world()
    with wire(world) as host:
        node1 = Guest(host, "node1", DOMAIN_ADMIN)
        for name, fs in (("v-ntfs", "CSVFS_NTFS"), ("v-refs", "CSVFS_ReFS")):
            node1.run(
                "New-Volume",
                StoragePoolFriendlyName="S2D on CL1",
                FriendlyName=name,
                FileSystem=fs,
                Size=10 * 2**30,
                ResiliencySettingName="Mirror",
            )
        volumes = {v["FileSystemLabel"]: v for v in node1.run("Get-Volume")}
        assert volumes["v-ntfs"]["FileSystem"] == volumes["v-refs"]["FileSystem"] == "CSVFS"
        assert volumes["v-ntfs"]["FileSystemType"] == "CSVFS_NTFS"
        assert volumes["v-refs"]["FileSystemType"] == "CSVFS_ReFS"
        # A network's role is the one asked for; role None keeps cluster traffic off it.
        node1.script("Set-ClusterNetworkRole.ps1", Address="10.0.0.0", Name="mgmt", Role=0)
        roles = {n["Name"]: str(n["Role"]) for n in node1.run("Get-ClusterNetwork")}
        assert roles == {"mgmt": "None"}
        with pytest.raises(HostError, match="Cannot convert"):
            node1.script("Set-ClusterNetworkRole.ps1", Address="10.0.0.0", Name="mgmt", Role=2)


# -- item 11: PowerShell Direct from the WinRM session, and cluster cmdlets through it (R-94) ---


@pytest.mark.parametrize("works", [True, False])
def test_powershell_direct_from_the_winrm_session_when_the_host_allows_it(
    wire: Any, works: bool
) -> None:
    from hvlab.errors import HostError
    from hvlab.guest import OTHER, classify

    world = _one_guest()
    assert world.profile is not None
    world.profile.powershell_direct_from_winrm = works
    with wire(world) as host:
        node = Guest(host, "node1", LOCAL_ADMIN)
        if works:
            assert node.run("Get-CimInstance", ClassName="Win32_OperatingSystem")
            return
        with pytest.raises(HostError) as err:
            node.run("Get-CimInstance", ClassName="Win32_OperatingSystem")
    # Not a guest that is still booting: waiting would not help.
    assert classify(err.value) == OTHER and "Access is denied" in err.value.message


@pytest.mark.parametrize("second_hop", [True, False])
def test_a_cluster_cmdlet_in_one_node_reaches_another_node(wire: Any, second_hop: bool) -> None:
    from test_model_cluster import build_cluster

    from hvlab.errors import HostError

    world = _cluster_world()
    build_cluster(world)
    assert world.profile is not None
    world.profile.powershell_direct_second_hop = second_hop
    with wire(world) as host:
        node1 = Guest(host, "node1", DOMAIN_ADMIN)
        # Local: always fine. -Cluster names another node (OpenCluster takes a node name).
        assert len(node1.run("Get-ClusterNode")) == 2
        if second_hop:
            names = sorted(str(n["Name"]) for n in node1.run("Get-ClusterNode", Cluster="node2"))
            assert names == ["NODE1", "NODE2"]
        else:
            with pytest.raises(HostError, match="Access is denied"):
                node1.run("Get-ClusterNode", Cluster="node2")
