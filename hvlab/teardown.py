"""lab.down: remove what the lab provably created, and nothing else.

What counts as the lab's: VMs and switches that carry its mark in their Notes (removed
by Id: names need not be unique, R-20, R-71); a VM without Notes only when its name is
one of the lab's and its configuration lives in that VM's folder of the marked lab
folder (a run stopped between New-VM and Set-VM); and the files, folders and NAT the
record next to the mark lists (hvlab.steps.common.record_created), which the host
keeps, so the host is the truth. Folders go only when empty: anything the lab did not
create stays where it is, and down says what it left and why.

In an existing domain the record also lists the computer objects the lab created there
(its nodes' and its cluster's, R-125): they are removed first, from inside a node that
answers, as the join account; objects that were there before the lab were never
recorded and stay. Without a node to ask, they are left and down says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hvlab.errors import HostError, StepError
from hvlab.lab import Target, confirm, on_host, say
from hvlab.paths import home, host_id, state_dir
from hvlab.state import LabState
from hvlab.steps.common import (
    SILENT,
    has_mark,
    lab_folder_is_ours,
    owns_vm,
    parse_record,
    same_path,
    text,
    val,
)


def down(
    config: Any = None,
    *,
    lab: str | None = None,
    yes: bool = False,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    """Remove what this lab created; leave everything else as it is."""
    removed: list[str] = []
    problems: list[str] = []
    left: list[dict[str, Any]] = []
    with on_host("down", config, lab, as_json, state_base, target=target) as (
        spec,
        session,
        out,
    ):
        from hvlab.locking import LabLock

        lock = LabLock(session.host, spec, "lab.down", simulated=session.simulated, out=out)
        # Refused at once while another run changes the lab; a lab whose folder
        # is gone has no lock to take.
        lock.acquire_if_marked()
        with lock.holding():
            _remove(config, spec, session, out, state_base, yes, lock, removed, problems, left)
    payload = {"lab": spec.name, "removed": removed, "left": left, "problems": problems}
    if as_json and target is None:
        print(json.dumps(payload, indent=2))
    if problems:
        error = StepError("down", "; ".join(problems))
        error.report = payload  # type: ignore[attr-defined]
        raise error
    say(out, f"removed {len(removed)} resources of lab {spec.name}")
    return payload


def _remove(
    config: Any,
    spec: Any,
    session: Any,
    out: Any,
    state_base: Path | None,
    yes: bool,
    lock: Any,
    removed: list[str],
    problems: list[str],
    left: list[dict[str, Any]],
) -> None:
    host = session.host
    local = LabState(state_dir(spec.name, state_base or home(config), host_id(config)))
    hint = local.get_fact("host", "creating_folders")
    plan = find_owned(spec, host, hint or [])
    if plan.note:
        say(out, plan.note)
    if plan.empty:
        say(out, f"nothing of lab {spec.name} is on the host")
    else:
        for line in plan.listing():
            say(out, f"  will remove {line}")
        if not yes:
            confirm(f"Remove {plan.count} resources of lab {spec.name}?")

    def attempt(what: str, fn: Any) -> bool:
        # Keep going when parts are already gone: down must always finish.
        try:
            fn()
        except HostError as err:
            problems.append(f"{what}: {err}")
            say(out, f"  could not remove {what}: {err.message}")
            return False
        removed.append(what)
        say(out, f"  removed {what}")
        return True

    reused = [n for n in plan.ad_reused if n.lower() not in map(str.lower, plan.ad_computers)]
    for name in reused:
        why = "it was there before the lab, which only used it"
        left.append({"computer": name, "domain": plan.domain, "why": why})
        say(out, f"  left computer object {name} in {plan.domain}: {why} (R-125)")
    if plan.ad_computers:
        # Before the VMs: the removal runs inside a node of the lab.
        _remove_computer_objects(spec, session, plan.ad_computers, removed, left, out)
    for vm_id, name, label in plan.checkpoints:
        # The lab's checkpoints before its VMs: removing one merges its .avhdx back into
        # the disk the lab created; Remove-VM would leave the .avhdx files behind.
        attempt(
            f"checkpoint {label} of {name}",
            lambda i=vm_id, n=label: host.pipeline(
                [("Get-VM", {"Id": i}), ("Remove-VMSnapshot", {"Name": n})]
            ),
        )
    for vm_id, name in plan.vms:
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
    for nat in plan.nats:
        attempt(f"NAT {nat}", lambda n=nat: host.run("Remove-NetNat", Name=n, Confirm=False))
    for sw_id, name in plan.switches:
        attempt(
            f"switch {name}",
            lambda i=sw_id: host.pipeline(
                [("Get-VMSwitch", {"Id": i}), ("Remove-VMSwitch", {"Force": True})]
            ),
        )
    for path in plan.files:
        attempt(f"file {path}", lambda p=path: host.run("Remove-Item", Path=p, Force=True))

    def remove_folder(path: str) -> bool:
        children = host.run("Get-ChildItem", Path=path, Force=True, **SILENT)
        if children:
            names = sorted(text(val(c, "Name")) for c in children)
            left.append({"path": path, "holds": names})
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            say(out, f"  left {path}: it holds what lab {spec.name} did not create: {shown}")
            return False
        return attempt(f"folder {path}", lambda: host.run("Remove-Item", Path=path))

    for path in plan.folders_in_root:
        remove_folder(path)
    if plan.root_is_ours:
        if problems:
            # Keep the mark and the record: a later lab.down can finish the job.
            say(out, f"  kept the mark of {spec.root}: some of the lab's resources remain")
        else:
            for path in (spec.record_path, spec.marker_path):
                attempt(
                    f"file {path}",
                    lambda p=path: host.run("Remove-Item", Path=p, Force=True, **SILENT),
                )
            # The lock goes with the mark it sits next to, before the folder.
            lock.release()
            if plan.root_created:
                remove_folder(spec.root)
            else:
                say(out, f"  kept {spec.root}: it was there before the lab")
    for path in plan.parents:
        if not left and not problems:
            remove_folder(path)
    if not problems and hint:
        local.set_fact("host", "creating_folders", None)


class Owned:
    """What lab.down will remove, in removal order."""

    def __init__(self) -> None:
        self.checkpoints: list[tuple[str, str, str]] = []  # VM id, VM name, checkpoint
        self.vms: list[tuple[str, str]] = []
        self.switches: list[tuple[str, str]] = []
        self.nats: list[str] = []
        # Computer objects the lab created in an existing domain, and those it found
        # there and only used.
        self.ad_computers: list[str] = []
        self.ad_reused: list[str] = []
        self.domain = ""
        self.files: list[str] = []
        self.folders_in_root: list[str] = []  # deepest first
        self.parents: list[str] = []  # folders above the root the lab made, deepest first
        self.root_is_ours = False
        self.root_created = False
        self.note = ""

    @property
    def count(self) -> int:
        return (
            len(self.checkpoints)
            + len(self.vms)
            + len(self.ad_computers)
            + len(self.switches)
            + len(self.nats)
            + len(self.files)
            + len(self.folders_in_root)
            + int(self.root_is_ours)
        )

    @property
    def empty(self) -> bool:
        return self.count == 0

    def listing(self) -> list[str]:
        lines = [f"computer object {n} in {self.domain}" for n in self.ad_computers]
        lines += [f"checkpoint {label} of VM {name}" for _, name, label in self.checkpoints]
        lines += [f"VM {name} ({i})" for i, name in self.vms]
        lines += [f"switch {name} ({i})" for i, name in self.switches]
        lines += [f"NAT {n}" for n in self.nats]
        lines += [f"file {f}" for f in self.files]
        lines += [f"folder {f} (when empty)" for f in self.folders_in_root]
        if self.root_is_ours:
            what = "folder" if self.root_created else "mark of the folder"
            lines.append(f"{what} {self.root_label}")
        return lines

    root_label = ""


def find_owned(spec: Any, host: Any, hint: list[str]) -> Owned:
    """What on the host this lab created: read only."""
    owned = Owned()
    owned.root_label = spec.root
    folder_is_ours = lab_folder_is_ours(host, spec)
    for vm in host.run("Get-VM"):
        if owns_vm(vm, spec, folder_is_ours):
            owned.vms.append((text(val(vm, "Id")), text(val(vm, "Name"))))
    owned.checkpoints = lab_checkpoints(spec, host, owned.vms)
    for sw in host.run("Get-VMSwitch"):
        if has_mark(val(sw, "Notes"), spec.name):
            owned.switches.append((text(val(sw, "Id")), text(val(sw, "Name"))))
    if not folder_is_ours:
        # No mark: nothing in the folder is provably the lab's. A run stopped between
        # creating the folder and marking it leaves it empty; local state remembers it.
        for path in sorted(hint, key=len, reverse=True):
            if _is_empty_folder(host, path):
                owned.parents.append(path)
        return owned
    owned.root_is_ours = True
    record = parse_record(host.run("Get-Content", Path=spec.record_path, **SILENT))
    if not record:
        owned.note = (
            f"{spec.root} has no record of what lab {spec.name} created (an older hvlab made "
            "it): only the lab's own disks and folders, by their names, are removed"
        )
        record = _by_name(spec)
    root = spec.root.rstrip("\\").lower()
    present_nats = {text(val(n, "Name")).lower() for n in host.run("Get-NetNat", **SILENT)}
    folders: list[str] = []
    for kind, what in record:
        if kind == "nat":
            if what.lower() in present_nats and what not in owned.nats:
                owned.nats.append(what)
        elif kind in ("adcomputer", "adreused") and spec.domain.mode == "existing":
            into = owned.ad_computers if kind == "adcomputer" else owned.ad_reused
            if what.lower() not in map(str.lower, into):
                into.append(what)
            owned.domain = spec.domain.fqdn
        elif kind == "file":
            owned.files.append(what)
        elif same_path(what, spec.root):
            owned.root_created = True
        elif what.lower().startswith(root + "\\"):
            folders.append(what)
        else:
            owned.parents.append(what)
    present = host.map([("Test-Path", {"Path": p}) for p in owned.files + folders])
    exists = {p for p, answer in zip(owned.files + folders, present, strict=True) if _yes(answer)}
    owned.files = [f for f in dict.fromkeys(owned.files) if f in exists]
    owned.folders_in_root = sorted(
        (f for f in dict.fromkeys(folders) if f in exists), key=lambda p: (-p.count("\\"), p)
    )
    owned.parents = sorted(dict.fromkeys(owned.parents), key=lambda p: -p.count("\\"))
    return owned


def lab_checkpoints(spec: Any, host: Any, vms: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(VM id, VM name, checkpoint name) of every checkpoint that carries the lab's
    mark on the lab's VMs; a checkpoint someone else took stays theirs."""
    from hvlab.lifecycle import is_lab_checkpoint

    if not vms:
        return []
    ids = {i.lower(): name for i, name in vms}
    names = sorted({name for _, name in vms})
    found = []
    for snap in host.run("Get-VMSnapshot", VMName=names, **SILENT):
        vm_id = text(val(snap, "VMId")).lower()
        label = text(val(snap, "Name"))
        if vm_id in ids and is_lab_checkpoint(spec.name, label):
            found.append((vm_id, ids[vm_id], label))
    return found


def _remove_computer_objects(
    spec: Any,
    session: Any,
    names: list[str],
    removed: list[str],
    left: list[dict[str, Any]],
    out: Any,
) -> None:
    """Remove the recorded computer objects from the existing domain, from inside the
    first node that answers (the ActiveDirectory module, as the join account).
    Remove-ADObject -Recursive: a computer object may hold objects of its own, which
    Remove-ADComputer refuses ("only on a leaf object")."""
    from hvlab.creds import CredentialBook
    from hvlab.guest import Guest
    from hvlab.lab import credential, lab_secrets
    from hvlab.steps.adobjects import lookup

    domain = spec.domain.fqdn
    account = CredentialBook(spec, lab_secrets(spec, session), credential).domain_admin
    tried: list[str] = []
    runner: Guest | None = None
    first_found: Any = None
    for node in spec.nodes:
        guest = Guest(session.host, node.name, account, node.host_name)
        try:
            first_found = lookup(guest.run, names[0], domain, account)
        except HostError as err:
            tried.append(f"{node.name}: {err.message[:160]}")
            continue
        runner = guest
        break
    if runner is None:
        why = "no node of the lab answers to remove them (" + "; ".join(tried) + ")"
        for name in names:
            left.append({"computer": name, "domain": domain, "why": why})
        say(
            out,
            f"  left computer objects {', '.join(names)} in {domain}: {why}; remove them with "
            "Remove-ADComputer as an account that may (R-125)",
        )
        return
    for name in names:
        try:
            found = first_found if name == names[0] else lookup(runner.run, name, domain, account)
            if found is None:
                say(out, f"  computer object {name} is no longer in {domain}")
                continue
            runner.run(
                "Remove-ADObject",
                Identity=text(val(found, "DistinguishedName")),
                Recursive=True,
                Confirm=False,
                Server=domain,
                Credential=account,
            )
        except HostError as err:
            left.append({"computer": name, "domain": domain, "why": err.message[:300]})
            say(out, f"  left computer object {name} in {domain}: {err.message}")
            continue
        removed.append(f"computer object {name} in {domain}")
        say(out, f"  removed computer object {name} in {domain}")


def _by_name(spec: Any) -> list[tuple[str, str]]:
    """What a lab made by an older hvlab (no record) holds by the lab's own names."""
    out: list[tuple[str, str]] = []
    for vm in spec.vms:
        out.append(("file", spec.os_disk_path(vm)))
        out += [("file", p) for p in spec.data_disk_paths(vm)]
        out.append(("folder", f"{spec.vm_folder(vm)}\\Virtual Machines"))
        out.append(("folder", spec.vm_folder(vm)))
    out.append(("folder", spec.root))
    return out


def _yes(answer: list[Any]) -> bool:
    return bool(answer) and answer[0] is True


def _is_empty_folder(host: Any, path: str) -> bool:
    if not _yes(host.run("Test-Path", Path=path, PathType="Container")):
        return False
    return not host.run("Get-ChildItem", Path=path, Force=True, **SILENT)
