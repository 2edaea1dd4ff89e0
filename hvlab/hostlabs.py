"""`lab.list`: every lab on a host, found by its mark.

A lab leaves three kinds of mark: `hvlab:<lab>` as the first line of its VMs' and
switches' Notes, and the `.hvlab-lab` file in its folder. The folders are found
where the marked VMs live (a VM's folder is `<root>\\<vm>`) and among the folders of
the default place for lab roots (C:\\hvlab). Read only; it needs no lab file.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from hvlab.lab import say
from hvlab.locking import LOCK_NAME, Holder
from hvlab.steps.common import SILENT, mark_owner, other_lab, text, val

DEFAULT_PARENT = "C:\\hvlab"


def _parent(path: str) -> str:
    return path.rstrip("\\").rsplit("\\", 1)[0] if "\\" in path.rstrip("\\") else ""


def find_labs(host: Any) -> list[dict[str, Any]]:
    """Every lab with a mark on the host: its VMs and their states, switches, folder,
    and who holds its lock."""
    vms = host.run("Get-VM")
    switches = host.run("Get-VMSwitch")
    labs: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return labs.setdefault(
            name, {"lab": name, "vms": [], "switches": [], "folder": None, "lock": None}
        )

    candidates: set[str] = set()
    for vm in vms:
        owner = other_lab(val(vm, "Notes"))
        path = text(val(vm, "Path"))
        if path:
            candidates.add(_parent(path))
        if owner:
            entry(owner)["vms"].append(
                {"name": text(val(vm, "Name")), "state": text(val(vm, "State"))}
            )
    for sw in switches:
        owner = other_lab(val(sw, "Notes"))
        if owner:
            entry(owner)["switches"].append(text(val(sw, "Name")))
    for child in host.run("Get-ChildItem", Path=DEFAULT_PARENT, Directory=True, **SILENT):
        candidates.add(text(val(child, "FullName")))
    folders = sorted(c for c in candidates if c)
    marks = host.map([("Get-Content", {"Path": f"{f}\\.hvlab-lab", **SILENT}) for f in folders])
    for folder, lines in zip(folders, marks, strict=True):
        owner = mark_owner(lines)
        if owner:
            entry(owner)["folder"] = folder
    marked = [e for e in labs.values() if e["folder"]]
    locks = host.map(
        [
            ("Get-Content", {"Path": f"{e['folder']}\\{LOCK_NAME}", "Raw": True, **SILENT})
            for e in marked
        ]
    )
    for e, found in zip(marked, locks, strict=True):
        if found:
            holder = Holder.parse(found[0])
            e["lock"] = holder.describe() if holder is not None else "a lock file without a record"
    for e in labs.values():
        e["vms"].sort(key=lambda v: v["name"].lower())
        e["switches"].sort()
        e["vm_count"] = len(e["vms"])
        e["states"] = dict(sorted(Counter(v["state"] for v in e["vms"]).items()))
    return [labs[k] for k in sorted(labs)]


def list_labs(config: Any = None, *, as_json: bool = False) -> list[dict[str, Any]]:
    from hvlab.session import open_session

    out = sys.stderr if as_json else sys.stdout
    with open_session(
        config,
        writes=False,
        verb="list",
        notice=lambda line: say(sys.stderr, line),
    ) as session:
        say(out, f"hvlab lab.list on {session.description}")
        found = find_labs(session.host)
    if as_json:
        print(json.dumps(found, indent=2))
        return found
    if not found:
        say(out, "no lab carries its mark on this host")
        return found
    for e in found:
        states = ", ".join(f"{n} {s}" for s, n in e["states"].items()) or "no VMs"
        say(
            out,
            f"  {e['lab']:<20} {e['vm_count']} VM(s): {states}; {len(e['switches'])} switch(es); "
            f"folder {e['folder'] or '(none found)'}",
        )
        if e["lock"]:
            say(out, f"  {'':<20} in use: {e['lock']}")
    return found
