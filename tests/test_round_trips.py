"""How many host calls (round trips) lab.up, lab.plan and lab.status make on a complete
lab, pinned so they cannot creep back: each read goes with the others of its step
(hvlab.facts), and a no-op re-run reads the host side once (issue 17's targets: at
most 25 for the default lab's no-op re-run, at most 10 for lab.status)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from project import LABS
from test_lab_e2e import mutating

from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab.remote import Host

NOOP_CALLS = 25
STATUS_CALLS = 10


@pytest.fixture
def traces(monkeypatch: pytest.MonkeyPatch) -> list[list[dict[str, Any]]]:
    """The trace of every Host a task opens, taken when the task closes it."""
    kept: list[list[dict[str, Any]]] = []
    close = Host.close

    def keep(self: Host) -> None:
        kept.append(list(self.trace))
        close(self)

    monkeypatch.setattr(Host, "close", keep)
    return kept


def _calls(entries: list[dict[str, Any]]) -> list[str]:
    return [e["cmdlet"] for e in entries]


def test_a_complete_default_lab_costs_few_round_trips(
    workdir: Path, traces: list[list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    built = labs.up(None, as_json=True)
    assert built["result"] == "ok"

    again = labs.up(None, as_json=True)
    noop = traces[-1]
    assert again["changed"] == 0
    assert len(noop) <= NOOP_CALLS, _calls(noop)
    # The lab's lock is its only write: read and taken before the steps,
    # checked and removed after the report is written (so the report counts two less).
    lock = [e for e in noop if e["cmdlet"] in ("Get-Content", "New-Item", "Remove-Item")]
    assert _calls(lock) == ["Get-Content", "New-Item", "Get-Content", "Remove-Item"]
    assert again["round_trips"] == len(noop) - 2
    assert mutating(noop) == ["New-Item", "Remove-Item"]
    # No call is refused on the way: the DC is asked as the account that logged on to
    # it last time (the lab state's hint, R-38), not first as the local one it refuses.
    assert [e for e in noop if e["outcome"] != "ok"] == []
    (state_file,) = (workdir / ".hvlab").glob("*/s2d-2node/state.json")
    state = json.loads(state_file.read_text())
    assert state["facts"]["logons"]["domain"] == ["dc01", "hvhost01", "hvhost02"]
    # The host's side is read once, in one batch, by preflight (the images' editions
    # included); the steps after it use that reading while nothing changes.
    host_calls = [
        e for e in noop if " @" not in e["cmdlet"] and e["cmdlet"] != "connect" and e not in lock
    ]
    assert len(host_calls) == 1, _calls(host_calls)
    assert "Get-WindowsImage" in host_calls[0]["cmdlet"]
    assert len(host_calls[0]["statements"]) > 15
    # Every guest read of a step is one PowerShell Direct call into each VM it reads.
    per_vm: dict[str, int] = {}
    for entry in noop:
        if " @" in entry["cmdlet"]:
            vm = entry["cmdlet"].split(" @", 1)[1]
            per_vm[vm] = per_vm.get(vm, 0) + 1
    assert per_vm["hvhost02"] <= 3, per_vm  # boot, roles, the CSV and VM paths

    plan = labs.plan(None, as_json=True)
    assert plan["changes"] == 0
    assert len(traces[-1]) <= NOOP_CALLS, _calls(traces[-1])

    capsys.readouterr()
    status = lab_status.status(None, as_json=True)
    assert len(traces[-1]) <= STATUS_CALLS, _calls(traces[-1])
    # Same answer as before the reads were batched: the whole lab, as the host sees it.
    assert [vm["state"] for vm in status["vms"]] == ["Running"] * 3
    assert [n["state"] for n in status["cluster"]["nodes"]] == ["Up", "Up"]
    assert status["s2d"]["pool"]["disks"] == 8 and status["s2d"]["auto_replace"] == "False"
    assert status["ha_vms"][0]["state"] == "Online"
    printed = json.loads(capsys.readouterr().out)
    assert printed["cluster"]["witness"]


def test_status_of_a_lab_that_is_not_there_is_one_batch(
    workdir: Path, traces: list[list[dict[str, Any]]]
) -> None:
    status = lab_status.status(None)
    assert [vm["state"] for vm in status["vms"]] == ["Missing"] * 3
    calls = _calls(traces[-1])
    # connect, the host batch, and one try for the cluster facts in the first node
    # (which has no VM to reach).
    assert len(calls) <= 3, calls
    assert status["cluster"] == {"error": status["cluster"]["error"]}


def test_a_complete_four_node_lab_costs_few_round_trips(
    workdir: Path, traces: list[list[dict[str, Any]]]
) -> None:
    lab_file = str(LABS / "s2d-4node.yaml")
    assert labs.up(None, lab=lab_file, as_json=True)["result"] == "ok"
    again = labs.up(None, lab=lab_file, as_json=True)
    assert again["changed"] == 0
    # Two nodes more than the default lab: a few calls per node more, not per property.
    assert again["round_trips"] <= NOOP_CALLS + 10, _calls(traces[-1])
    status = lab_status.status(None, lab=lab_file)
    assert len(traces[-1]) <= STATUS_CALLS
    assert [n["state"] for n in status["cluster"]["nodes"]] == ["Up"] * 4
