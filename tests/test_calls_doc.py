"""docs/calls.md is written from the trace of an end-to-end run, so it cannot drift.

The test builds the default lab against the embedded hvsim (lab.up, lab.status,
lab.down), collects every call hvlab's Host recorded in its trace (cmdlet or
guest script, and the names of its parameters, never values), renders the page
and compares it with the committed file. To regenerate the page after a change:

    HVLAB_WRITE_CALLS=1 .venv/bin/python -m pytest -q tests/test_calls_doc.py
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from project import LABS

from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab import teardown
from hvlab.remote import Host
from hvlab.spec import load_lab

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "calls.md"

HEADER = """# The calls hvlab makes

Every PowerShell call hvlab sent while building the default lab
(labs/s2d-2node.yaml) against hvsim, showing its status and removing it again:
the contract between the orchestrator and hvsim's model. Host calls go as
structured cmdlets over PSRP; calls inside a guest go through PowerShell Direct
(R-34) as `templates/host/Invoke-GuestCommand.ps1` (one cmdlet, its parameters
splatted) or `Invoke-GuestScript.ps1` (a constant script from templates/guest),
and are listed by the cmdlet or script they run. Reads that do not depend on each
other go to the host as the statements of one pipeline, one round trip, separated
by `Write-Output -InputObject` of a fresh GUID (hvlab.remote.Host.batch); each
statement is listed on its own, piped commands joined by `|`. Parameter names
only: hvlab's trace never holds values. `-ErrorAction` marks an existence check
that runs with SilentlyContinue (R-21). Calls on a lab of another shape or on a
re-run (such as disk cleaning, R-60) are not in this run.

This page is generated; do not edit it by hand. tests/test_calls_doc.py writes it
from the trace of the run and fails when it differs. Regenerate it with

    HVLAB_WRITE_CALLS=1 .venv/bin/python -m pytest -q tests/test_calls_doc.py
"""


def _line(call: str, params: Iterable[str]) -> str:
    flags = " ".join(f"-{p}" for p in params)
    return f"- `{call}{' ' + flags if flags else ''}`"


def _entry_lines(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, line) of each call of one trace entry; where is "host" or a VM name."""
    label = str(entry["cmdlet"])
    if label == "connect":
        return []
    if "statements" in entry:
        # A batch: its statements, and the separator between them.
        lines = [("host", _line(s["cmdlet"], sorted(s["params"]))) for s in entry["statements"]]
        return [*lines, ("host", _line("Write-Output", ["InputObject"]))]
    names = list(entry["params"])
    if " @" in label:
        call, vm = label.split(" @", 1)
        inner = sorted(n.split(".", 1)[1] for n in names if n.startswith("Parameters."))
        return [(vm, _line(call, inner))]
    return [("host", _line(label, sorted(names)))]


def render(phases: list[tuple[str, list[dict[str, Any]]]], spec: Any) -> str:
    roles = {vm.name.lower(): vm.role for vm in spec.vms}
    titles = {"host": "on the host (L0)", "dc": "in the domain controller", "node": "in the nodes"}
    out = [HEADER]
    for phase, entries in phases:
        groups: dict[str, set[str]] = {}
        for entry in entries:
            for where, line in _entry_lines(entry):
                kind = "host" if where == "host" else roles.get(where.lower(), "node")
                groups.setdefault(kind, set()).add(line)
        for kind in ("host", "dc", "node"):
            if kind in groups:
                out.append(f"## {phase}: {titles[kind]}\n")
                out.extend(sorted(groups[kind]))
                out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def test_calls_page_is_the_trace_of_the_end_to_end_run(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    traces: list[list[dict[str, Any]]] = []
    close = Host.close

    def keep_trace(self: Host) -> None:
        # Each task opens one Host; its trace is complete when the task closes it.
        traces.append(list(self.trace))
        close(self)

    monkeypatch.setattr(Host, "close", keep_trace)
    phases: list[tuple[str, list[dict[str, Any]]]] = []
    for phase, run in (
        ("lab.up", lambda: labs.up(None)),
        ("lab.status", lambda: lab_status.status(None)),
        ("lab.down", lambda: teardown.down(None, yes=True)),
    ):
        before = len(traces)
        run()
        phases.append((phase, [e for t in traces[before:] for e in t]))
    capsys.readouterr()
    assert all(entries for _, entries in phases), "every task made calls"
    page = render(phases, load_lab(LABS / "s2d-2node.yaml"))
    if os.environ.get("HVLAB_WRITE_CALLS") == "1":
        PAGE.write_text(page, encoding="utf-8")
    committed = PAGE.read_text(encoding="utf-8")
    assert committed == page, (
        "docs/calls.md differs from the calls the end-to-end run made; regenerate it with "
        "HVLAB_WRITE_CALLS=1 .venv/bin/python -m pytest -q tests/test_calls_doc.py"
    )


def test_the_page_names_what_the_review_found_missing_or_wrong() -> None:
    """The calls the hand-written page got wrong are as the run makes them now."""
    page = PAGE.read_text(encoding="utf-8")
    assert "Restart-VM" not in page  # clean restarts inside the guest
    assert "`Restart-Computer -Force`" in page
    assert "`Set-DnsClient -InterfaceAlias -RegisterThisConnectionsAddress`" in page
    assert "Set-S2DInVMSettings.ps1 -AutoReplace -BlockCacheSize" in page
    assert "`Get-ClusterNode -Cluster`" in page
