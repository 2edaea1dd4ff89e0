"""AD, roles, failover cluster, S2D and HA VMs through PowerShell Direct
(R-38, R-40..R-46, R-48..R-70)."""

from __future__ import annotations

from typing import Any

import pytest
from guestlab import (
    PASSWORD,
    STANDARD,
    NicSpec,
    Streams,
    add_vm,
    cred,
    guest_cmd,
    guest_script,
    restart,
    start,
    unattend_xml,
)

from hvsim.errors import PSError
from hvsim.model import vmops
from hvsim.model.fs import GiB
from hvsim.model.world import World
from hvsim.objects import SecureString

DOMAIN = "lab.test"
LAB = cred("LAB\\Administrator")
LOCAL = cred(".\\Administrator")
NODES = ("node1", "node2")
MACS = {"dc": "00155D0A0010", "node1": "00155D0A0011", "node2": "00155D0A0012"}
IPS = {"dc": "10.0.0.10", "node1": "10.0.0.11", "node2": "10.0.0.12"}


def _dashed(mac: str) -> str:
    return "-".join(mac[i : i + 2] for i in range(0, 12, 2))


def _vm(world: World, name: str, disks: int = 0, **kw: Any) -> Any:
    xml = unattend_xml(
        name, {_dashed(MACS[name]): IPS[name] + "/24"}, dns=[IPS["dc"]], gateway="10.0.0.1"
    )
    return add_vm(
        world, name, [NicSpec("Mgmt", "lab-mgmt", MACS[name])], xml=xml, data_disks=disks, **kw
    )


def dc_with_adds(world: World) -> None:
    """The DC's VM booted, with the AD DS role installed: ready to promote."""
    start(world, _vm(world, "dc"))
    out = guest_cmd(
        world,
        "dc",
        "Install-WindowsFeature",
        Name=["AD-Domain-Services"],
        IncludeManagementTools=True,
    )
    assert str(out[0]["ExitCode"]) == "Success"


def build_domain(world: World) -> None:
    dc_with_adds(world)
    guest_cmd(
        world,
        "dc",
        "Install-ADDSForest",
        DomainName=DOMAIN,
        DomainNetbiosName="LAB",
        SafeModeAdministratorPassword=SecureString(PASSWORD),
        InstallDns=True,
        NoRebootOnCompletion=True,
        Force=True,
    )
    restart(world, world.vm("dc"))


def build_nodes(world: World, base: str | None = None, disks: int = 4) -> None:
    for n in NODES:
        kw = {"base": base} if base else {}
        start(world, _vm(world, n, disks=disks, **kw))
        guest_cmd(world, n, "Add-Computer", DomainName=DOMAIN, Credential=LAB, Force=True)
        guest_cmd(
            world,
            n,
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
        restart(world, world.vm(n))


def build_cluster(world: World) -> None:
    guest_cmd(
        world,
        "node1",
        "New-Cluster",
        LAB,
        Name="cl1",
        Node=list(NODES),
        StaticAddress="10.0.0.20",
        NoStorage=True,
    )
    guest_cmd(
        world, "dc", "New-Item", LAB, ItemType="Directory", Path="C:\\Witness\\cl1", Force=True
    )
    guest_cmd(
        world,
        "dc",
        "New-SmbShare",
        LAB,
        Name="cl1-witness",
        Path="C:\\Witness\\cl1",
        FullAccess=["LAB\\CL1$", "LAB\\Administrator"],
    )
    guest_cmd(world, "dc", "Set-SmbPathAcl", LAB, ShareName="cl1-witness")
    guest_cmd(world, "node1", "Set-ClusterQuorum", LAB, FileShareWitness="\\\\dc\\cl1-witness")


@pytest.fixture
def lab() -> World:
    world = World.create()
    build_domain(world)
    build_nodes(world)
    return world


def test_domain_controller_credentials_switch_after_promotion() -> None:
    world = World.create()
    build_domain(world)
    dc = world.guest("dc")
    assert dc.is_dc and dc.domain == DOMAIN
    # the local SAM is gone; the domain Administrator keeps the password.
    with pytest.raises(PSError) as err:
        guest_cmd(world, "dc", "Get-Service", LOCAL, Name="ADWS")
    assert err.value.message == "The credential is invalid."
    svc = guest_cmd(world, "dc", "Get-Service", LAB, Name=["ADWS", "NTDS", "DNS"])
    assert {s["Name"]: str(s["Status"]) for s in svc} == {
        "ADWS": "Running",
        "NTDS": "Running",
        "DNS": "Running",
    }
    out = guest_cmd(world, "dc", "Get-ADDomainController", LAB)
    assert out[0]["Domain"] == DOMAIN and out[0]["IPv4Address"] == IPS["dc"]


def test_ad_not_ready_before_the_delay() -> None:
    world = World.create()
    build_domain(world)
    dom = world.domains[DOMAIN]
    dom.ready_at = world.clock.now() + 600  # as if ADWS had not started yet
    with pytest.raises(PSError) as err:
        guest_cmd(world, "dc", "Get-ADDomainController", LAB)
    assert "Active Directory Web Services" in err.value.message


def test_promotion_needs_safe_mode_password_and_short_netbios() -> None:
    world = World.create()
    dc_with_adds(world)
    with pytest.raises(PSError) as err:
        guest_cmd(
            world,
            "dc",
            "Install-ADDSForest",
            DomainName=DOMAIN,
            DomainNetbiosName="A" * 16,
            SafeModeAdministratorPassword=SecureString(PASSWORD),
            Force=True,
        )
    assert "15 characters" in err.value.message
    with pytest.raises(PSError) as err:
        guest_cmd(world, "dc", "Install-ADDSForest", DomainName=DOMAIN, Force=True)
    assert "SafeModeAdministratorPassword" in err.value.message


def test_promotion_without_noreboot_kills_the_session() -> None:
    world = World.create()
    dc_with_adds(world)
    with pytest.raises(PSError) as err:
        guest_cmd(
            world,
            "dc",
            "Install-ADDSForest",
            DomainName=DOMAIN,
            DomainNetbiosName="LAB",
            SafeModeAdministratorPassword=SecureString(PASSWORD),
            Force=True,
        )
    assert "aborted" in err.value.message  # R-40 reboot, R-82
    assert world.guest("dc").is_dc


def test_join_needs_dns_pointing_at_dc() -> None:
    world = World.create()
    build_domain(world)
    xml = unattend_xml("node1", {_dashed(MACS["node1"]): "10.0.0.11/24"}, dns=["10.0.0.1"])
    start(world, add_vm(world, "node1", [NicSpec("Mgmt", "lab-mgmt", MACS["node1"])], xml=xml))
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Add-Computer", DomainName=DOMAIN, Credential=LAB, Force=True)
    assert "could not be contacted" in err.value.message


def test_join_takes_effect_after_reboot_and_second_join_fails(lab: World) -> None:
    node = lab.guest("node1")
    assert node.domain == DOMAIN
    with pytest.raises(PSError) as err:
        guest_cmd(lab, "node1", "Add-Computer", LAB, DomainName=DOMAIN, Credential=LAB, Force=True)
    assert err.value.fqid.startswith("AddComputerToSameDomain")
    # a member accepts local and domain accounts.
    assert guest_cmd(lab, "node1", "Get-Service", LOCAL, Name="vmms")
    assert guest_cmd(lab, "node1", "Get-Service", LAB, Name="vmms")


def test_features_hyperv_two_boots_and_vmms(lab: World) -> None:
    out = guest_cmd(
        lab, "node1", "Get-WindowsFeature", LAB, Name=["Hyper-V", "Failover-Clustering"]
    )
    assert {f["Name"]: str(f["InstallState"]) for f in out} == {
        "Hyper-V": "Installed",
        "Failover-Clustering": "Installed",
    }
    svc = guest_cmd(lab, "node1", "Get-Service", LAB, Name="vmms")
    assert str(svc[0]["Status"]) == "Running"
    assert lab.guest("node1").hyperv is not None
    again = guest_cmd(lab, "node1", "Install-WindowsFeature", LAB, Name=["Hyper-V"])
    assert str(again[0]["ExitCode"]) == "NoChangeNeeded"


def test_feature_result_shape_and_pending_reboot_blocks() -> None:
    world = World.create()
    start(world, _vm(world, "node1"))
    streams = Streams()
    out = guest_cmd(world, "node1", "Install-WindowsFeature", streams=streams, Name=["Hyper-V"])
    res = out[0]
    assert (
        res.type_names[0]
        == "Deserialized.Microsoft.Windows.ServerManager.Commands.FeatureOperationResult"
    )
    assert res["Success"] is True and str(res["RestartNeeded"]) == "Yes"
    assert str(res["ExitCode"]) == "SuccessRestartRequired"
    assert "You must restart this server to finish the installation process." in streams.warnings
    g = guest_cmd(world, "node1", "Get-WindowsFeature", Name="Hyper-V")
    assert str(g[0]["InstallState"]) == "InstallPending"
    with pytest.raises(PSError):  # R-45 (the wrapper stops on the error)
        guest_cmd(world, "node1", "Install-WindowsFeature", Name=["Failover-Clustering"])


def test_hyperv_install_refused_without_nested_extensions() -> None:
    world = World.create()
    start(world, _vm(world, "node1", expose=False))
    with pytest.raises(PSError) as err:
        guest_cmd(world, "node1", "Install-WindowsFeature", Name=["Hyper-V"])
    assert err.value.fqid.startswith("Alteration_PrerequisiteCheck_Failed")
    assert "virtualization capabilities" in err.value.message


def test_spaceport_hwtimeout_roundtrip(lab: World) -> None:
    key = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\spaceport\\Parameters"
    before = guest_cmd(lab, "node1", "Get-ItemProperty", LAB, Path=key, Name="HwTimeout")
    assert before[0]["HwTimeout"] == 0x1770  # R-61 default
    guest_cmd(
        lab, "node1", "Set-ItemProperty", LAB, Path=key, Name="HwTimeout", Value=30000, Type="DWord"
    )
    after = guest_cmd(lab, "node1", "Get-ItemProperty", LAB, Path=key, Name="HwTimeout")
    assert after[0]["HwTimeout"] == 30000


def test_device_naming_and_rename(lab: World) -> None:
    props = guest_cmd(
        lab,
        "node1",
        "Get-NetAdapterAdvancedProperty",
        LAB,
        RegistryKeyword="HyperVNetworkAdapterName",
    )
    assert [(p["Name"], p["DisplayValue"]) for p in props] == [("Ethernet", "Mgmt")]
    guest_cmd(lab, "node1", "Rename-NetAdapter", LAB, Name="Ethernet", NewName="Mgmt")
    assert lab.guest("node1").net.adapters[0].name == "Mgmt"


def test_cluster_cmdlets_need_domain_account_and_module(lab: World) -> None:
    with pytest.raises(PSError) as err:
        guest_cmd(lab, "node1", "Get-ClusterNode", LOCAL)
    assert "Access is denied" in err.value.message
    with pytest.raises(PSError) as err:
        guest_cmd(lab, "dc", "Get-ClusterNode", LAB)
    assert err.value.fqid == "CommandNotFoundException"


def test_test_cluster_report_and_failures(lab: World) -> None:
    out = guest_cmd(
        lab,
        "node1",
        "Test-Cluster",
        LAB,
        Node=list(NODES),
        Include=["Storage Spaces Direct", "Inventory", "Network", "System Configuration"],
        ReportName="v1",
    )
    path = out[0]["FullName"]
    assert path == "C:\\Windows\\Cluster\\Reports\\v1.htm"
    assert out[0].type_names[0] == "Deserialized.System.IO.FileInfo"
    html = lab.guest("node1").fs.read(path)
    assert "Verify Unique Device Identifiers</td><td>Success" in html
    assert (
        "Testing has completed successfully and the configuration is suitable for clustering."
        in html
    )


def test_test_cluster_flags_duplicate_disk_ids_and_dc(lab: World) -> None:
    n2 = lab.guest("node2")
    n1 = lab.guest("node1")
    # a copied VHDX shares its identifier.
    from hvsim.model.s2d import guest_disks

    guest_disks(n2)[1].vhd.disk_identifier = guest_disks(n1)[1].vhd.disk_identifier
    out = guest_cmd(
        lab,
        "node1",
        "Test-Cluster",
        LAB,
        Node=["node1", "node2", "dc"],
        Include=["Storage Spaces Direct"],
        ReportName="v2",
    )
    html = n1.fs.read(out[0]["FullName"])
    assert "Verify Unique Device Identifiers</td><td>Failed" in html
    assert "Is DC: DC" in html  # R-54(b)
    assert "DC has fewer than 2 disks" in html


def test_standard_edition_fails_s2d_validation_and_enable() -> None:
    world = World.create()
    build_domain(world)
    build_nodes(world, base=STANDARD)
    out = guest_cmd(
        world,
        "node1",
        "Test-Cluster",
        LAB,
        Node=list(NODES),
        Include=["Storage Spaces Direct"],
        ReportName="v3",
    )
    assert "Validate Operating System Edition</td><td>Failed" in world.guest("node1").fs.read(
        out[0]["FullName"]
    )
    build_cluster(world)
    with pytest.raises(PSError) as err:
        guest_cmd(
            world,
            "node1",
            "Enable-ClusterStorageSpacesDirect",
            LAB,
            CacheState="Disabled",
            Confirm=False,
        )
    assert "Datacenter" in err.value.message


def test_new_cluster_shape_networks_and_cno(lab: World) -> None:
    streams = Streams()
    out = guest_cmd(
        lab,
        "node1",
        "New-Cluster",
        LAB,
        streams=streams,
        Name="cl1",
        Node=list(NODES),
        StaticAddress="10.0.0.20",
        NoStorage=True,
    )
    assert out[0].type_names[0] == "Deserialized.Microsoft.FailoverClusters.PowerShell.Cluster"
    assert out[0]["Name"] == "CL1"
    assert any(
        "There were issues while creating the clustered role" in w for w in streams.warnings
    )
    nodes = guest_cmd(lab, "node1", "Get-ClusterNode", LAB)
    assert {(n["Name"], str(n["State"])) for n in nodes} == {("NODE1", "Up"), ("NODE2", "Up")}
    groups = {g["Name"]: g for g in guest_cmd(lab, "node1", "Get-ClusterGroup", LAB)}
    assert {"Cluster Group", "Available Storage"} <= set(groups)
    nets = guest_cmd(lab, "node1", "Get-ClusterNetwork", LAB)
    assert [(n["Address"], str(n["Role"])) for n in nets] == [
        ("10.0.0.0", "ClusterAndClient")
    ]
    assert lab.domains[DOMAIN].computer("CL1") is not None  # R-50 CNO
    # a second cluster on the same nodes is refused.
    with pytest.raises(PSError) as err:
        guest_cmd(lab, "node1", "New-Cluster", LAB, Name="cl2", Node=list(NODES), NoStorage=True)
    assert "is joined to a cluster" in err.value.message


def test_new_cluster_address_checks_and_stale_cno(lab: World) -> None:
    with pytest.raises(PSError) as err:
        guest_cmd(
            lab,
            "node1",
            "New-Cluster",
            LAB,
            Name="cl1",
            Node=list(NODES),
            StaticAddress="192.168.99.5",
            NoStorage=True,
        )
    assert "not on any network" in err.value.message
    with pytest.raises(PSError) as err:
        guest_cmd(
            lab,
            "node1",
            "New-Cluster",
            LAB,
            Name="cl1",
            Node=list(NODES),
            StaticAddress="10.0.0.10",
            NoStorage=True,
        )
    assert "already in use" in err.value.message
    lab.domains[DOMAIN].add_computer("CL1", 0.0)  # left from an earlier run
    with pytest.raises(PSError) as err:
        guest_cmd(
            lab,
            "node1",
            "New-Cluster",
            LAB,
            Name="cl1",
            Node=list(NODES),
            StaticAddress="10.0.0.20",
            NoStorage=True,
        )
    assert "already exists" in err.value.message
    guest_cmd(lab, "dc", "Remove-ADComputer", LAB, Identity="CL1", Confirm=False)
    guest_cmd(
        lab,
        "node1",
        "New-Cluster",
        LAB,
        Name="cl1",
        Node=list(NODES),
        StaticAddress="10.0.0.20",
        NoStorage=True,
    )


def test_witness_needs_share_granting_cno(lab: World) -> None:
    guest_cmd(
        lab,
        "node1",
        "New-Cluster",
        LAB,
        Name="cl1",
        Node=list(NODES),
        StaticAddress="10.0.0.20",
        NoStorage=True,
    )
    guest_cmd(lab, "dc", "New-Item", LAB, ItemType="Directory", Path="C:\\Witness\\cl1", Force=True)
    guest_cmd(
        lab, "dc", "New-SmbShare", LAB, Name="w", Path="C:\\Witness\\cl1", FullAccess=["LAB\\CL1$"]
    )
    with pytest.raises(PSError):  # no NTFS ACL yet
        guest_cmd(lab, "node1", "Set-ClusterQuorum", LAB, FileShareWitness="\\\\dc\\w")
    guest_cmd(lab, "dc", "Set-SmbPathAcl", LAB, ShareName="w")
    q = guest_cmd(lab, "node1", "Set-ClusterQuorum", LAB, FileShareWitness="\\\\dc\\w")
    assert str(q[0]["QuorumResource"]["State"]) == "Online"
    with pytest.raises(PSError) as err:  # the share needs an account that exists
        guest_cmd(
            lab,
            "dc",
            "New-SmbShare",
            LAB,
            Name="x",
            Path="C:\\Witness\\cl1",
            FullAccess=["LAB\\NOPE$"],
        )
    assert "No mapping between account names" in err.value.message


def test_cluster_network_role_script(lab: World) -> None:
    build_cluster(lab)
    out = guest_script(
        lab,
        "node1",
        "Set-ClusterNetworkRole.ps1",
        LAB,
        Address="10.0.0.0",
        Name="Management",
        Role=3,
    )
    assert (out[0]["Name"], out[0]["Role"]) == ("Management", 3)
    with pytest.raises(PSError) as err:
        guest_script(
            lab, "node1", "Set-ClusterNetworkRole.ps1", LAB, Address="10.9.9.0", Name="X", Role=1
        )
    assert err.value.message == "No cluster network has the address 10.9.9.0."


def mirror_volume(world: World, size: int = 100 * GiB) -> list[Any]:
    """New-Volume v1 from node1: a two-way mirror CSV on the S2D pool (R-64)."""
    return guest_cmd(
        world,
        "node1",
        "New-Volume",
        LAB,
        StoragePoolFriendlyName="S2D on CL1",
        FriendlyName="v1",
        FileSystem="CSVFS_ReFS",
        Size=size,
        ResiliencySettingName="Mirror",
    )


def _s2d(world: World) -> None:
    for n in NODES:
        for d in guest_cmd(world, n, "Get-Disk", LAB):
            if not d["IsBoot"] and d["PartitionStyle"] != "RAW":
                guest_cmd(
                    world,
                    n,
                    "Clear-Disk",
                    LAB,
                    Number=d["Number"],
                    RemoveData=True,
                    RemoveOEM=True,
                    Confirm=False,
                )
    guest_cmd(
        world,
        "node1",
        "Enable-ClusterStorageSpacesDirect",
        LAB,
        CacheState="Disabled",
        Confirm=False,
    )


def test_s2d_pool_disks_media_type_and_volume(lab: World) -> None:
    build_cluster(lab)
    with pytest.raises(PSError):  # no pool before S2D
        mirror_volume(lab)
    pd = guest_cmd(lab, "node1", "Get-PhysicalDisk", LAB)
    data = [d for d in pd if d["CanPool"]]
    assert len(data) == 4 and all(
        d["MediaType"] == "Unspecified" and d["BusType"] == "SAS" for d in data
    )
    with pytest.raises(PSError):  # not pooled yet
        guest_cmd(
            lab, "node1", "Set-PhysicalDisk", LAB, UniqueId=data[0]["UniqueId"], MediaType="HDD"
        )
    _s2d(lab)
    pools = guest_cmd(lab, "node1", "Get-StoragePool", LAB, IsPrimordial=False)
    assert [p["FriendlyName"] for p in pools] == ["S2D on CL1"]
    pooled = [
        d
        for d in guest_cmd(lab, "node1", "Get-PhysicalDisk", LAB)
        if d["CannotPoolReason"] == "In a Pool"
    ]
    assert len(pooled) == 8
    guest_cmd(
        lab, "node1", "Set-PhysicalDisk", LAB, UniqueId=pooled[0]["UniqueId"], MediaType="HDD"
    )
    again = guest_cmd(lab, "node1", "Get-PhysicalDisk", LAB, UniqueId=pooled[0]["UniqueId"])
    assert again[0]["MediaType"] == "HDD"
    vol = mirror_volume(lab, 200 * GiB)
    assert vol[0]["FileSystem"] == "CSVFS"
    vd = guest_cmd(lab, "node1", "Get-VirtualDisk", LAB, FriendlyName="v1")
    assert vd[0]["FootprintOnPool"] == 400 * GiB and vd[0]["NumberOfDataCopies"] == 2
    for n in NODES:
        assert guest_cmd(lab, n, "Test-Path", LAB, Path="C:\\ClusterStorage\\v1") == [True]
    csv = [c for c in guest_cmd(lab, "node1", "Get-ClusterSharedVolume", LAB) if "v1" in c["Name"]]
    assert csv[0]["Name"] == "Cluster Virtual Disk (v1)"
    assert csv[0]["SharedVolumeInfo"][0]["FriendlyVolumeName"] == "C:\\ClusterStorage\\v1"
    with pytest.raises(PSError) as err:
        guest_cmd(
            lab,
            "node1",
            "New-Volume",
            LAB,
            StoragePoolFriendlyName="S2D on CL1",
            FriendlyName="big",
            FileSystem="CSVFS_ReFS",
            Size=1500 * GiB,
            ResiliencySettingName="Mirror",
        )
    assert err.value.message == "Not enough available capacity"
    # the media type resets when the node reboots.
    restart(lab, lab.vm("node1"))
    assert [d for d in lab.guest("node1").vm.drives]
    after = guest_cmd(lab, "node2", "Get-PhysicalDisk", LAB, UniqueId=pooled[0]["UniqueId"])
    assert after[0]["MediaType"] == "Unspecified"


def test_s2d_refused_with_too_few_disks() -> None:
    world = World.create()
    build_domain(world)
    build_nodes(world, disks=1)
    build_cluster(world)
    with pytest.raises(PSError) as err:
        guest_cmd(
            world,
            "node1",
            "Enable-ClusterStorageSpacesDirect",
            LAB,
            CacheState="Disabled",
            Confirm=False,
        )
    assert "at least 2" in err.value.message


def _ha_vm(world: World, node: str = "node1", path: str = "C:\\ClusterStorage\\v1") -> Any:
    g = world.guest(node)
    for n in NODES:
        vmops_switch(world, n)
    vm, _ = vmops.new_vm(
        world,
        g.hyperv,
        name="l2vm",
        generation=2,
        memory_startup=1 * GiB,
        path=path,
        new_vhd=(path + "\\l2vm\\l2vm.vhdx", 40 * GiB),
        switch_name="Compute",
    )
    return vm


def vmops_switch(world: World, node: str) -> None:
    import uuid

    from hvsim.model.hyperv import VMSwitch

    hv = world.guest(node).hyperv
    if not hv.find_switches("Compute"):
        hv.switches.append(
            VMSwitch(
                "Compute", "External", uuid.uuid4(), net_adapter="Mgmt", allow_management_os=True
            )
        )


def test_ha_vm_refused_on_local_storage(lab: World) -> None:
    build_cluster(lab)
    _s2d(lab)
    _ha_vm(lab, path="C:\\VMs")
    with pytest.raises(PSError) as err:
        guest_cmd(lab, "node1", "Add-ClusterVirtualMachineRole", LAB, VMName="l2vm")
    assert "is not a path to storage in the cluster" in err.value.message


def test_ha_vm_live_migration_and_failover(lab: World) -> None:
    build_cluster(lab)
    _s2d(lab)
    mirror_volume(lab, 200 * GiB)
    vm = _ha_vm(lab)
    grp = guest_cmd(lab, "node1", "Add-ClusterVirtualMachineRole", LAB, VMName="l2vm")
    assert str(grp[0]["GroupType"]) == "VirtualMachine" and str(grp[0]["State"]) == "Offline"
    guest_cmd(lab, "node1", "Start-ClusterGroup", LAB, Name="l2vm")
    assert vm.state == "Running"
    started = vm.started_at
    lab.clock.sleep(30)
    moved = guest_cmd(
        lab,
        "node1",
        "Move-ClusterVirtualMachineRole",
        LAB,
        Name="l2vm",
        Node="node2",
        MigrationType="Live",
    )
    assert moved[0]["OwnerNode"].to_string == "NODE2" and str(moved[0]["State"]) == "Online"
    assert vm in lab.guest("node2").hyperv.vms and vm.started_at == started
    # no switch of that name on the target -> the VM stays.
    lab.guest("node1").hyperv.switches.clear()
    with pytest.raises(PSError) as err:
        guest_cmd(
            lab,
            "node2",
            "Move-ClusterVirtualMachineRole",
            LAB,
            Name="l2vm",
            Node="node1",
            MigrationType="Live",
        )
    assert "Compute" in err.value.message and vm in lab.guest("node2").hyperv.vms
    vmops_switch(lab, "node1")
    # Node down: noticed after the heartbeat timeout; its VM waits out the
    # resiliency period, then fails over to the surviving node.
    cut = lab.clock.now()
    vmops.power_off(_Ctx(lab), lab.host.hyperv, lab.vm("node2"))
    nodes = {n["Name"]: str(n["State"]) for n in guest_cmd(lab, "node1", "Get-ClusterNode", LAB)}
    assert nodes == {"NODE1": "Up", "NODE2": "Down"}
    assert lab.clock.now() == pytest.approx(cut + 10)  # 1000 ms x 10 heartbeats
    grp = guest_cmd(lab, "node1", "Get-ClusterGroup", LAB, Name="l2vm")[0]
    if str(grp["State"]) == "Unknown":  # Unmonitored on the isolated node
        grp = guest_cmd(lab, "node1", "Get-ClusterGroup", LAB, Name="l2vm")[0]
    assert grp["OwnerNode"].to_string == "NODE1" and str(grp["State"]) == "Online"
    assert vm.started_at == pytest.approx(cut + 10 + 240)


class _Ctx:
    def __init__(self, world: World) -> None:
        self.world = world

    def work(self, seconds: float, what: str) -> None:
        self.world.clock.sleep(seconds)

    def warning(self, text: str) -> None:
        pass


def test_ad_ready_comes_after_the_promotion_boot() -> None:
    from hvsim.clock import Clock

    world = World.create()
    dc_with_adds(world)
    guest_cmd(
        world,
        "dc",
        "Install-ADDSForest",
        DomainName=DOMAIN,
        DomainNetbiosName="LAB",
        SafeModeAdministratorPassword=SecureString(PASSWORD),
        NoRebootOnCompletion=True,
        Force=True,
    )
    world.clock = Clock(timescale=1e9, start=world.clock.now())  # modelled time barely moves
    restart(world, world.vm("dc"))  # a clean restart: the old OS answers a little longer
    dom_ready = None
    dc = world.guest("dc")
    going_down = next(s.start for s in dc.timeline if s.action == "restart_now")
    world.clock = Clock(timescale=1e9, start=going_down + 0.001)
    dc.phase()  # the promotion boot starts now
    # Jump to the moment the boot is done but AD is not yet.
    boot_done = next(s.start for s in dc.timeline if s.action == "ready")
    world.clock = Clock(timescale=0.0, start=boot_done + 1)
    assert dc.is_ready()
    dom_ready = world.domains[DOMAIN].ready_at
    assert dom_ready > boot_done
    svc = guest_cmd(world, "dc", "Get-Service", LAB, Name="ADWS")
    assert str(svc[0]["Status"]) == "Stopped"
    with pytest.raises(PSError):
        guest_cmd(world, "dc", "Get-ADDomainController", LAB)
    world.clock = Clock(timescale=0.0, start=dom_ready + 1)
    assert guest_cmd(world, "dc", "Get-ADDomainController", LAB)
    assert str(guest_cmd(world, "dc", "Get-Service", LAB, Name="ADWS")[0]["Status"]) == "Running"


def test_dc_services_come_back_after_an_ordinary_reboot(lab: World) -> None:
    restart(lab, lab.vm("dc"))
    svc = guest_cmd(lab, "dc", "Get-Service", LAB, Name=["ADWS", "NTDS", "DNS"])
    assert {str(s["Status"]) for s in svc} == {"Running"}


def test_cluster_name_offline_while_dc_down(lab: World) -> None:
    build_cluster(lab)
    vmops.power_off(_Ctx(lab), lab.host.hyperv, lab.vm("dc"))
    res = {r["Name"]: str(r["State"]) for r in guest_cmd(lab, "node1", "Get-ClusterResource", LAB)}
    assert res["Cluster Name"] == "Offline"
    assert res["File Share Witness"] == "Failed"  # the share is gone with the DC


def test_state_file_round_trip_keeps_guests_and_cluster(lab: World, tmp_path: Any) -> None:
    from hvsim import persist

    build_cluster(lab)
    path = tmp_path / "state.bin"
    persist.save(lab, path)
    again = persist.load(path)
    assert again.snapshot() == lab.snapshot()
    nodes = guest_cmd(again, "node1", "Get-ClusterNode", LAB)
    assert {str(n["State"]) for n in nodes} == {"Up"}


def test_report_rows_read_by_the_orchestrators_parser(lab: World) -> None:
    from hvlab.steps.cluster import failed_tests

    n1, n2 = lab.guest("node1"), lab.guest("node2")
    from hvsim.model.s2d import guest_disks

    guest_disks(n2)[2].vhd.disk_identifier = guest_disks(n1)[2].vhd.disk_identifier
    out = guest_cmd(
        lab,
        "node1",
        "Test-Cluster",
        LAB,
        Node=list(NODES),
        Include=["Storage Spaces Direct"],
        ReportName="v4",
    )
    lines = guest_cmd(lab, "node1", "Get-Content", LAB, Path=out[0]["FullName"])
    assert failed_tests("\n".join(str(x) for x in lines)) == ["Verify Unique Device Identifiers"]


def test_join_is_in_effect_during_the_first_hyperv_boot() -> None:
    from hvsim.clock import Clock

    world = World.create()
    build_domain(world)
    start(world, _vm(world, "node1", disks=4))
    guest_cmd(world, "node1", "Add-Computer", DomainName=DOMAIN, Credential=LAB, Force=True)
    guest_cmd(
        world,
        "node1",
        "Install-WindowsFeature",
        Name=["Hyper-V", "Failover-Clustering"],
        IncludeManagementTools=True,
    )
    world.clock = Clock(timescale=1e9, start=world.clock.now())
    restart(world, world.vm("node1"))
    node = world.guest("node1")
    going_down = next(s.start for s in node.timeline if s.action == "restart_now")
    world.clock = Clock(timescale=1e9, start=going_down + 0.001)
    node.phase()  # the restart begins the two Hyper-V boots
    brief = next(s.start for s in node.timeline if s.action == "hyperv_first_boot")
    world.clock = Clock(timescale=1e9, start=brief + 1)
    assert node.phase() == "Ready"
    # the first of the two boots answers briefly, already joined, vmms not yet.
    svc = guest_cmd(world, "node1", "Get-Service", LAB, Name="vmms", ErrorAction="SilentlyContinue")
    assert svc == [] or str(svc[0]["Status"]) != "Running"
    assert node.hyperv is None


def test_ad_slow_fault_delays_ad_ready() -> None:
    plain, slow = World.create(), World.create(faults="ad_slow:factor=5")
    for w in (plain, slow):
        build_domain(w)
    delay = {
        id(w): w.domains[DOMAIN].ready_at
        - next(s.start for s in w.guest("dc").timeline if s.action == "ready")
        for w in (plain, slow)
    }
    assert delay[id(slow)] == pytest.approx(5 * delay[id(plain)])


def test_clustered_vm_comes_back_after_its_node_reboots(lab: World) -> None:
    build_cluster(lab)
    _s2d(lab)
    mirror_volume(lab, 200 * GiB)
    vm = _ha_vm(lab)
    guest_cmd(lab, "node1", "Add-ClusterVirtualMachineRole", LAB, VMName="l2vm")
    guest_cmd(lab, "node1", "Start-ClusterGroup", LAB, Name="l2vm")
    restart(lab, lab.vm("node1"))  # the owner reboots; the VM dies with it
    assert vm.state == "Off"
    g = guest_cmd(lab, "node2", "Get-ClusterGroup", LAB, Name="l2vm")[0]
    assert str(g["State"]) == "Online" and vm.state == "Running"


def test_dism_path_installs_hyperv_but_no_hypervisor_without_extensions() -> None:
    world = World.create()
    build_domain(world)
    start(world, _vm(world, "node1", disks=2, expose=False))
    out = guest_cmd(
        world,
        "node1",
        "Enable-WindowsOptionalFeature",
        Online=True,
        FeatureName=["Microsoft-Hyper-V"],
        All=True,
        NoRestart=True,
    )
    assert out[0]["RestartNeeded"] is True
    restart(world, world.vm("node1"))
    node = world.guest("node1")
    assert node.features["Hyper-V"] == "Installed" and node.hyperv is not None
    assert not node.hypervisor_running
    from hvsim.model.hyperv import VM

    l2 = VM(id=world.new_uuid(), name="l2", memory_startup=1 * GiB)
    node.hyperv.vms.append(l2)
    with pytest.raises(PSError) as err:
        vmops.start(_Ctx(world), node.hyperv, l2)
    assert "one of the Hyper-V components is not running" in err.value.message


def test_storage_degraded_while_a_node_is_down(lab: World) -> None:
    build_cluster(lab)
    _s2d(lab)
    mirror_volume(lab)
    lab.cluster("cl1").pool.virtual_disks[-1].csv_owner = "NODE2"
    # As Microsoft's in-VM guidance says: no automatic drive replacement.
    guest_script(
        lab, "node1", "Set-S2DInVMSettings.ps1", LAB, AutoReplace="False", BlockCacheSize=0
    )
    vmops.power_off(_Ctx(lab), lab.host.hyperv, lab.vm("node2"))
    pool = guest_cmd(lab, "node1", "Get-StoragePool", LAB, IsPrimordial=False)[0]
    assert (pool["HealthStatus"], pool["OperationalStatus"]) == ("Warning", "Degraded")
    vd = guest_cmd(lab, "node1", "Get-VirtualDisk", LAB, FriendlyName="v1")[0]
    assert vd["OperationalStatus"] == "Degraded"
    lost = [
        p
        for p in guest_cmd(lab, "node1", "Get-PhysicalDisk", LAB)
        if p["OperationalStatus"] == "Lost Communication"
    ]
    assert len(lost) == 4
    # Once the cluster notices node2 is gone, the CSV coordinator moves.
    node2 = guest_cmd(lab, "node1", "Get-ClusterNode", LAB, Name="node2")[0]
    assert str(node2["State"]) == "Down"
    csv = next(
        c for c in guest_cmd(lab, "node1", "Get-ClusterSharedVolume", LAB) if "v1" in c["Name"]
    )
    assert csv["OwnerNode"].to_string == "NODE1"  # the coordinator moved
    vmops.start(_Ctx(lab), lab.host.hyperv, lab.vm("node2"))
    pool = guest_cmd(lab, "node1", "Get-StoragePool", LAB, IsPrimordial=False)[0]
    assert pool["HealthStatus"] == "Healthy"  # healthy again once every node is Up


def test_live_migration_needs_a_cluster_network_with_a_role(lab: World) -> None:
    build_cluster(lab)
    _s2d(lab)
    mirror_volume(lab)
    vm = _ha_vm(lab)
    guest_cmd(lab, "node1", "Add-ClusterVirtualMachineRole", LAB, VMName="l2vm")
    guest_cmd(lab, "node1", "Start-ClusterGroup", LAB, Name="l2vm")
    guest_script(
        lab, "node1", "Set-ClusterNetworkRole.ps1", LAB, Address="10.0.0.0", Name="Mgmt", Role=0
    )
    with pytest.raises(PSError) as err:
        guest_cmd(
            lab,
            "node1",
            "Move-ClusterVirtualMachineRole",
            LAB,
            Name="l2vm",
            Node="node2",
            MigrationType="Live",
        )
    assert "No cluster network" in err.value.message
    assert vm in lab.guest("node1").hyperv.vms
