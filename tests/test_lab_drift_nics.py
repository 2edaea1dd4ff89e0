"""NIC drift of a built lab, end to end through lab.plan and lab.up (R-140, R-141): a
MAC changed in the lab file, and an adapter on a node that the file does not name.
A MAC changes only while the VM is off; the guest keeps the adapter's addresses,
because the adapter stays the same device (R-140, docs/model-notes.md).

The default lab is built once per module on the embedded host (timescale 0); each test
starts from a copy of its host state.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import test_lab_drift
from project import LABS
from test_lab_drift import _clean_env, _cli, _off_spans, _world

from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab.errors import EXIT_FAILED, ChangesWaiting
from hvsim import persist

NEW_MAC = "00155D7700AB"
MGMT = "{name: Management, switch: lab, ip: 10.10.0.11}"


# The default lab built once for this module too: test_lab_drift's fixture.
built = test_lab_drift.built


@pytest.fixture
def workdir(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _clean_env(monkeypatch)
    shutil.copytree(built / ".hvlab", tmp_path / ".hvlab")
    text = (LABS / "s2d-2node.yaml").read_text(encoding="utf-8")
    assert MGMT in text
    (tmp_path / "s2d-2node.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "newmac.yaml").write_text(
        text.replace(MGMT, MGMT[:-1] + ", mac: 00-15-5D-77-00-AB}"), encoding="utf-8"
    )
    return tmp_path


def _adapter(world: Any, vm: str, name: str) -> Any:
    return next(a for a in world.vm(vm).adapters if a.name == name)


def _status(capsys: pytest.CaptureFixture[str], lab: str) -> dict[str, Any]:
    capsys.readouterr()
    lab_status.status(None, lab=lab, as_json=True)
    return json.loads(capsys.readouterr().out)


def test_plan_shows_a_changed_mac_as_drift(workdir: Path) -> None:
    old = _adapter(_world(workdir), "hvhost01", "Management").mac
    assert old != NEW_MAC
    done = _cli(workdir, "lab.plan", "--lab", "newmac.yaml", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert set(payload["drift"]) == {"hvhost01"}  # only the node whose MAC changed
    assert payload["drift"]["hvhost01"]["drift"] == [
        f"adapter Management MAC {old} -> {NEW_MAC} (R-140)"
    ]
    assert "--allow-restart" in payload["drift"]["hvhost01"]["to_apply"]
    assert not any(s["status"] == "failed" for s in payload["steps"])

    done = _cli(workdir, "lab.plan", "--lab", "newmac.yaml")
    assert done.returncode == 0, done.stderr
    assert f"adapter Management MAC {old} -> {NEW_MAC}" in done.stdout
    assert "failed" not in (done.stdout + done.stderr).lower()


def test_up_without_the_flag_names_the_mac_and_leaves_it(workdir: Path) -> None:
    world = _world(workdir)
    old = _adapter(world, "hvhost01", "Management").mac
    since = world.clock.now()
    with pytest.raises(ChangesWaiting) as caught:
        labs.up(None, lab="newmac.yaml")
    err = caught.value
    assert err.exit_code == EXIT_FAILED
    assert f"hvhost01: adapter Management MAC {old} -> {NEW_MAC}" in str(err)
    assert set(err.report["waiting"]) == {"hvhost01"}  # type: ignore[attr-defined]
    world = _world(workdir)
    assert _adapter(world, "hvhost01", "Management").mac == old
    assert world.vm("hvhost01").state == "Running"
    assert _off_spans(world, "hvhost01", since) == []


def test_allow_restart_changes_the_mac_and_the_guest_keeps_its_address(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = _world(workdir)
    since = world.clock.now()
    guest_before = {a.name: a for a in world.guest("hvhost01").net.adapters}

    report = labs.up(None, lab="newmac.yaml", allow_restart=True)
    assert report["result"] == "ok"
    changes = next(s for s in report["steps"] if s["step"] == "restart")["changes"]
    order = [c.split(" (")[0] for c in changes if not c.startswith("Set-PhysicalDisk")]
    assert order == [
        "Suspend-ClusterNode hvhost01 -Drain",
        "Stop-VM hvhost01",
        "Set-VMNetworkAdapter hvhost01/Management",
        "Start-VM hvhost01",
        "Resume-ClusterNode hvhost01 -Failback Immediate",
    ]

    world = _world(workdir)
    assert _adapter(world, "hvhost01", "Management").mac == NEW_MAC
    assert len(_off_spans(world, "hvhost01", since)) == 1
    assert _off_spans(world, "hvhost02", since) == []
    # The same adapter in the guest: its name and static address survive the MAC change.
    guest_after = {a.name: a for a in world.guest("hvhost01").net.adapters}
    assert set(guest_after) == set(guest_before)
    mgmt = next(a for a in guest_after.values() if a.mac == NEW_MAC)
    assert mgmt.guid == guest_before[mgmt.name].guid
    # The management address sits on the vNIC of the node's own switch, which is bound
    # to this adapter: still there, still on the wire through the changed MAC.
    vnic = next(a for a in guest_after.values() if "10.10.0.11" in [ip.address for ip in a.ips])
    assert not vnic.dhcp
    switch = next(
        sw for sw in world.guest("hvhost01").hyperv.switches if str(sw.id) == vnic.switch_id
    )
    assert switch.net_adapter == mgmt.name

    status = _status(capsys, "newmac.yaml")
    node = next(v for v in status["vms"] if v["name"] == "hvhost01")
    nic = next(n for n in node["nics"] if n["name"] == "Management")
    assert nic["mac"] == NEW_MAC
    assert [n["state"] for n in status["cluster"]["nodes"]] == ["Up", "Up"]
    assert status["s2d"]["pool"]["health"] == "Healthy"

    again = labs.up(None, lab="newmac.yaml", allow_restart=True)
    assert again["result"] == "ok" and again["changed"] == 0


def test_an_adapter_the_file_does_not_name_is_removed_in_the_off_window(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An adapter added on the host by hand: drift while the node runs (it is not the
    lab's to keep), removed only in its off window with --allow-restart."""
    world = _world(workdir)
    from hvsim.model.hyperv import VMNetworkAdapter

    extra = VMNetworkAdapter("Extra", switch=None, mac="00155D7700CD", dynamic_mac=False)
    world.vm("hvhost02").adapters.append(extra)
    persist.save(world, workdir / ".hvlab" / "sim" / "host.state")
    since = world.clock.now()

    done = _cli(workdir, "lab.plan", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["drift"]["hvhost02"]["drift"] == [
        "adapter Extra is on the VM, not in the lab file: to be removed (R-140)"
    ]
    assert set(payload["drift"]) == {"hvhost02"}

    with pytest.raises(ChangesWaiting):
        labs.up(None)
    assert any(a.name == "Extra" for a in _world(workdir).vm("hvhost02").adapters)

    report = labs.up(None, allow_restart=True)
    assert report["result"] == "ok"
    changes = next(s for s in report["steps"] if s["step"] == "restart")["changes"]
    assert "Remove-VMNetworkAdapter hvhost02/Extra (not in the lab file)" in changes
    world = _world(workdir)
    assert [a.name for a in world.vm("hvhost02").adapters] == [
        "Management",
        "Storage1",
        "Storage2",
    ]
    assert len(_off_spans(world, "hvhost02", since)) == 1
    status = _status(capsys, "s2d-2node.yaml")
    assert [n["state"] for n in status["cluster"]["nodes"]] == ["Up", "Up"]
    assert labs.up(None, allow_restart=True)["changed"] == 0


STORAGE2 = "{name: Storage2, switch: storage2, ip: 10.10.2.11}"


def test_a_nic_added_to_a_built_lab_gets_its_name_and_address_inside_the_guest(
    workdir: Path,
) -> None:
    """A NIC added to the lab file of a built lab: the host adapter is hot-added to the
    running node (R-140), the guest sees it at once as "Ethernet N" on DHCP, and the boot
    step finds it by its MAC, gives it its address, turns off its DNS registration
    (R-93) and renames it. No restart; the re-run changes nothing."""
    text = (workdir / "s2d-2node.yaml").read_text(encoding="utf-8")
    for n in (1, 2):
        line = STORAGE2.replace("2.11", f"2.1{n}")
        assert line in text
        text = text.replace(
            line, line + f"\n      - {{name: Backup, switch: storage1, ip: 10.10.1.2{n}}}"
        )
    (workdir / "morenics.yaml").write_text(text, encoding="utf-8")
    world = _world(workdir)
    since = world.clock.now()
    before = {n: world.guest(f"hvhost0{n}").boot_count for n in (1, 2)}

    done = _cli(workdir, "lab.plan", "--lab", "morenics.yaml")
    assert done.returncode == 0, done.stderr
    assert (
        "would change: Add-VMNetworkAdapter hvhost01/Backup on s2d-2node-storage1 "
        "(hot add: named and addressed inside hvhost01 next)"
    ) in done.stdout

    done = _cli(workdir, "lab.up", "--lab", "morenics.yaml", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    for n in (1, 2):
        boot = next(s for s in report["steps"] if s["step"] == f"boot:hvhost0{n}")
        # The guest's default name for the new device: "Ethernet N".
        default = re.search(r"/(Ethernet \d+) ", boot["changes"][0])
        assert default is not None, boot["changes"]
        alias = default.group(1)
        assert [c.split(" (")[0] for c in boot["changes"]] == [
            f"New-NetIPAddress hvhost0{n}/{alias} 10.10.1.2{n}/24",
            f"Set-DnsClient hvhost0{n}/{alias}: no DNS registration",
            f"Rename-NetAdapter hvhost0{n}: {alias} -> Backup",
        ], boot["changes"]

    world = _world(workdir)
    for n in (1, 2):
        node = f"hvhost0{n}"
        host_nic = _adapter(world, node, "Backup")
        guest = world.guest(node)
        backup = guest.net.adapter("Backup")
        assert backup is not None, [a.name for a in guest.net.adapters]
        assert backup.mac == host_nic.mac.upper()
        assert [(ip.address, ip.prefix_length) for ip in backup.ips] == [(f"10.10.1.2{n}", 24)]
        assert not backup.dhcp and backup.gateway is None  # a storage NIC: no gateway
        assert backup.register_dns is False
        assert f"10.10.1.2{n}" not in guest.dns_addresses()
        assert guest.boot_count == before[n]  # no restart
        assert _off_spans(world, node, since) == []
    # The nodes reach each other on the new network.
    one = world.guest("hvhost01").net.adapter("Backup")
    assert one is not None and one.status == "Up"

    again = labs.up(None, lab="morenics.yaml")
    assert again["result"] == "ok" and again["changed"] == 0
