"""A run that stopped half-way converges on the next one, with the host as the truth;
faults belong to the process that asked for them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab.errors import EXIT_BAD_INPUT, HvlabError
from hvlab.session import sim_state_path

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Adm1n-Xyzzy-7731!",
    "HVLAB_DSRM_PASSWORD": "Dsrm-Plugh-4417!",
}


@pytest.fixture
def workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Waits as short as a test allows: some of these builds are meant to fail.
    monkeypatch.setenv("HVLAB_MIN_WAIT", "2")
    return workdir


def test_the_dc_role_is_read_from_the_host_not_from_local_state(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hvsim import persist

    # Promoted, then the restart fails every time: the run stops between the two.
    monkeypatch.setenv("HVSIM_FAULTS", "transient:cmdlet=Restart-Computer,rate=1")
    with pytest.raises(HvlabError):
        labs.up(None)
    monkeypatch.delenv("HVSIM_FAULTS")
    # The host lost the promotion (restored from before it); whatever the controller
    # remembers, the next run must promote again, not wait for an AD that never comes.
    path = sim_state_path(workdir / ".hvlab")
    world = persist.load(path)
    dc = world.guest("dc01")
    assert dc.pending_promotion is not None
    dc.pending_promotion = None
    dc.feature_reboot_pending = False
    dc.registry.pop("HKLM:\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters", None)
    persist.save(world, path)
    report = labs.up(None, as_json=True)
    assert report["result"] == "ok"
    promote = next(s for s in report["steps"] if s["step"] == "promote:dc01")
    assert any(c.startswith("Install-ADDSForest") for c in promote["changes"])


def test_a_promotion_waiting_for_its_restart_is_not_repeated(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HVSIM_FAULTS", "transient:cmdlet=Restart-Computer,rate=1")
    with pytest.raises(HvlabError):
        labs.up(None)
    monkeypatch.delenv("HVSIM_FAULTS")
    (workdir / ".hvlab" / "sim" / "s2d-2node" / "state.json").unlink()  # the controller forgot
    report = labs.up(None, as_json=True)
    promote = next(s for s in report["steps"] if s["step"] == "promote:dc01")
    assert not any(c.startswith("Install-ADDSForest") for c in promote["changes"])
    assert any(c.startswith("Restart-Computer in dc01") for c in promote["changes"])
    assert report["result"] == "ok"


def test_faults_end_with_the_process_that_asked_for_them(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HVSIM_FAULTS", "boot_hang:vm=hvhost02;disk_full:after_bytes=999999999999")
    with pytest.raises(HvlabError):
        labs.up(None)
    first_line = capsys.readouterr().out.splitlines()[0]
    assert "faults injected by HVSIM_FAULTS: boot_hang:vm=hvhost02" in first_line
    monkeypatch.setenv("HVSIM_FAULTS", "")
    report = labs.up(None, as_json=True)
    assert report["result"] == "ok", "the hang stayed with the run that asked for it"
    text = sim_state_path(workdir / ".hvlab").read_text()
    assert "boot_hang" not in text and "write_budget" not in text


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("boot_hang", "boot_hang needs vm="),
        ("boot_hang:vm=hvhost09", "vm=hvhost09 in 'boot_hang:vm=hvhost09' is not a VM of this lab"),
        ("boot_hang:vm=hvhost02,phase=Lunch", "phase=Lunch"),
        ("transient:cmdlet=New-VHD,nth=two", "nth must be a whole number"),
        ("explode:now=1", "unknown kind 'explode'"),
    ],
)
def test_a_malformed_fault_spec_is_bad_input(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, spec: str, says: str
) -> None:
    monkeypatch.setenv("HVSIM_FAULTS", spec)
    with pytest.raises(HvlabError) as info:
        lab_status.status(None, as_json=True)
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert says in str(info.value)


def test_a_state_file_with_faults_of_an_older_run_says_so_first(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hvsim import persist
    from hvsim.model.world import World

    path = sim_state_path(workdir / ".hvlab")
    persist.save(World.create(), path)
    doc = json.loads(path.read_text())
    for name, fields in doc["objects"]:
        if name == "hvsim.model.fs.Volume":
            fields["write_budget"] = 10  # what an older hvsim kept of disk_full
    path.write_text(json.dumps(doc))
    lab_status.status(None)
    first_line = capsys.readouterr().out.splitlines()[0]
    assert "the state file carried injected faults of an earlier run" in first_line


def test_a_transient_error_is_retried_by_its_step_and_said(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The second New-VHD fails once with "The RPC server is unavailable".
    monkeypatch.setenv("HVSIM_FAULTS", "transient:cmdlet=New-VHD,nth=2")
    report = labs.up(None, as_json=True)
    assert report["result"] == "ok"
    assert "transient error, running the step again" in capsys.readouterr().err


def test_the_run_fails_only_when_the_retries_are_spent(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HVSIM_FAULTS", "transient:cmdlet=New-VMSwitch,rate=1")
    with pytest.raises(HvlabError, match=r"still failing after 3 retries"):
        labs.up(None)
