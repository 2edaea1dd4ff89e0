"""lab.up adopts nothing that is not the lab's, and lab.down removes only what the lab
created (recorded as it created it), leaving the rest and saying so.

Each case puts the embedded simulated host into a state a person could have made
(hvsim models the folders a Windows Server has: C:\\Windows, C:\\Recovery, C:\\Users...),
then runs hvlab against it over the wire, the way the issue reproduced the loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from project import LABS

from hvlab import lab as labs
from hvlab import teardown
from hvlab.errors import EXIT_BAD_INPUT, HvlabError, SpecError
from hvlab.session import sim_state_path

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DSRM_PASSWORD": "Dsrm-Plugh-4417!",
}


def lab_file(workdir: Path, name: str, root: str, nat: bool = False) -> str:
    text = (LABS / "s2d-2node.yaml").read_text()
    text = text.replace("name: s2d-2node", f"name: {name}")
    text = text.replace("root: C:\\hvlab\\s2d-2node", f"root: {root}")
    if nat:
        text = text.replace("    nat: false", "    nat: true", 1)
    path = workdir / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def state(workdir: Path) -> Path:
    return sim_state_path(workdir / ".hvlab")


def world_of(workdir: Path) -> Any:
    from hvsim import persist
    from hvsim.model.world import World

    path = state(workdir)
    return persist.load(path) if path.exists() else World.create()


def on_host(workdir: Path, *commands: tuple[str, dict[str, Any]]) -> None:
    """Run cmdlets on the embedded host as a person at its console would."""
    from hostkit import out

    from hvsim import persist

    world = world_of(workdir)
    for name, params in commands:
        out(world, name, **params)
    persist.save(world, state(workdir))


def exists(workdir: Path, path: str) -> bool:
    return world_of(workdir).host.fs.exists(path)


def test_a_folder_holding_someone_elses_files_is_not_adopted(workdir: Path) -> None:
    on_host(
        workdir,
        ("New-Item", {"ItemType": "Directory", "Path": "C:\\data\\lab\\userdata"}),
        ("Set-Content", {"Path": "C:\\data\\lab\\userdata\\important.txt", "Value": "mine"}),
    )
    before = world_of(workdir).snapshot()
    lab = lab_file(workdir, "adopt", "C:\\data\\lab")
    with pytest.raises(HvlabError) as info:
        labs.up(None, lab=lab)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert "C:\\data\\lab" in str(info.value) and "did not create" in str(info.value)
    assert world_of(workdir).snapshot() == before, "nothing was created"
    teardown.down(None, lab=lab, yes=True)
    assert exists(workdir, "C:\\data\\lab\\userdata\\important.txt")


@pytest.mark.parametrize(
    "root",
    [
        "C:\\Recovery",
        "C:\\Windows\\Temp\\lab",
        "C:\\PerfLogs\\lab",
        "C:\\System Volume Information",
        "C:\\Documents and Settings\\lab",
        "C:\\Program Files (x86)\\lab",
        "C:\\ProgramData\\lab",
        "C:\\Users",
        "C:\\Users\\Administrator",
        "D:\\",
    ],
)
def test_system_folders_and_drive_roots_are_bad_input(workdir: Path, root: str) -> None:
    from hvlab.spec import load_lab

    with pytest.raises(SpecError) as info:
        load_lab(lab_file(workdir, "sys", root))
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert "host.root" in str(info.value)


def test_the_recovery_folder_survives_a_lab_pointed_at_it(workdir: Path) -> None:
    lab = lab_file(workdir, "recovery", "C:\\Recovery")
    with pytest.raises(SpecError):
        labs.up(None, lab=lab)
    with pytest.raises(SpecError):
        teardown.down(None, lab=lab, yes=True)
    assert exists(workdir, "C:\\Recovery\\WindowsRE\\Winre.wim")


def test_a_root_inside_another_labs_root_is_refused(workdir: Path) -> None:
    labs.up(None)
    inner = lab_file(workdir, "inner", "C:\\hvlab\\s2d-2node\\inner")
    before = world_of(workdir).snapshot()
    with pytest.raises(HvlabError) as info:
        labs.up(None, lab=inner)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert "lab 's2d-2node'" in str(info.value)
    assert world_of(workdir).snapshot() == before


def test_down_of_an_adopted_outer_folder_keeps_an_inner_labs_disks(workdir: Path) -> None:
    inner = lab_file(workdir, "inner", "C:\\labs\\outer\\inner")
    labs.up(None, lab=inner)
    # An older hvlab adopted the outer folder for lab "outer" (its mark, no record).
    on_host(
        workdir,
        *[
            ("Stop-VM", {"Name": n, "TurnOff": True, "Force": True})
            for n in ("dc01", "hvhost01", "hvhost02")
        ],
        ("Set-Content", {"Path": "C:\\labs\\outer\\.hvlab-lab", "Value": "outer"}),
    )
    outer = lab_file(workdir, "outer", "C:\\labs\\outer")
    teardown.down(None, lab=outer, yes=True)
    for disk in ("dc01\\dc01-os.vhdx", "hvhost01\\hvhost01-data1.vhdx"):
        assert exists(workdir, f"C:\\labs\\outer\\inner\\{disk}"), disk
    assert [vm.name for vm in world_of(workdir).all_vms() if vm.notes.startswith("hvlab:inner")]


def test_down_leaves_what_the_lab_did_not_create_and_says_so(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labs.up(None)
    on_host(
        workdir,
        ("Set-Content", {"Path": "C:\\hvlab\\s2d-2node\\notes.txt", "Value": "mine"}),
        ("Set-Content", {"Path": "C:\\hvlab\\s2d-2node\\dc01\\keep.txt", "Value": "mine too"}),
    )
    capsys.readouterr()
    payload = teardown.down(None, yes=True)
    out = capsys.readouterr().out
    assert exists(workdir, "C:\\hvlab\\s2d-2node\\notes.txt")
    assert exists(workdir, "C:\\hvlab\\s2d-2node\\dc01\\keep.txt")
    assert not exists(workdir, "C:\\hvlab\\s2d-2node\\dc01\\dc01-os.vhdx")
    assert not exists(workdir, "C:\\hvlab\\s2d-2node\\hvhost01")
    assert not exists(workdir, "C:\\hvlab\\s2d-2node\\.hvlab-lab")
    assert list(world_of(workdir).all_vms()) == []
    left = {item["path"] for item in payload["left"]}
    assert left == {"C:\\hvlab\\s2d-2node\\dc01", "C:\\hvlab\\s2d-2node"}
    assert "left C:\\hvlab\\s2d-2node\\dc01" in out and "keep.txt" in out


def test_parent_folders_the_lab_created_go_with_it(workdir: Path) -> None:
    from hvsim.model.world import World

    on_host(
        workdir,
        ("New-Item", {"ItemType": "Directory", "Path": "C:\\labs"}),
        ("Set-Content", {"Path": "C:\\labs\\readme.txt", "Value": "before"}),
    )
    lab = lab_file(workdir, "nested", "C:\\labs\\team\\a\\nested")
    labs.up(None, lab=lab)
    teardown.down(None, lab=lab, yes=True)
    assert exists(workdir, "C:\\labs\\readme.txt"), "a folder that was there stays"
    assert not exists(workdir, "C:\\labs\\team"), "parents the lab created go"
    fresh = World.create()
    fresh_snapshot = fresh.snapshot()
    now = world_of(workdir).snapshot()
    now["host"]["files"] = [f for f in now["host"]["files"] if f[0] != "c:\\labs\\readme.txt"]
    now["host"]["dirs"] = [d for d in now["host"]["dirs"] if d != "c:\\labs"]
    assert now == fresh_snapshot


def test_foreign_switch_nat_and_vm_survive_down(workdir: Path) -> None:
    labs.up(None)
    on_host(
        workdir,
        # Hyper-V allows two switches of one name: this one is not the lab's.
        ("New-VMSwitch", {"Name": "s2d-2node-lab", "SwitchType": "Private"}),
        (
            "New-NetNat",
            {"Name": "s2d-2node-nat", "InternalIPInterfaceAddressPrefix": "192.168.77.0/24"},
        ),
        ("New-VM", {"Name": "scratch", "Path": "C:\\hvlab\\s2d-2node", "NoVHD": True}),
    )
    teardown.down(None, yes=True)
    world = world_of(workdir)
    assert [(s.name, s.notes) for s in world.host.hyperv.switches] == [("s2d-2node-lab", "")]
    assert [n.name for n in world.host.net.nats] == ["s2d-2node-nat"]
    assert [vm.name for vm in world.host.hyperv.vms] == ["scratch"]


def test_a_nat_the_lab_created_is_removed(workdir: Path) -> None:
    lab = lab_file(workdir, "natlab", "C:\\hvlab\\natlab", nat=True)
    labs.up(None, lab=lab)
    assert [n.name for n in world_of(workdir).host.net.nats] == ["natlab-nat"]
    teardown.down(None, lab=lab, yes=True)
    assert world_of(workdir).host.net.nats == []
