"""Labs that join an Active Directory domain outside the lab (issue 15, R-125).

hvsim gives its host such a domain (HostProfile.domains, HVSIM_DOMAINS): a DC on the
host's network that guests reach through NAT or an External switch, a join account, a
file server with a witness share. An existing-domain lab builds against it end to end,
and lab.down removes from that domain the computer objects the lab created, and only
those.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from guestlab import PASSWORD, NicSpec, add_vm, start, unattend_xml
from project import LABS

from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab import teardown
from hvlab.errors import HostError, SpecError
from hvlab.guest import Guest
from hvlab.remote import Credential, Host
from hvlab.secrets import Secret
from hvlab.spec import load_lab
from hvsim.model.world import DEMO_JOIN_PASSWORD, World, parse_domains

JOIN = Credential("EXAMPLECORP\\hvjoin", Secret(DEMO_JOIN_PASSWORD))
LOCAL = Credential(".\\Administrator", Secret(PASSWORD))
DC = "192.168.1.5"


def _member(
    world: World,
    name: str,
    mac: str,
    ip: str,
    *,
    dns: str = DC,
    switch: str = "lab",
    gateway: str = "10.30.0.1",
) -> Any:
    dashed = "-".join(mac[i : i + 2] for i in range(0, 12, 2))
    xml = unattend_xml(name, {dashed: f"{ip}/24"}, dns=[dns], gateway=gateway)
    vm = add_vm(world, name, [NicSpec("Mgmt", switch, mac)], xml=xml)
    start(world, vm)
    return vm


def _internal_switch(host: Host, *, nat: bool) -> None:
    host.run("New-VMSwitch", Name="lab", SwitchType="Internal")
    host.run(
        "New-NetIPAddress", InterfaceAlias="vEthernet (lab)", IPAddress="10.30.0.1", PrefixLength=24
    )
    if nat:
        host.run("New-NetNat", Name="labnat", InternalIPInterfaceAddressPrefix="10.30.0.0/24")


# -- hvsim: the outside domain over the wire ------------------------------------------------


def test_a_guest_joins_the_outside_domain_through_nat_only(wire: Any) -> None:
    world = World.create()
    with wire(world) as host:
        _internal_switch(host, nat=False)
        _member(world, "m1", "00155D1E0011", "10.30.0.11")
        g = Guest(host, "m1", LOCAL)
        # No NAT: the DC on the host's network cannot be reached from the lab's subnet.
        with pytest.raises(HostError, match="could not be contacted"):
            g.run("Add-Computer", DomainName="corp.example.com", Credential=JOIN, Force=True)
        host.run("New-NetNat", Name="labnat", InternalIPInterfaceAddressPrefix="10.30.0.0/24")
        bad = Credential("EXAMPLECORP\\hvjoin", Secret("Wrong-Passw0rd!"))
        with pytest.raises(HostError, match="user name or password is incorrect"):
            g.run("Add-Computer", DomainName="corp.example.com", Credential=bad, Force=True)
        g.run("Add-Computer", DomainName="corp.example.com", Credential=JOIN, Force=True)
    dom = world.domains["corp.example.com"]
    assert dom.computer("m1") is not None and dom.dns["m1"] == ["10.30.0.11"]
    errors = [e for e in world.guest("m1").events.entries("System") if e.entry_type == "Error"]
    assert [e.event_id for e in errors] == [4097, 4097], "NetJoin logs both failed joins"


def test_a_guest_on_an_external_switch_joins_on_the_hosts_network(wire: Any) -> None:
    world = World.create()
    with wire(world) as host:
        host.run("New-VMSwitch", Name="uplink", NetAdapterName="Ethernet", AllowManagementOS=True)
        _member(world, "m4", "00155D1E0014", "192.168.1.50", switch="uplink", gateway="192.168.1.1")
        _member(world, "m5", "00155D1E0015", "10.99.0.5", switch="uplink", gateway="10.99.0.1")
        Guest(host, "m4", LOCAL).run(
            "Add-Computer", DomainName="corp.example.com", Credential=JOIN, Force=True
        )
        # On the wire of the host's network but in another subnet: no route to the DC.
        with pytest.raises(HostError, match="could not be contacted"):
            Guest(host, "m5", LOCAL).run(
                "Add-Computer", DomainName="corp.example.com", Credential=JOIN, Force=True
            )
    assert world.domains["corp.example.com"].computer("m4") is not None


def test_a_guest_needs_the_outside_dc_as_its_dns_server(wire: Any) -> None:
    world = World.create()
    with wire(world) as host:
        _internal_switch(host, nat=True)
        _member(world, "m2", "00155D1E0012", "10.30.0.12", dns="10.30.0.1")
        with pytest.raises(HostError, match="could not be contacted"):
            Guest(host, "m2", LOCAL).run(
                "Add-Computer", DomainName="corp.example.com", Credential=JOIN, Force=True
            )


def test_the_ad_module_asks_the_outside_domain_with_server_and_credential(wire: Any) -> None:
    world = World.create()
    with wire(world) as host:
        _internal_switch(host, nat=True)
        _member(world, "m3", "00155D1E0013", "10.30.0.13")
        g = Guest(host, "m3", LOCAL)
        g.run("Install-WindowsFeature", Name=["RSAT-AD-PowerShell"])
        # A workgroup machine has no default server to ask.
        with pytest.raises(HostError) as info:
            g.run("Get-ADComputer", Identity="fs01")
        assert info.value.message.startswith("Unable to find a default server")
        fs = g.run("Get-ADComputer", Identity="fs01", Server="corp.example.com", Credential=JOIN)
        assert fs[0]["DistinguishedName"] == "CN=FS01,CN=Computers,DC=corp,DC=example,DC=com"
        with pytest.raises(HostError) as info:
            g.run("Get-ADComputer", Identity="nope", Server="corp.example.com", Credential=JOIN)
        assert "ADIdentityNotFoundException" in info.value.error_id
        bad = Credential("EXAMPLECORP\\hvjoin", Secret("Wrong-Passw0rd!"))
        with pytest.raises(HostError, match="rejected the client credentials"):
            g.run("Get-ADComputer", Identity="fs01", Server=DC, Credential=bad)
        g.run("Add-Computer", DomainName="corp.example.com", Credential=JOIN, Force=True)
        g.run(
            "Remove-ADObject",
            Identity="CN=M3,CN=Computers,DC=corp,DC=example,DC=com",
            Recursive=True,
            Confirm=False,
            Server="corp.example.com",
            Credential=JOIN,
        )
    dom = world.domains["corp.example.com"]
    assert dom.computer("m3") is None
    assert dom.dns["m3"] == ["10.30.0.13"], "deleting the object leaves the zone's records"


def test_hvsim_domains_describe_other_outside_domains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOIN_PW", "Other-Join-Pw1!")
    (spec,) = parse_domains(
        "ad.contoso.test:netbios=CONTOSO,dc=192.168.1.40,join=labjoin,password_env=JOIN_PW,"
        "fs=files,fs_address=192.168.1.41,shares=quorum+other"
    )
    assert (spec.netbios, spec.dc_address, spec.join_account, spec.shares) == (
        "CONTOSO",
        "192.168.1.40",
        "labjoin",
        ("quorum", "other"),
    )
    assert "Other-Join-Pw1!" not in repr(spec), "only a digest is kept"
    for bad in (
        "not a domain",
        "a.test:dc=999.1.1.1",
        "a.test:colour=red",
        "a.test:password_env=NOPE_X",
    ):
        with pytest.raises(ValueError, match="domain"):
            parse_domains(bad)


# -- hvlab: the lab file ---------------------------------------------------------------------


def _existing(tmp_path: Path, **changes: str) -> Path:
    text = (LABS / "existing-domain.yaml").read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    out = tmp_path / "ed.yaml"
    out.write_text(text)
    return out


def test_an_existing_dc_must_be_reachable_from_the_nodes(tmp_path: Path) -> None:
    assert load_lab(LABS / "existing-domain.yaml").cluster.witness.server == "fs01.corp.example.com"
    inside = _existing(tmp_path, **{"dc_address: 192.168.1.5": "dc_address: 10.30.1.5"})
    with pytest.raises(SpecError, match=r"inside the subnet of Private switch storage1.*R-125"):
        load_lab(inside)
    no_nat = _existing(tmp_path, **{"nat: true ": "nat: false"})
    with pytest.raises(SpecError, match=r"cannot reach 192.168.1.5.*without NAT.*R-125"):
        load_lab(no_nat)


# -- hvlab: end to end on the embedded host --------------------------------------------------

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Ed-Adm1n-Xyzzy-42!",
    "HVLAB_DOMAIN_PASSWORD": "Ed-J0in-Plugh-77!",
}


@pytest.fixture
def workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The simulated domain's join account takes the password the lab is given.
    monkeypatch.setenv(
        "HVSIM_DOMAINS", "corp.example.com:netbios=EXAMPLECORP,password_env=HVLAB_DOMAIN_PASSWORD"
    )
    return workdir


def _host_with(workdir: Path, *computers: str) -> None:
    """A new embedded host whose outside domain already holds these computer objects."""
    from hvlab.session import embedded_profile
    from hvsim import persist

    world = World.create(profile=embedded_profile())
    dom = world.domains["corp.example.com"]
    for name in computers:
        dom.add_computer(name, 0.0)
    path = workdir / ".hvlab" / "sim" / "host.state"
    path.parent.mkdir(parents=True)
    persist.save(world, path)


def _world(workdir: Path) -> World:
    from hvsim import persist

    return persist.load(workdir / ".hvlab" / "sim" / "host.state")


@pytest.mark.slow
def test_an_existing_domain_lab_builds_and_leaves_only_what_was_there(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = str(LABS / "existing-domain.yaml")
    # EDHOST02 is in the domain already (a stale object someone left); OTHERPC is not
    # the lab's business at all.
    _host_with(workdir, "EDHOST02", "OTHERPC")
    report = labs.up(None, lab=lab, yes=True)
    assert report["result"] == "ok"
    roles2 = next(s for s in report["steps"] if s["step"] == "roles:edhost02")
    assert roles2["status"] == "changed"
    capsys.readouterr()
    lab_status.status(None, lab=lab, as_json=True)
    status = json.loads(capsys.readouterr().out)
    assert [n["state"] for n in status["cluster"]["nodes"]] == ["Up", "Up"]
    assert status["s2d"]["pool"]["health"] == "Healthy"
    world = _world(workdir)
    cluster = world.cluster("edcluster")
    assert cluster.witness == "\\\\fs01.corp.example.com\\witness"
    assert cluster.quorum_state(world) == "Online"
    dom = world.domains["corp.example.com"]
    assert {"edhost01", "edhost02", "edcluster", "otherpc"} <= set(dom.computers)
    record = world.host.fs.read("C:\\hvlab\\existing-domain\\.hvlab-created").splitlines()
    assert "adcomputer edhost01" in record and "adcomputer edcluster" in record
    assert "adreused edhost02" in record and "adcomputer edhost02" not in record

    capsys.readouterr()
    down = teardown.down(None, lab=lab, yes=True, as_json=True)
    said = capsys.readouterr()
    assert "computer object edhost01 in corp.example.com" in down["removed"]
    assert "computer object edcluster in corp.example.com" in down["removed"]
    assert [x["computer"] for x in down["left"]] == ["edhost02"]
    assert "there before the lab" in down["left"][0]["why"]
    assert "left computer object edhost02" in said.err + said.out
    assert down["problems"] == []
    dom = _world(workdir).domains["corp.example.com"]
    assert sorted(dom.computers) == ["corpdc01", "edhost02", "fs01", "otherpc"]
    blob = "\n".join(
        p.read_bytes().decode("latin-1") for p in (workdir / ".hvlab").rglob("*") if p.is_file()
    )
    for password in PASSWORDS.values():
        assert password not in blob


@pytest.mark.slow
def test_down_says_which_computer_objects_it_could_not_remove(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hvsim import persist

    # The shipped lab as it is, on the embedded host as it is: its domain's demo join
    # password, nothing to set.
    monkeypatch.delenv("HVSIM_DOMAINS")
    monkeypatch.delenv("HVLAB_DOMAIN_PASSWORD")
    lab = str(LABS / "existing-domain.yaml")
    assert labs.plan(None, lab=lab)["changes"] > 0
    assert labs.up(None, lab=lab, yes=True)["result"] == "ok"
    # The nodes are off: nothing of the lab can ask the domain any more.
    path = workdir / ".hvlab" / "sim" / "host.state"
    world = persist.load(path)
    for vm in world.host.hyperv.vms:
        vm.state = "Off"
        vm.guest.on_power_off(world.clock.now())
    persist.save(world, path)
    down = teardown.down(None, lab=lab, yes=True)
    assert sorted(x["computer"] for x in down["left"]) == ["edcluster", "edhost01", "edhost02"]
    assert all("no node of the lab answers" in x["why"] for x in down["left"])
    assert not any(r.startswith("computer object") for r in down["removed"])
    assert any(r == "VM edhost01" for r in down["removed"]), "the rest of the lab still goes"
    dom = _world(workdir).domains["corp.example.com"]
    assert {"edhost01", "edhost02", "edcluster"} <= set(dom.computers)
