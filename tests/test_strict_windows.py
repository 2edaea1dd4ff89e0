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

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SIM_PASSWORD, SIM_USER
from test_model_cluster import LAB, NODES, build_cluster, build_domain, build_nodes

from hvlab.config import Settings
from hvlab.guest import Guest
from hvlab.remote import Credential, Host
from hvlab.secrets import Secret
from hvsim.model.world import World

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "C:\\hvlab\\images\\ws2022-datacenter.vhdx"
DOMAIN_ADMIN = Credential("LAB\\Administrator", Secret("Lab-Test-Pw1!"))


def _settings(server: Any) -> Settings:
    return Settings(
        host=server.url,
        user=SIM_USER,
        password=Secret(SIM_PASSWORD),
        auth="ntlm",
        cert_validation=False,
        operation_timeout=5,
        retries=0,
    )


@pytest.fixture
def wire(sim_server: Any) -> Callable[[World], contextlib.AbstractContextManager[Host]]:
    """wire(world) -> a context with a Host connected to hvsim serving `world`."""

    @contextlib.contextmanager
    def connect(world: World) -> Iterator[Host]:
        server = sim_server(auth="ntlm", world=world)
        with Host.connect(_settings(server)) as host:
            yield host

    return connect


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
