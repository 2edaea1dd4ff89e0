"""Two labs on one host (R-145), over the wire against the embedded hvsim: the default
lab and labs/s2d-2node-beside.yaml, which keeps the same computer names inside and
puts `vm_prefix: beside-` before its VMs' names on the host. Both build, each is
healthy, lab.down of one leaves the other whole; a VM of another lab's name is
refused naming that lab; vm_prefix is checked before the host is asked."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from project import LABS
from test_strict_windows import _settings

from hvlab import access, hostlabs, teardown
from hvlab import lab as labs
from hvlab.api import Lab
from hvlab.errors import EXIT_BAD_INPUT, HostError, OwnershipError, SpecError
from hvlab.remote import Host
from hvlab.session import sim_state_path
from hvsim.model.world import World

DEFAULT = LABS / "s2d-2node.yaml"
BESIDE = LABS / "s2d-2node-beside.yaml"
NAMES = ("dc01", "hvhost01", "hvhost02")


def state(workdir: Path) -> Path:
    return sim_state_path(workdir / ".hvlab")


def world(workdir: Path) -> Any:
    from hvsim import persist

    return persist.load(state(workdir))


def host_side(w: Any, root: str, lab: str) -> dict[str, Any]:
    """What a lab has on the host: VMs (name -> computer name), files under its
    folder, switches that carry its mark, checkpoints."""
    vms = {vm.name: (vm.guest.name if vm.guest else None) for vm in w.host.hyperv.vms}
    return {
        "vms": {n: c for n, c in vms.items() if w.host.fs.exists(f"{root}\\{n}")},
        "files": sorted(p for p, _ in w.host.fs.files(root)),
        "switches": sorted(
            s.name for s in w.host.hyperv.switches if s.notes.startswith(f"hvlab:{lab}\n")
        ),
        "checkpoints": sorted(
            (vm.name, cp.name) for vm in w.host.hyperv.vms for cp in vm.checkpoints
        ),
    }


def test_two_labs_build_side_by_side_and_down_of_one_leaves_the_other(workdir: Path) -> None:
    assert labs.up(None, lab=str(DEFAULT))["result"] == "ok"
    beside = labs.up(None, lab=str(BESIDE))
    assert beside["result"] == "ok"

    w = world(workdir)
    # The same computer names inside, their own names, folders and files on the host.
    for name in NAMES:
        assert w.vm(name).guest.name.lower() == name
        assert w.vm(f"beside-{name}").guest.name.lower() == name
        assert w.vm(f"beside-{name}").path == f"C:\\hvlab\\s2d-2node-beside\\beside-{name}"
    assert w.host.fs.exists(
        "C:\\hvlab\\s2d-2node-beside\\beside-hvhost01\\beside-hvhost01-data1.vhdx"
    )
    assert w.vm("beside-dc01").guest.domain == "beside.hvlab.test"
    assert w.vm("dc01").guest.domain == "corp.hvlab.test"

    listed = {e["lab"]: e for e in hostlabs.list_labs(None, as_json=True)}
    assert sorted(v["name"] for v in listed["s2d-2node-beside"]["vms"]) == [
        f"beside-{n}" for n in NAMES
    ]
    assert sorted(v["name"] for v in listed["s2d-2node"]["vms"]) == list(NAMES)

    default, other = Lab.load(str(DEFAULT)), Lab.load(str(BESIDE))
    assert default.status().healthy and other.status().healthy
    assert set(other.status().vms) == set(NAMES)  # status speaks of the computer names

    # lab.run and lab.connect take the computer name; connect says the host's name.
    info = access.connect(None, vm="dc01", lab=str(BESIDE), as_json=True)
    assert info["vm"] == "dc01" and info["host_vm"] == "beside-dc01"
    assert '"beside-dc01"' in info["console"] and "-VMName beside-dc01" in info["powershell_direct"]
    system = access.run(
        None,
        vm="hvhost01",
        cmdlet="Get-CimInstance",
        params={"ClassName": "Win32_ComputerSystem"},
        lab=str(BESIDE),
        as_json=True,
    )
    assert system[0]["Name"].lower() == "hvhost01"
    assert system[0]["Domain"].lower() == "beside.hvlab.test"

    # A checkpoint of the default lab, then the other lab goes.
    default.checkpoint("before")
    kept = host_side(world(workdir), "C:\\hvlab\\s2d-2node", "s2d-2node")
    assert len(kept["vms"]) == 3 and len(kept["checkpoints"]) == 3

    report = teardown.down(None, lab=str(BESIDE), yes=True, as_json=True)
    assert not report["problems"], report
    after = world(workdir)
    assert host_side(after, "C:\\hvlab\\s2d-2node", "s2d-2node") == kept
    assert not any(vm.name.startswith("beside-") for vm in after.host.hyperv.vms)
    assert not after.host.fs.exists("C:\\hvlab\\s2d-2node-beside")
    assert kept["switches"] == ["s2d-2node-lab", "s2d-2node-storage1", "s2d-2node-storage2"]
    assert not [s for s in after.host.hyperv.switches if s.name.startswith("s2d-2node-beside-")]
    assert default.status().healthy
    assert [c["name"] for c in default.checkpoints()] == ["before"]


def test_a_vm_of_another_labs_name_is_refused_naming_that_lab(workdir: Path) -> None:
    assert labs.up(None, lab=str(DEFAULT))["result"] == "ok"
    # The twin without its prefix: its VMs would be the default lab's.
    twin = workdir / "twin.yaml"
    twin.write_text(BESIDE.read_text().replace("vm_prefix: beside-\n", ""))
    with pytest.raises(OwnershipError) as err:
        labs.up(None, lab=str(twin))
    message = str(err.value)
    assert "a VM named dc01 already exists" in message
    assert "belongs to lab 's2d-2node'" in message and "vm_prefix" in message
    assert "no hvlab mark" not in message
    assert not world(workdir).host.fs.exists("C:\\hvlab\\s2d-2node-beside")

    # A VM someone made by hand under a name the prefixed lab wants: no mark at all.
    from hostkit import out

    from hvsim import persist

    w = world(workdir)
    out(w, "New-VM", Name="beside-dc01", Generation=2, NoVHD=True, Path="D:\\vms")
    persist.save(w, state(workdir))
    with pytest.raises(OwnershipError, match=r"beside-dc01 already exists .*no hvlab mark"):
        labs.up(None, lab=str(BESIDE))


@pytest.mark.parametrize(
    ("prefix", "says"),
    [
        ("lab/a-", "must be 1-24 letters"),
        ("a b", "must be 1-24 letters"),
        ("-lead", "must be 1-24 letters"),
        ("x" * 25, "must be 1-24 letters"),
        ("a:", "must be 1-24 letters"),
    ],
)
def test_a_bad_vm_prefix_is_refused_before_the_host_is_asked(
    workdir: Path, prefix: str, says: str
) -> None:
    lab = workdir / "bad.yaml"
    lab.write_text(BESIDE.read_text().replace("vm_prefix: beside-", f"vm_prefix: '{prefix}'"))
    with pytest.raises(SpecError, match=says) as err:
        labs.up(None, lab=str(lab))
    assert err.value.exit_code == EXIT_BAD_INPUT
    assert not (workdir / ".hvlab" / "sim").exists(), "nothing was created"


def test_paths_past_max_path_are_refused(workdir: Path) -> None:
    root = "C:\\" + "\\".join(["deep-folder-name"] * 9)  # 155 characters
    lab = workdir / "long.yaml"
    lab.write_text(
        BESIDE.read_text()
        .replace("root: C:\\hvlab\\s2d-2node-beside", f"root: {root}")
        .replace("vm_prefix: beside-", "vm_prefix: a-rather-long-prefix-")
    )
    with pytest.raises(SpecError, match=r"Windows paths stop at 259 \(R-145\)") as err:
        labs.up(None, lab=str(lab))
    assert "vm_prefix" in str(err.value)
    ok = workdir / "short.yaml"
    ok.write_text(lab.read_text().replace("a-rather-long-prefix-", "b-"))
    assert labs.plan(None, lab=str(ok))["changes"] > 0  # the same root with a short prefix


@pytest.fixture
def wire(sim_server: Any) -> Callable[[World], contextlib.AbstractContextManager[Host]]:
    @contextlib.contextmanager
    def connect(w: World) -> Iterator[Host]:
        server = sim_server(auth="ntlm", world=w)
        with Host.connect(_settings(server)) as host:
            yield host

    return connect


def test_hvsim_refuses_a_vm_name_longer_than_100_characters(wire: Any) -> None:
    with wire(World.create()) as host:
        host.run("New-VM", Name="v" * 100, Generation=2, NoVHD=True, Path="C:\\vms")
        with pytest.raises(HostError) as err:
            host.run("New-VM", Name="v" * 101, Generation=2, NoVHD=True, Path="C:\\vms")
        assert "The parameter is incorrect" in err.value.message
        assert (err.value.error_id or "").startswith("InvalidParameter,")
        assert [v["Name"] for v in host.run("Get-VM")] == ["v" * 100]
