"""lab.down: remove what carries the lab's mark, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hvlab.errors import HostError, StepError
from hvlab.lab import confirm, on_host, say
from hvlab.steps.common import SILENT, has_mark, lab_folder_is_ours, owns_vm, text, val


def down(
    config: Any = None,
    *,
    lab: str | None = None,
    yes: bool = False,
    as_json: bool = False,
    state_base: Path | None = None,
) -> dict[str, Any]:
    """Remove what carries this lab's mark; leave everything else as it is."""
    removed: list[str] = []
    problems: list[str] = []
    with on_host("down", config, lab, as_json, state_base) as (spec, session, out):
        host = session.host
        targets = find_marked(spec, host)
        if not any(targets.values()):
            say(out, "nothing of this lab is on the host")
        else:
            for kind, names in targets.items():
                for name in names:
                    shown = f"{name[1]} ({name[0]})" if isinstance(name, tuple) else name
                    say(out, f"  will remove {kind} {shown}")
            if not yes:
                confirm(
                    f"Remove {sum(len(v) for v in targets.values())} resources of lab {spec.name}?"
                )

        def attempt(what: str, fn: Any) -> None:
            # Keep going when parts are already gone: down must always finish.
            try:
                fn()
                removed.append(what)
                say(out, f"  removed {what}")
            except HostError as err:
                problems.append(f"{what}: {err}")
                say(out, f"  could not remove {what}: {err.message}")

        for vm_id, name in targets["vm"]:
            # By Id through the pipeline: another VM may share the name and is not ours.
            attempt(
                f"VM {name}",
                lambda i=vm_id: (
                    host.pipeline(
                        [("Get-VM", {"Id": i}), ("Stop-VM", {"TurnOff": True, "Force": True})]
                    ),
                    host.pipeline([("Get-VM", {"Id": i}), ("Remove-VM", {"Force": True})]),
                ),
            )
        for folder in targets["folder"]:
            attempt(
                f"folder {folder}",
                lambda f=folder: host.run("Remove-Item", Path=f, Recurse=True, Force=True),
            )
        for nat in targets["nat"]:
            attempt(f"NAT {nat}", lambda n=nat: host.run("Remove-NetNat", Name=n, Confirm=False))
        for switch in targets["switch"]:
            attempt(
                f"switch {switch}", lambda s=switch: host.run("Remove-VMSwitch", Name=s, Force=True)
            )
    payload = {"lab": spec.name, "removed": removed, "problems": problems}
    if as_json:
        print(json.dumps(payload, indent=2))
    if problems:
        raise StepError("down", "; ".join(problems))
    say(out, f"removed {len(removed)} resources of lab {spec.name}")
    return payload


def find_marked(spec: Any, host: Any) -> dict[str, list[Any]]:
    """Everything on the host that carries this lab's mark."""
    targets: dict[str, list[Any]] = {"vm": [], "folder": [], "nat": [], "switch": []}
    root = spec.root
    folder_is_ours = lab_folder_is_ours(host, spec)
    for vm in host.run("Get-VM"):
        # A VM without Notes counts only when the folder it lives in is ours.
        if owns_vm(vm, spec, folder_is_ours):
            targets["vm"].append((text(val(vm, "Id")), text(val(vm, "Name"))))
    if folder_is_ours:
        targets["folder"].append(root)
    for nat in host.run("Get-NetNat", **SILENT):
        if text(val(nat, "Name")) == f"{spec.name}-nat":
            targets["nat"].append(text(val(nat, "Name")))
    for sw in host.run("Get-VMSwitch"):
        if has_mark(val(sw, "Notes"), spec.name):
            targets["switch"].append(text(val(sw, "Name")))
    return targets
