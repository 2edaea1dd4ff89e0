"""templates/guest/Get-GuestFacts.ps1 and Get-ClusterFacts.ps1 in the model: each fact
asked for comes back under its name, as the cmdlet alone returns it, through
PowerShell Direct (R-34); facts not asked for do not come; what the scripts guard
(Hyper-V running, a cluster there, Active Directory answering) is honoured."""

from __future__ import annotations

from typing import Any

import pytest
from guestlab import guest_cmd, guest_script
from test_model_cluster import LAB, LOCAL, NODES, _s2d, build_cluster, build_domain, build_nodes

from hvsim.errors import PSError
from hvsim.model.world import World

SPACEPORT = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\spaceport\\Parameters"


def sections(out: list[Any]) -> dict[str, list[Any]]:
    """The script's answer by fact, as hvlab.facts.GuestFacts reads it."""
    found: dict[str, list[Any]] = {}
    current: list[Any] | None = None
    for value in out:
        if getattr(value, "type_names", [None])[0] == "Deserialized.hvlab.GuestFact":
            current = found.setdefault(value["Fact"], [])
        else:
            assert current is not None, f"{value!r} came before any fact"
            current.append(value)
    return found


def _same(a: list[Any], b: list[Any]) -> None:
    """Same objects, as far as a client can tell (types and properties)."""
    assert [x.type_names for x in a] == [y.type_names for y in b]
    assert [dict(x.props) for x in a] == [dict(y.props) for y in b]


@pytest.fixture
def domain() -> World:
    world = World.create()
    build_domain(world)
    return world


def test_each_fact_is_what_its_cmdlet_returns(domain: World) -> None:
    out = guest_script(
        domain,
        "dc",
        "Get-GuestFacts.ps1",
        LAB,
        OperatingSystem=True,
        ComputerSystem=True,
        Path=["C:\\Windows", "C:\\Nope"],
        Feature=["AD-Domain-Services", "Hyper-V"],
        Service=["NTDS", "no-such-service"],
        DomainController=True,
    )
    found = sections(out)
    assert list(found) == [
        "OperatingSystem",
        "ComputerSystem",
        "Path",
        "Feature",
        "Service",
        "DomainController",
    ]
    _same(
        found["OperatingSystem"],
        guest_cmd(domain, "dc", "Get-CimInstance", LAB, ClassName="Win32_OperatingSystem"),
    )
    _same(
        found["ComputerSystem"],
        guest_cmd(domain, "dc", "Get-CimInstance", LAB, ClassName="Win32_ComputerSystem"),
    )
    assert found["Path"] == [True, False]
    _same(
        found["Feature"],
        guest_cmd(domain, "dc", "Get-WindowsFeature", LAB, Name=["AD-Domain-Services", "Hyper-V"]),
    )
    # SilentlyContinue: a service that is not there is left out, not an error.
    assert [s["Name"] for s in found["Service"]] == ["NTDS"]
    _same(found["DomainController"], guest_cmd(domain, "dc", "Get-ADDomainController", LAB))
    assert found["DomainController"][0]["PSComputerName"] == "dc"


def test_only_the_facts_asked_for_come(domain: World) -> None:
    found = sections(guest_script(domain, "dc", "Get-GuestFacts.ps1", LAB, ComputerSystem=True))
    assert list(found) == ["ComputerSystem"]
    assert sections(guest_script(domain, "dc", "Get-GuestFacts.ps1", LAB)) == {}


def test_a_read_that_fails_ends_the_script(domain: World) -> None:
    """$ErrorActionPreference = 'Stop': a read without SilentlyContinue that fails is
    the script's error, as the cmdlet's own error."""
    with pytest.raises(PSError) as info:
        guest_script(domain, "dc", "Get-GuestFacts.ps1", LAB, DnsClient=["No-Such-Adapter"])
    with pytest.raises(PSError) as alone:
        guest_cmd(domain, "dc", "Get-DnsClient", LAB, InterfaceAlias=["No-Such-Adapter"])
    assert info.value.fqid == alone.value.fqid


def test_the_domain_controller_fact_is_empty_until_ad_answers() -> None:
    world = World.create()
    build_domain(world)
    # A member that is not a DC: Get-ADDomainController fails there, the fact is empty.
    build_nodes(world)
    with pytest.raises(PSError):
        guest_cmd(world, "node1", "Get-ADDomainController", LAB)
    found = sections(guest_script(world, "node1", "Get-GuestFacts.ps1", LAB, DomainController=True))
    assert found == {"DomainController": []}


def test_vmswitch_only_where_hyperv_runs(domain: World) -> None:
    """R-46: without the Hyper-V role running there is no Get-VMSwitch; the fact is
    then not written at all, and a node with Hyper-V answers it."""
    found = sections(
        guest_script(domain, "dc", "Get-GuestFacts.ps1", LAB, VMSwitch="ClusterSwitch")
    )
    assert "VMSwitch" not in found
    build_nodes(domain)
    node = sections(
        guest_script(
            domain,
            "node1",
            "Get-GuestFacts.ps1",
            LAB,
            VMSwitch="ClusterSwitch",
            RegistryPath=SPACEPORT,
            RegistryValue="HwTimeout",
            VMHost=True,
        )
    )
    assert node["VMSwitch"] == []  # running Hyper-V, no switch of that name yet
    adapter = guest_cmd(domain, "node1", "Get-NetAdapter", LAB)[0]["Name"]
    guest_cmd(
        domain,
        "node1",
        "New-VMSwitch",
        LAB,
        Name="ClusterSwitch",
        NetAdapterName=adapter,
        AllowManagementOS=True,
    )
    again = sections(
        guest_script(domain, "node1", "Get-GuestFacts.ps1", LAB, VMSwitch="ClusterSwitch")
    )
    assert [s["Name"] for s in again["VMSwitch"]] == ["ClusterSwitch"]
    _same(node["VMHost"], guest_cmd(domain, "node1", "Get-VMHost", LAB))
    _same(
        node["Registry"],
        guest_cmd(
            domain,
            "node1",
            "Get-ItemProperty",
            LAB,
            Path=SPACEPORT,
            Name="HwTimeout",
            ErrorAction="SilentlyContinue",
        ),
    )
    missing = sections(
        guest_script(
            domain, "node1", "Get-GuestFacts.ps1", LAB, RegistryPath=SPACEPORT, RegistryValue="Nope"
        )
    )
    assert missing == {"Registry": []}  # a value that is not there: SilentlyContinue


def test_cluster_facts_without_a_cluster_are_just_that(domain: World) -> None:
    build_nodes(domain)
    found = sections(
        guest_script(domain, "node1", "Get-ClusterFacts.ps1", LAB, Node=True, StoragePool=True)
    )
    assert found == {"Cluster": []}


def test_cluster_facts_of_a_cluster_with_s2d(domain: World) -> None:
    build_nodes(domain)
    build_cluster(domain)
    _s2d(domain)
    params: dict[str, Any] = {
        "Node": True,
        "Quorum": True,
        "Network": True,
        "SharedVolume": True,
        "Group": ["Cluster Group", "no-such-group"],
        "StoragePool": True,
        "InVMSettings": True,
        "PhysicalDisk": True,
        "VirtualDisk": ["no-such-disk"],
    }
    found = sections(guest_script(domain, "node1", "Get-ClusterFacts.ps1", LAB, **params))
    assert list(found) == [
        "Cluster",
        "Node",
        "Quorum",
        "Network",
        "SharedVolume",
        "Group",
        "StoragePool",
        "InVMSettings",
        "PhysicalDisk",
        "VirtualDisk",
    ]
    _same(found["Cluster"], guest_cmd(domain, "node1", "Get-Cluster", LAB))
    _same(found["Node"], guest_cmd(domain, "node1", "Get-ClusterNode", LAB))
    _same(found["Network"], guest_cmd(domain, "node1", "Get-ClusterNetwork", LAB))
    _same(found["PhysicalDisk"], guest_cmd(domain, "node1", "Get-PhysicalDisk", LAB))
    assert [n["Name"].lower() for n in found["Node"]] == list(NODES)
    assert [g["Name"] for g in found["Group"]] == ["Cluster Group"]
    assert found["VirtualDisk"] == []
    _same(
        found["InVMSettings"],
        guest_script(domain, "node1", "Get-S2DInVMSettings.ps1", LAB),
    )
    # Cluster cmdlets need the domain account: so does the script.
    with pytest.raises(PSError):
        guest_script(domain, "node1", "Get-ClusterFacts.ps1", LOCAL, Node=True)
