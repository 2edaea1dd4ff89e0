"""The steps of lab.up, one module per part of the lab, and their order.

preflight -> lab folder -> the lab's lock -> switches, leftover mounts -> the first VM (the DC) and its
first boot: the PowerShell Direct proof (R-94) -> the DC's promotion, up to its
restart -> one VM step per other VM (parallel; their OS-disk mounts one at a time,
R-91) and their first boots, while the DC restarts -> the DC back and AD ready ->
each node's join and roles (parallel) -> cluster -> S2D and volumes -> each HA VM.
With --allow-restart, last: the changes that need a VM off, one VM at a time
(hvlab.steps.restart, R-141).
"""

from __future__ import annotations

from typing import Any

from hvlab.engine import Step
from hvlab.locking import lock_step
from hvlab.steps import cluster, guests, host, restart, vms


def build(lab: Any, *, allow_restart: bool = False) -> list[Step]:
    steps = [
        Step("preflight", "lab", "preflight", host.preflight),
        # The folder first: it holds the record of what the lab creates (a NAT too).
        Step("folder", "lab", "network", host.lab_folder, needs=("preflight",)),
        # The lab's lock, in its folder: taken before any other change.
        Step("lock", "lab", "network", lock_step, needs=("folder",)),
        Step("switches", "lab", "network", host.switches, needs=("lock",)),
        Step("mounts", "lab", "network", host.leftover_mounts, needs=("lock",)),
    ]
    # the first VM (the DC when there is one) is built and answers over
    # PowerShell Direct before the others are made: that round trip from the WinRM
    # session is what everything after it relies on. With a DC, the others come once
    # its promotion restart is under way: their first boots are off the critical path
    # (which runs through the DC), and they do not crowd the host while the DC works
    # towards its longest boot.
    dc = lab.dc
    pilot = dc if dc is not None else lab.vms[0]
    after_pilot = f"promote:{dc.name}" if dc is not None else f"boot:{pilot.name}"
    for vm in lab.vms:
        needs: tuple[str, ...] = ("switches", "mounts")
        if vm is not pilot:
            needs += (after_pilot,)
        steps.append(
            Step(
                f"vm:{vm.name}",
                vm.name,
                "vm",
                lambda c, v=vm: vms.build_vm(c, v),
                needs=needs,
            )
        )
        steps.append(
            Step(
                f"boot:{vm.name}",
                vm.name,
                "boot",
                lambda c, v=vm: guests.first_boot(c, v),
                needs=(f"vm:{vm.name}",),
            )
        )
    if dc is not None:
        steps.append(
            Step(
                f"promote:{dc.name}",
                dc.name,
                "domain",
                lambda c: guests.promote_dc(c, dc),
                needs=(f"boot:{dc.name}",),
            )
        )
        steps.append(
            Step(
                f"domain:{dc.name}",
                dc.name,
                "domain",
                lambda c: guests.domain_controller(c, dc),
                needs=(f"promote:{dc.name}",),
            )
        )
    domain_step = (f"domain:{dc.name}",) if dc is not None else ()
    for node in lab.nodes:
        steps.append(
            Step(
                f"roles:{node.name}",
                node.name,
                "roles",
                lambda c, v=node: guests.node_roles(c, v),
                needs=(f"boot:{node.name}", *domain_step),
            )
        )
    steps.append(
        Step(
            "cluster",
            "cluster",
            "cluster",
            cluster.cluster,
            needs=tuple(f"roles:{n.name}" for n in lab.nodes),
        )
    )
    steps.append(Step("s2d", "cluster", "s2d", cluster.s2d, needs=("cluster",)))
    for ha in lab.ha_vms:
        steps.append(
            Step(
                f"ha:{ha.name}", ha.name, "ha", lambda c, h=ha: cluster.ha_vm(c, h), needs=("s2d",)
            )
        )
    if allow_restart:
        # Once everything else is as the file says: the cluster is there to drain.
        steps.append(
            Step(
                "restart",
                "lab",
                "restart",
                restart.restart_changes,
                needs=tuple(s.name for s in steps),
                # Its waits span restarts; after an error, lab.up is run again.
                retry=False,
            )
        )
    return steps
