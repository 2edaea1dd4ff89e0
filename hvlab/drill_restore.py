"""Bring a lab back to healthy after a drill, or after one was interrupted
(`lab.drill --recover`, R-113): every VM of the lab running, every node link and data
drive back, paused nodes resumed, roles that are down started, the storage repaired.

Each phase reads the host first and changes only what differs (R-90), so it can run
at any point of any drill, and again. When a drill took something away, these phases
measure its return: when the nodes were all Up again and how long the repair took.
"""

from __future__ import annotations

from typing import Any

from hvlab.drill_facts import LabView
from hvlab.drills import FAILOVER_DEADLINE, NODE_DEADLINE, REPAIR_DEADLINE, wait_for
from hvlab.engine import Step, StepContext
from hvlab.errors import StepError
from hvlab.steps.common import SILENT, text, val, wait_ready


def recovery(spec: Any, kind: str | None) -> list[Step]:
    names = [
        ("restore: VMs running", _vms_running),
        ("restore: links and drives", _links_and_drives),
        ("restore: guests answer", _guests_answer),
        ("restore: cluster nodes", _cluster_nodes),
        ("restore: roles", _roles),
        ("restore: storage", _storage),
        ("lab healthy", _healthy),
    ]
    steps: list[Step] = []
    for name, fn in names:
        needs = (steps[-1].name,) if steps else ()
        steps.append(Step(name, "lab", "restore", fn, needs=needs))
    return steps


def _vms_running(ctx: StepContext) -> None:
    found = {
        text(val(v, "Name")).lower(): text(val(v, "State"))
        for v in ctx.host.run("Get-VM", Name=[vm.host_name for vm in ctx.lab.vms], **SILENT)
    }
    for vm in ctx.lab.vms:
        state = found.get(vm.host_name.lower(), "Missing")
        if state == "Missing":
            raise StepError(
                "restore", f"VM {vm.host_name} is not on the host: lab.up builds it, a drill cannot"
            )
        if state in ("Off", "Saved"):
            at = ctx.drill.now()
            ctx.change(
                f"Start-VM {vm.host_name}", lambda v=vm.host_name: ctx.host.run("Start-VM", Name=v)
            )
            ctx.drill.facts.setdefault("started", {})[vm.name] = ctx.drill.mark(
                ctx, f"Start-VM {vm.host_name}", at
            )
            if vm.role == "node":
                ctx.drill.facts["storage_away"] = True  # its drives come back: a resync
        elif state == "Paused":
            ctx.change(
                f"Resume-VM {vm.host_name}",
                lambda v=vm.host_name: ctx.host.run("Resume-VM", Name=v),
            )
        else:
            ctx.ok(f"{vm.name} is {state}")


def _links_and_drives(ctx: StepContext) -> None:
    lab = ctx.lab
    for vm in lab.nodes:
        for adapter in ctx.host.run("Get-VMNetworkAdapter", VMName=vm.host_name):
            name = text(val(adapter, "Name"))
            nic = next((n for n in vm.nics if n.name == name), None)
            if nic is None or text(val(adapter, "SwitchName")):
                continue
            switch = lab.switch(nic.switch).host_name
            ctx.change(
                f"Connect-VMNetworkAdapter {vm.host_name}/{name} -> {switch}",
                lambda n=name, s=switch, v=vm.host_name: ctx.host.run(
                    "Connect-VMNetworkAdapter", VMName=v, Name=n, SwitchName=s
                ),
            )
            ctx.drill.facts["returned_at"] = ctx.drill.mark(ctx, f"{vm.name}/{name} reconnected")
        attached = {
            text(val(d, "Path")).lower()
            for d in ctx.host.run("Get-VMHardDiskDrive", VMName=vm.host_name)
        }
        for path in lab.data_disk_paths(vm):
            if path.lower() in attached:
                continue
            ctx.change(
                f"Add-VMHardDiskDrive {vm.host_name} SCSI {path}",
                lambda p=path, v=vm.host_name: ctx.host.run(
                    "Add-VMHardDiskDrive", VMName=v, ControllerType="SCSI", Path=p
                ),
            )
            ctx.drill.facts["returned_at"] = ctx.drill.mark(ctx, f"{path} attached to {vm.name}")
            ctx.drill.facts["storage_away"] = True
    ctx.ok("every node link and data drive is there")


def _guests_answer(ctx: StepContext) -> None:
    for vm in ctx.lab.vms:
        wait_ready(ctx, vm.name, deadline=NODE_DEADLINE)
    ctx.ok("every guest answers over PowerShell Direct")


def _cluster_nodes(ctx: StepContext) -> None:
    view: LabView = ctx.view
    via = view.control()
    states = view.node_states(via)
    for node, state in states.items():
        if state == "Paused":
            ctx.change(
                f"Resume-ClusterNode {node} -Failback Immediate",
                lambda n=node: view.run(via, "Resume-ClusterNode", Name=n, Failback="Immediate"),
            )

    def up() -> tuple[bool, str]:
        seen = view.node_states(view.control())
        return all(s == "Up" for s in seen.values()), ", ".join(
            f"{n} {s}" for n, s in sorted(seen.items())
        )

    t = wait_for(ctx, "every cluster node to be Up", up, NODE_DEADLINE)
    started = ctx.drill.facts.get("started", {})
    if any(vm.name in started for vm in ctx.lab.nodes):
        first_start = min(started[vm.name] for vm in ctx.lab.nodes if vm.name in started)
        ctx.drill.mark(ctx, "every node Up again", t)
        ctx.drill.figures["node_rejoin_s"] = round(t - first_start, 1)
        ctx.drill.facts["returned_at"] = max(ctx.drill.facts.get("returned_at", 0.0), t)


def _roles(ctx: StepContext) -> None:
    view: LabView = ctx.view
    for spec in ctx.lab.ha_vms:
        via = view.control()
        ha = view.ha_vm(via, spec.name)
        if ha.state in ("Failed", "Offline"):
            ctx.change(
                f"Start-ClusterGroup {spec.name} (it was {ha.state})",
                lambda n=spec.name, v=via: view.run(v, "Start-ClusterGroup", Name=n),
            )

        def online(name: str = spec.name) -> tuple[bool, str]:
            ha = view.ha_vm(view.control(), name)
            return ha.state == "Online" and ha.vm_state == "Running", (
                f"{ha.state} on {ha.owner or '?'}, VM {ha.vm_state or '?'}"
            )

        wait_for(ctx, f"HA VM {spec.name} to be Online and running", online, FAILOVER_DEADLINE)
    ctx.ok(f"{', '.join(h.name for h in ctx.lab.ha_vms)} online")


def _storage(ctx: StepContext) -> None:
    view: LabView = ctx.view

    def healthy() -> tuple[bool, str]:
        st = view.storage(view.control())
        done = st.health == "Healthy" and st.operational == ["OK"] and not st.jobs
        return done and st.pool_health == "Healthy", (
            f"virtual disks {st.health} ({', '.join(st.operational)}), pool {st.pool_health}, "
            f"{st.jobs} repair job(s)"
        )

    t = wait_for(ctx, "the storage to be healthy (repair jobs done)", healthy, REPAIR_DEADLINE)
    back = ctx.drill.facts.get("returned_at")
    if back is not None and ctx.drill.facts.get("storage_away"):
        ctx.drill.mark(ctx, "storage healthy, repair done", t)
        ctx.drill.figures.setdefault("storage_repair_s", round(t - back, 1))


def _healthy(ctx: StepContext) -> None:
    problems = ctx.view.problems()
    if problems:
        raise StepError("lab healthy", "; ".join(problems))
    ctx.ok("the lab is healthy")
