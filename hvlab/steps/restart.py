"""lab.up --allow-restart: the changes that need a VM off (R-140, R-141).

The VM steps record what differs from the lab file and cannot change while a VM runs
(memory, processors, firmware, a MAC, an adapter the file no longer names) as their
drift. This step runs once the rest of the lab is as the file says, and applies it one
VM at a time:

- the VMs that are not cluster nodes first, the DC before the others: a clean shutdown
  through the guest (Stop-VM without -Force or -TurnOff), the change, Start-VM, and a
  wait until the guest answers (the DC: until Active Directory answers, R-40);
- then each cluster node in turn: the storage healthy first (R-108), the node drained
  from another node (Suspend-ClusterNode -Drain) until it is paused with its roles gone
  (R-107), a clean shutdown, the change, Start-VM, a wait until it answers and is back
  in the cluster, Resume-ClusterNode -Failback Immediate, and a wait for the storage
  repair before the next node. Never more than one node is down; the HA VMs move by
  the drain and keep running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hvlab.engine import StepContext
from hvlab.steps.cluster import media_types
from hvlab.steps.common import (
    AD_POLL,
    READY_POLL,
    SILENT,
    first,
    in_guest,
    text,
    tolerant,
    val,
    wait_ready,
)
from hvlab.steps.vms import apply_off

if TYPE_CHECKING:  # drill_facts imports lab.py, which imports the steps
    from hvlab.drill_facts import LabView

SHUTDOWN_DEADLINE = 10 * 60  # Stop-VM gives applications 5 minutes (WPD:Hyper-V/Stop-VM)
DRAIN_DEADLINE = 15 * 60  # live migrations of the node's roles
CLUSTER_POLL = 5.0


def pending(ctx: StepContext) -> list[Any]:
    """The lab's VMs whose step found drift, in the order they are restarted: the DC,
    the other VMs that are not nodes, then the nodes."""
    vms = [vm for vm in ctx.lab.vms if _drift_of(ctx, vm)]
    order = {"dc": 0, "node": 2}
    return sorted(vms, key=lambda vm: order.get(vm.role, 1))


def _drift_of(ctx: StepContext, vm: Any) -> list[str]:
    result = ctx.run.results.get(f"vm:{vm.name}")
    return list(result.drift) if result is not None else []


def restart_changes(ctx: StepContext) -> None:
    todo = pending(ctx)
    if not todo:
        ctx.ok("no VM waits for a change that needs it off")
        return
    # A run of the step again after a lost answer skips the VMs it finished.
    done: set[str] = ctx.run.services.setdefault("restarted", set())
    for vm in todo:
        if vm.name in done:
            continue
        if vm.role == "node":
            _node(ctx, vm)
        else:
            _vm(ctx, vm)
        done.add(vm.name)


def _state(ctx: StepContext, name: str) -> str:
    rec = first(ctx.host.run("Get-VM", Name=name, **SILENT))
    return text(val(rec, "State")) if rec is not None else "Missing"


def _off_changed_on(ctx: StepContext, vm: Any) -> None:
    """Shut down through the guest, change, start, and wait until the guest answers."""
    name = vm.host_name  # on the host; PowerShell Direct takes the computer name
    ctx.change(
        f"Stop-VM {name} (a clean shutdown for: {'; '.join(_drift_of(ctx, vm))})",
        lambda: ctx.host.run("Stop-VM", Name=name),
    )

    def off() -> tuple[bool, str]:
        state = _state(ctx, name)
        return state == "Off", f"VM {state}"

    ctx.wait(f"{name} to be Off", off, deadline=SHUTDOWN_DEADLINE, poll=READY_POLL)
    apply_off(ctx, vm)
    ctx.change(f"Start-VM {name}", lambda: ctx.host.run("Start-VM", Name=name))
    wait_ready(ctx, vm.name, deadline=ctx.waits.reboot)


def _vm(ctx: StepContext, vm: Any) -> None:
    _off_changed_on(ctx, vm)
    if vm.role != "dc":
        return
    # The nodes log on with the domain: Active Directory answers before they go.

    def ad_ready() -> tuple[bool, str]:
        dc = first(in_guest(ctx, vm.name, "Get-ADDomainController"))
        return dc is not None, f"domain controller {val(dc, 'HostName')}"

    ctx.wait(
        f"Active Directory on {vm.name}",
        tolerant(ad_ready),
        deadline=ctx.waits.ad_ready,
        poll=AD_POLL,
    )


def _node(ctx: StepContext, vm: Any) -> None:
    """One cluster node: drained, shut down, changed, started, resumed, repaired."""
    from hvlab.drill_facts import LabView

    node = vm.name
    view = LabView(ctx.lab, ctx.host, ctx.creds)
    # No node goes down while the storage resyncs from the last one.
    _storage_healthy(ctx, view, node, "the storage to be healthy before draining " + node)
    via = view.control(avoid=node)
    ctx.change(
        f"Suspend-ClusterNode {node} -Drain (from {via})",
        lambda: view.run(via, "Suspend-ClusterNode", Name=node, Drain=True, Wait=True),
    )

    def drained() -> tuple[bool, str]:
        n = first(view.run(via, "Get-ClusterNode", Name=node))
        owners = [view.ha_vm(via, ha.name) for ha in ctx.lab.ha_vms]
        away = all(ha.owner != node.lower() and ha.state == "Online" for ha in owners)
        paused = text(val(n, "State")) == "Paused" and text(val(n, "DrainStatus")) == "Completed"
        return paused and away, (
            f"{node} {val(n, 'State')} drain {val(n, 'DrainStatus')}; "
            + ", ".join(f"{ha.name} {ha.state} on {ha.owner or '?'}" for ha in owners)
        )

    ctx.wait(f"{node} to be drained and paused", tolerant(drained), deadline=DRAIN_DEADLINE)
    _off_changed_on(ctx, vm)

    def rejoined() -> tuple[bool, str]:
        state = view.node_states(via).get(node.lower(), "?")
        return state in ("Paused", "Up"), f"{node} {state}"

    ctx.wait(
        f"{node} to be back in the cluster",
        tolerant(rejoined),
        deadline=ctx.waits.cluster_up,
        poll=CLUSTER_POLL,
    )
    ctx.change(
        f"Resume-ClusterNode {node} -Failback Immediate",
        lambda: view.run(via, "Resume-ClusterNode", Name=node, Failback="Immediate"),
    )

    def resumed() -> tuple[bool, str]:
        state = view.node_states(via).get(node.lower(), "?")
        return state == "Up", f"{node} {state}"

    ctx.wait(f"{node} to be Up", tolerant(resumed), deadline=DRAIN_DEADLINE, poll=CLUSTER_POLL)
    _storage_healthy(ctx, view, None, f"the storage repair after {node}")
    # The restart reset the media type of the node's pool disks.
    media_types(ctx, via, in_guest(ctx, via, "Get-PhysicalDisk"))


def _storage_healthy(ctx: StepContext, view: LabView, avoid: str | None, what: str) -> None:
    """Pool and virtual disks Healthy, no repair job running (R-108)."""

    def healthy() -> tuple[bool, str]:
        st = view.storage(view.control(avoid=avoid))
        ok = st.health == "Healthy" and st.operational == ["OK"] and not st.jobs
        return ok and st.pool_health == "Healthy", (
            f"pool {st.pool_health}, virtual disks {st.health} "
            f"({', '.join(st.operational)}), {st.jobs} repair job(s)"
        )

    ctx.wait(what, tolerant(healthy), deadline=ctx.waits.repair, poll=CLUSTER_POLL)
