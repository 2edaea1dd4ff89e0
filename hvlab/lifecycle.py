"""A built lab's lifecycle: stop and start it in order, and whole-lab checkpoints (R-130).

Shutdown order (`lab.stop`, and before a checkpoint): the HA VMs (Stop-ClusterGroup,
their resource's offline action), the cluster (Stop-Cluster inside a node), the
nodes, then the DC, each shut down through its guest (Stop-VM without -TurnOff) and
waited for until Off. Start order (`lab.start`, after a checkpoint or a restore): the
DC until Active Directory answers, the nodes until they answer, the cluster
(Start-Cluster) until every node is Up, the HA VMs (Start-ClusterGroup), then the
whole lab until `lab.status` is healthy.

`lab.checkpoint NAME` takes every VM's checkpoint at one moment: with the lab shut
down cleanly, so each guest's disks and the cluster database they carry agree.
Nodes run with CheckpointType Disabled (R-13): the type is switched to Production
while the VM is Off, the checkpoint taken, and switched back. Checkpoints are named
`hvlab:<lab>:<NAME>`: lab.down removes those, and only those. `lab.restore NAME`
turns every VM off (their current state is discarded anyway), restores each VM's
checkpoint (never a node alone: R-13), sets CheckpointType Disabled again (the
restored configuration carries Production), and starts the lab in order.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import IO, Any

from hvlab import report as progress
from hvlab.engine import Run, Step, StepContext
from hvlab.errors import ConfigError, HostError, HvlabError, StepError
from hvlab.lab import Target, lab_secrets, min_wait, on_host, say, services
from hvlab.paths import home, host_id, state_dir
from hvlab.state import LabState
from hvlab.steps.common import (
    AD_POLL,
    READY_POLL,
    SILENT,
    first,
    in_guest,
    lab_folder_is_ours,
    owns_vm,
    record_created,
    text,
    val,
    wait_ready,
)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$")
SHUTDOWN_DEADLINE = 10 * 60  # Stop-VM gives applications 5 minutes (WPD:Hyper-V/Stop-VM)
GROUP_DEADLINE = 5 * 60
HEALTHY_DEADLINE = 15 * 60
HEALTHY_POLL = 10.0


# -- names -------------------------------------------------------------------------------


def checkpoint_label(lab: str, name: str) -> str:
    """The name a lab checkpoint carries on every VM: the lab's mark and the name."""
    return f"hvlab:{lab}:{name}"


def is_lab_checkpoint(lab: str, label: str) -> bool:
    return label.startswith(f"hvlab:{lab}:")


def check_name(name: Any) -> str:
    """A checkpoint name as the tasks accept it: 1-48 letters, digits, '.', '_', '-'."""
    text_name = str(name or "")
    if not NAME_RE.match(text_name):
        raise ConfigError(
            f"checkpoint name {text_name!r} must be 1-48 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return text_name


# -- what is on the host ----------------------------------------------------------------


def read_vms(spec: Any, host: Any) -> dict[str, dict[str, str]]:
    """The lab's VMs that are on the host and the lab's: computer name -> Id and State
    (the host knows them by their host names, R-145)."""
    folder_is_ours = lab_folder_is_ours(host, spec)
    records = host.run("Get-VM", Name=[vm.host_name for vm in spec.vms], **SILENT)
    found: dict[str, dict[str, str]] = {}
    for vm in spec.vms:
        mine = [
            r
            for r in records
            if text(val(r, "Name")).lower() == vm.host_name.lower()
            and owns_vm(r, spec, folder_is_ours)
        ]
        if mine:
            found[vm.name] = {
                "id": text(val(mine[0], "Id")),
                "state": text(val(mine[0], "State")),
            }
    return found


def read_checkpoints(spec: Any, host: Any, vms: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The lab's checkpoints by name: which VMs have it, and when it was taken."""
    if not vms:
        return {}
    ids = {v["id"].lower(): name for name, v in vms.items()}
    out: dict[str, Any] = {}
    on_host = sorted(spec.on_host(name) for name in vms)
    for snap in host.run("Get-VMSnapshot", VMName=on_host, **SILENT):
        vm = ids.get(text(val(snap, "VMId")).lower())
        label = text(val(snap, "Name"))
        if vm is None or not is_lab_checkpoint(spec.name, label):
            continue
        name = label.split(":", 2)[2]
        entry = out.setdefault(name, {"name": name, "label": label, "vms": [], "created": None})
        entry["vms"].append(vm)
        created = text(val(snap, "CreationTime"))
        if created and (entry["created"] is None or created < entry["created"]):
            entry["created"] = created
    everyone = {vm.name for vm in spec.vms}
    for entry in out.values():
        entry["vms"].sort()
        entry["complete"] = set(entry["vms"]) == everyone
        entry["missing"] = sorted(everyone - set(entry["vms"]))
    return dict(sorted(out.items()))


# -- acting on one VM, by its Id (another VM may share its name, R-20) ---------------------


def _on_vm(ctx: StepContext, name: str, cmdlet: str, **params: Any) -> list[Any]:
    vm_id = ctx.lab_vms[name]["id"]
    return ctx.host.pipeline([("Get-VM", {"Id": vm_id}), (cmdlet, params)])


def _state(ctx: StepContext, name: str) -> str:
    rec = first(ctx.host.run("Get-VM", Id=ctx.lab_vms[name]["id"], **SILENT))
    return text(val(rec, "State")) if rec is not None else "Missing"


def _wait_off(ctx: StepContext, name: str) -> None:
    def off() -> tuple[bool, str]:
        state = _state(ctx, name)
        return state == "Off", f"VM {state}"

    ctx.wait(f"{name} to be Off", off, deadline=SHUTDOWN_DEADLINE, poll=READY_POLL)


def _running_node(ctx: StepContext) -> str | None:
    """A node whose VM runs and whose guest answers: where cluster cmdlets go."""
    for node in ctx.lab.nodes:
        if node.name in ctx.lab_vms and _state(ctx, node.name) == "Running":
            return str(node.name)
    return None


def _cluster_stopped(err: HostError) -> bool:
    return "cluster service is not running" in err.message.lower()


# -- shutting down ---------------------------------------------------------------------------


def stop_ha_vms(ctx: StepContext) -> None:
    """The HA VMs first: the cluster takes each role offline (Stop-ClusterGroup)."""
    node = _running_node(ctx)
    if node is None:
        ctx.ok("no node runs: the HA VMs are not running")
        return
    for ha in ctx.lab.ha_vms:
        try:
            group = first(in_guest(ctx, node, "Get-ClusterGroup", Name=ha.name, **SILENT))
        except HostError as err:
            if _cluster_stopped(err):
                ctx.ok("the cluster is stopped: its roles are offline")
                return
            raise
        if group is None:
            ctx.ok(f"{ha.name} is not a clustered role")
            continue
        if text(val(group, "State")) in ("Offline", "Failed"):
            ctx.ok(f"{ha.name} is {val(group, 'State')}")
            continue
        ctx.change(
            f"Stop-ClusterGroup {ha.name}",
            lambda h=ha: in_guest(ctx, node, "Stop-ClusterGroup", Name=h.name),
        )

        def offline(h: Any = ha) -> tuple[bool, str]:
            g = first(in_guest(ctx, node, "Get-ClusterGroup", Name=h.name))
            return text(val(g, "State")) == "Offline", f"{h.name} {val(g, 'State')}"

        ctx.wait(f"{ha.name} to be offline", offline, deadline=GROUP_DEADLINE)


def stop_cluster(ctx: StepContext) -> None:
    """Then the cluster, from inside a node (Stop-Cluster -Force: no prompt over
    PowerShell Direct)."""
    node = _running_node(ctx)
    if node is None:
        ctx.ok("no node runs: the cluster is down")
        return
    try:
        cluster = first(in_guest(ctx, node, "Get-Cluster", **SILENT))
    except HostError as err:
        if not _cluster_stopped(err):
            raise
        ctx.ok("the cluster service is stopped already")
        return
    if cluster is None:
        ctx.ok(f"{node} is in no cluster")
        return
    ctx.change(
        f"Stop-Cluster {val(cluster, 'Name')}",
        lambda: in_guest(ctx, node, "Stop-Cluster", Force=True),
    )

    def stopped() -> tuple[bool, str]:
        try:
            in_guest(ctx, node, "Get-Cluster")
        except HostError as err:
            if _cluster_stopped(err):
                return True, "the cluster service is stopped"
            raise
        return False, "the cluster still answers"

    ctx.wait("the cluster service to stop", stopped, deadline=GROUP_DEADLINE)


def shut_down(ctx: StepContext, name: str) -> None:
    """One VM shut down through its guest (Stop-VM without -TurnOff), waited for."""
    if name not in ctx.lab_vms:
        ctx.ok(f"{name} is not on the host")
        return
    state = _state(ctx, name)
    if state == "Off":
        ctx.ok(f"{name} is Off")
        return
    if state != "Running":
        raise StepError(
            f"stop:{name}",
            f"{name} is {state}; only a running VM shuts down cleanly: start it with "
            "lab.start first",
        )
    ctx.change(
        f"Stop-VM {ctx.lab.on_host(name)} (shut down)",
        lambda: _on_vm(ctx, name, "Stop-VM", Force=True),
    )
    _wait_off(ctx, name)


def turn_off(ctx: StepContext, name: str) -> None:
    """Power off: the state it had is discarded by the restore that follows."""
    if _state(ctx, name) == "Off":
        ctx.ok(f"{name} is Off")
        return
    ctx.change(
        f"Stop-VM {ctx.lab.on_host(name)} -TurnOff (its state is discarded by the restore)",
        lambda: _on_vm(ctx, name, "Stop-VM", TurnOff=True, Force=True),
    )
    _wait_off(ctx, name)


def shutdown_steps(spec: Any) -> list[Step]:
    """HA VMs, the cluster, the nodes, then the DC."""
    steps = [
        Step("stop:ha", "cluster", "ha", stop_ha_vms),
        Step("stop:cluster", "cluster", "cluster", stop_cluster, needs=("stop:ha",)),
    ]
    for node in spec.nodes:
        steps.append(
            Step(
                f"stop:{node.name}",
                node.name,
                "vm",
                lambda c, n=node.name: shut_down(c, n),
                needs=("stop:cluster",),
            )
        )
    others = [vm for vm in spec.vms if vm.role != "node"]
    for vm in others:
        steps.append(
            Step(
                f"stop:{vm.name}",
                vm.name,
                "vm",
                lambda c, n=vm.name: shut_down(c, n),
                needs=tuple(f"stop:{n.name}" for n in spec.nodes) or ("stop:cluster",),
            )
        )
    return steps


# -- starting --------------------------------------------------------------------------------


def start_vm(ctx: StepContext, name: str) -> None:
    if name not in ctx.lab_vms:
        raise StepError(f"start:{name}", f"{name} is not on the host; lab.up builds it")
    state = _state(ctx, name)
    if state == "Running":
        ctx.ok(f"{name} is Running")
    elif state in ("Off", "Saved"):
        ctx.change(f"Start-VM {ctx.lab.on_host(name)}", lambda: _on_vm(ctx, name, "Start-VM"))
    else:
        raise StepError(f"start:{name}", f"{name} is {state}; it cannot be started")
    wait_ready(ctx, name, deadline=ctx.waits.reboot)


def start_dc(ctx: StepContext, name: str) -> None:
    """The DC first, until Active Directory answers (R-40): the nodes log on with it."""
    ctx.creds.use_domain(name)
    start_vm(ctx, name)

    def ad_ready() -> tuple[bool, str]:
        try:
            dc = first(in_guest(ctx, name, "Get-ADDomainController"))
        except HostError as err:
            return False, err.message
        return dc is not None, f"domain controller {val(dc, 'HostName')}"

    ctx.wait(f"Active Directory on {name}", ad_ready, deadline=ctx.waits.ad_ready, poll=AD_POLL)


def start_cluster(ctx: StepContext) -> None:
    """The cluster (Start-Cluster) until every node is Up."""
    node = ctx.lab.nodes[0].name
    wanted = {n.name.lower() for n in ctx.lab.nodes}

    def states() -> dict[str, str]:
        try:
            nodes = in_guest(ctx, node, "Get-ClusterNode")
        except HostError as err:
            if _cluster_stopped(err):
                return {}
            raise
        return {text(val(n, "Name")).lower(): text(val(n, "State")) for n in nodes}

    if all(states().get(n) == "Up" for n in wanted):
        ctx.ok("every cluster node is Up")
        return
    ctx.change("Start-Cluster", lambda: in_guest(ctx, node, "Start-Cluster"))

    def up() -> tuple[bool, str]:
        seen = states()
        return all(seen.get(n) == "Up" for n in wanted), (
            ", ".join(f"{k} {v}" for k, v in sorted(seen.items()))
            or "the cluster service is stopped"
        )

    ctx.wait("every cluster node to be Up", up, deadline=ctx.waits.cluster_up)


def start_ha(ctx: StepContext, name: str) -> None:
    node = ctx.lab.nodes[0].name
    group = first(in_guest(ctx, node, "Get-ClusterGroup", Name=name, **SILENT))
    if group is None:
        raise StepError(f"start:{name}", f"{name} is not a clustered role; lab.up makes it one")
    if text(val(group, "State")) == "Online":
        ctx.ok(f"{name} is Online on {val(group, 'OwnerNode')}")
        return
    ctx.change(
        f"Start-ClusterGroup {name}",
        lambda: in_guest(ctx, node, "Start-ClusterGroup", Name=name),
    )

    def online() -> tuple[bool, str]:
        g = first(in_guest(ctx, node, "Get-ClusterGroup", Name=name))
        return text(val(g, "State")) == "Online", f"{name} {val(g, 'State')}"

    ctx.wait(f"{name} to be online", online, deadline=GROUP_DEADLINE)


def unhealthy(data: dict[str, Any]) -> list[str]:
    """What keeps `lab.status` from healthy, in words (empty: healthy)."""
    from hvlab.api import Status

    status = Status(data)
    if status.healthy:
        return []
    out = [f"{n} {s}" for n, s in status.vms.items() if s != "Running"]
    out += [f"node {n} {s}" for n, s in status.nodes.items() if s != "Up"]
    cluster = data.get("cluster") or {}
    if cluster.get("error"):
        out.append(f"cluster: {cluster['error']}")
    if status.pool_health != "Healthy":
        out.append(f"pool {status.pool_health}")
    out += [f"CSV {c['path']} {c['state']}" for c in data.get("csv", []) if c["state"] != "Online"]
    out += [f"HA VM {n} {h['state']}" for n, h in status.ha_vms.items() if h["state"] != "Online"]
    return out or ["not healthy"]


def wait_healthy(ctx: StepContext) -> None:
    from hvlab.status import collect_status

    def healthy() -> tuple[bool, str]:
        problems = unhealthy(collect_status(ctx.lab, ctx.host, ctx.creds))
        return not problems, "; ".join(problems) or "healthy"

    ctx.wait("lab.status to be healthy", healthy, deadline=HEALTHY_DEADLINE, poll=HEALTHY_POLL)


def start_steps(spec: Any, after: tuple[str, ...] = ()) -> list[Step]:
    """The DC (and AD), the nodes, the cluster, the HA VMs, then healthy."""
    steps: list[Step] = []
    dc = spec.dc
    first_needs = after
    if dc is not None:
        steps.append(
            Step(f"start:{dc.name}", dc.name, "boot", lambda c: start_dc(c, dc.name), needs=after)
        )
        first_needs = (f"start:{dc.name}",)
    others = [vm for vm in spec.vms if vm is not dc and vm.role != "node"]
    for vm in [*spec.nodes, *others]:
        steps.append(
            Step(
                f"start:{vm.name}",
                vm.name,
                "boot",
                lambda c, n=vm.name: start_vm(c, n),
                needs=first_needs,
            )
        )
    node_starts = tuple(f"start:{n.name}" for n in spec.nodes)
    steps.append(Step("start:cluster", "cluster", "cluster", start_cluster, needs=node_starts))
    ha_starts = []
    for ha in spec.ha_vms:
        ha_starts.append(f"start:{ha.name}")
        steps.append(
            Step(
                f"start:{ha.name}",
                ha.name,
                "ha",
                lambda c, n=ha.name: start_ha(c, n),
                needs=("start:cluster",),
            )
        )
    everything = tuple(s.name for s in steps)
    steps.append(Step("healthy", "lab", "ha", wait_healthy, needs=everything))
    return steps


# -- checkpoints ----------------------------------------------------------------------------


def take_checkpoint(ctx: StepContext, name: str) -> None:
    """One VM's part of a lab checkpoint: it is Off, the whole lab is Off."""
    label = ctx.checkpoint_label
    vm = next(v for v in ctx.lab.vms if v.name == name)
    state = _state(ctx, name)
    if state != "Off":
        raise StepError(f"checkpoint:{name}", f"{name} is {state}, not Off: no checkpoint taken")
    if name in ctx.partial:
        ctx.change(
            f"Remove-VMSnapshot {ctx.lab.on_host(name)} {label} (left by a run that stopped half-way)",
            lambda: _on_vm(ctx, name, "Remove-VMSnapshot", Name=label),
        )
    snapshots = f"{ctx.lab.vm_folder(vm)}\\Snapshots"
    present = ctx.host.run("Test-Path", Path=snapshots)
    if not (present and present[0] is True):
        # Hyper-V keeps the checkpoint's configuration there: lab.down removes it
        # once empty, as every folder the lab made.
        record_created(ctx, "folder", snapshots)

    def checkpoint() -> None:
        # a node runs with CheckpointType Disabled; Off, the type may change.
        _on_vm(ctx, name, "Set-VM", CheckpointType="Production")
        try:
            _on_vm(ctx, name, "Checkpoint-VM", SnapshotName=label)
        finally:
            _on_vm(ctx, name, "Set-VM", CheckpointType="Disabled")

    ctx.change(f"Checkpoint-VM {ctx.lab.on_host(name)} {label}", checkpoint)


def restore_checkpoint(ctx: StepContext, name: str) -> None:
    label = ctx.checkpoint_label

    def restore() -> None:
        _on_vm(ctx, name, "Restore-VMSnapshot", Name=label, Confirm=False)
        # The restored configuration is the checkpoint's: CheckpointType Production.
        _on_vm(ctx, name, "Set-VM", CheckpointType="Disabled")

    ctx.change(f"Restore-VMSnapshot {ctx.lab.on_host(name)} {label}", restore)


def _per_vm(spec: Any, kind: str, act: Any, needs: tuple[str, ...] = (), **kw: Any) -> list[Step]:
    """One step `<kind>:<vm>` per VM of the lab, each running act(ctx, vm name)."""
    return [
        Step(f"{kind}:{vm.name}", vm.name, "vm", lambda c, n=vm.name: act(c, n), needs=needs, **kw)
        for vm in spec.vms
    ]


def checkpoint_steps(spec: Any, running: bool) -> list[Step]:
    steps = shutdown_steps(spec)
    takes = _per_vm(
        spec, "checkpoint", take_checkpoint, needs=tuple(s.name for s in steps), retry=False
    )
    steps += takes
    if running:
        steps += start_steps(spec, after=tuple(s.name for s in takes))
    return steps


def restore_steps(spec: Any) -> list[Step]:
    offs = _per_vm(spec, "off", turn_off)
    restores = _per_vm(
        spec, "restore", restore_checkpoint, needs=tuple(s.name for s in offs), retry=False
    )
    return offs + restores + start_steps(spec, after=tuple(s.name for s in restores))


# -- the tasks ----------------------------------------------------------------------------------


def _run(
    verb: str,
    config: Any,
    lab: str | None,
    as_json: bool,
    state_base: Path | None,
    target: Target | None,
    plan: Any,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Hold the lab's lock, read its VMs, let `plan(spec, vms, host)` say the steps and
    their services, run them, and report."""
    started = time.monotonic()
    with on_host(verb, config, lab, as_json, state_base, target=target) as (spec, session, out):
        from hvlab.locking import LabLock

        lock = LabLock(session.host, spec, f"lab.{verb}", simulated=session.simulated, out=out)
        if not lock.acquire_if_marked():
            raise ConfigError(
                f"lab {spec.name} is not on {session.description}: {spec.root} carries no mark "
                "of it ('lab.up' builds it)"
            )
        with lock.holding():
            vms = read_vms(spec, session.host)
            steps, more = plan(spec, vms, session.host)
            folder = state_dir(spec.name, state_base or home(config), host_id(config))
            state = LabState(folder)
            secrets = lab_secrets(spec, session, dsrm=False)
            svc = services(spec, session, secrets, state, config)
            for vm in spec.vms:
                svc["creds"].use_domain(vm.name)  # a built lab logs on with the domain
            svc.update(lab_vms=vms, **more)
            reporter = progress.reporter(out) if out is not None else progress.QuietReporter()
            run = Run(
                steps,
                svc,
                reporter,
                time_factor=session.time_factor,
                min_deadline=min_wait(),
                clock=session.clock,
            )
            host_start = session.clock()
            error: HvlabError | None = None
            try:
                results = run.execute()
            except HvlabError as err:
                error = err
                results = list(run.results.values())
            finally:
                reporter.close()
            payload: dict[str, Any] = {
                "lab": spec.name,
                "task": f"lab.{verb}",
                "result": "ok" if error is None else "failed",
                "error": None if error is None else str(error),
                "changed": sum(1 for r in results if r.changed),
                "wall_seconds": round(time.monotonic() - started, 3),
                # How long it took on the host's clock (modelled seconds on hvsim).
                "host_seconds": round(session.clock() - host_start, 1),
                "clock": "real" if session.modelled_seconds() is None else "modelled",
                "steps": [r.to_json() for r in results],
                **(extra or {}),
            }
            state.write_json(f"{verb}.json", payload)
            for line in progress.summary_lines(results)[:1]:
                say(out, line)
            if as_json and target is None:
                print(json.dumps(payload, indent=2, default=str))
            if error is not None:
                error.report = payload  # type: ignore[attr-defined]
                raise error
            return payload
    raise AssertionError("unreachable")


def _need_all(spec: Any, vms: dict[str, Any], what: str) -> None:
    missing = [vm.name for vm in spec.vms if vm.name not in vms]
    if missing:
        raise ConfigError(
            f"lab {spec.name} is not complete ({', '.join(missing)} not on the host): "
            f"{what} needs every VM; run lab.up first"
        )


def stop(
    config: Any = None,
    *,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    """Shut the lab down cleanly: HA VMs, cluster, nodes, DC."""

    def plan(spec: Any, vms: dict[str, Any], host: Any) -> tuple[list[Step], dict[str, Any]]:
        return shutdown_steps(spec), {}

    return _run("stop", config, lab, as_json, state_base, target, plan)


def start(
    config: Any = None,
    *,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    """Start the lab in order and wait until it is healthy."""

    def plan(spec: Any, vms: dict[str, Any], host: Any) -> tuple[list[Step], dict[str, Any]]:
        _need_all(spec, vms, "lab.start")
        return start_steps(spec), {}

    return _run("start", config, lab, as_json, state_base, target, plan)


def checkpoint(
    config: Any = None,
    name: str = "",
    *,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    """A checkpoint of every VM at one moment, the lab shut down cleanly for it; a lab
    that ran is started again and waited for until healthy."""
    wanted = check_name(name)

    def plan(spec: Any, vms: dict[str, Any], host: Any) -> tuple[list[Step], dict[str, Any]]:
        _need_all(spec, vms, "a checkpoint")
        existing = read_checkpoints(spec, host, vms).get(wanted)
        if existing is not None and existing["complete"]:
            raise ConfigError(
                f"lab {spec.name} has a checkpoint {wanted} already (taken {existing['created']}); "
                "choose another name"
            )
        running = any(v["state"] != "Off" for v in vms.values())
        return checkpoint_steps(spec, running), {
            "checkpoint_label": checkpoint_label(spec.name, wanted),
            "partial": set(existing["vms"]) if existing else set(),
        }

    return _run(
        "checkpoint", config, lab, as_json, state_base, target, plan, {"checkpoint": wanted}
    )


def restore(
    config: Any = None,
    name: str = "",
    *,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    """Every VM back to the lab checkpoint NAME, started in order, healthy."""
    wanted = check_name(name)

    def plan(spec: Any, vms: dict[str, Any], host: Any) -> tuple[list[Step], dict[str, Any]]:
        _need_all(spec, vms, "a restore")
        found = read_checkpoints(spec, host, vms)
        existing = found.get(wanted)
        if existing is None:
            known = ", ".join(found) or "none"
            raise ConfigError(
                f"lab {spec.name} has no checkpoint {wanted} (its checkpoints: {known})"
            )
        if not existing["complete"]:
            raise ConfigError(
                f"checkpoint {wanted} of lab {spec.name} lacks {', '.join(existing['missing'])}: "
                "a lab is restored whole or not at all; a node is never restored alone (R-13)"
            )
        return restore_steps(spec), {"checkpoint_label": checkpoint_label(spec.name, wanted)}

    return _run("restore", config, lab, as_json, state_base, target, plan, {"checkpoint": wanted})


def checkpoints(
    config: Any = None,
    *,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> list[dict[str, Any]]:
    """The lab's checkpoints: name, when, which VMs (complete or not)."""
    with on_host("checkpoints", config, lab, as_json, state_base, target=target) as (
        spec,
        session,
        out,
    ):
        vms = read_vms(spec, session.host)
        found = list(read_checkpoints(spec, session.host, vms).values())
    if as_json and target is None:
        print(json.dumps(found, indent=2))
    elif out is not None:
        _print_checkpoints(out, spec.name, found)
    return found


def _print_checkpoints(out: IO[str], lab: str, found: list[dict[str, Any]]) -> None:
    if not found:
        say(out, f"lab {lab} has no checkpoints ('lab.checkpoint NAME' takes one)")
        return
    for cp in found:
        where = "every VM" if cp["complete"] else f"missing on {', '.join(cp['missing'])}"
        say(out, f"  {cp['name']:<20} {cp['created'] or '?':<28} {where}")
