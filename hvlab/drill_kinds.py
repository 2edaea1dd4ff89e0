"""The five drills: what each does to the lab, what it expects, what it measures.

node-failure    power off the HA VM's owner (Stop-VM -TurnOff on the host): the node
                goes Down after the heartbeat timeout (R-105), the HA VM restarts on a
                survivor after the resiliency period (R-106), the mirror keeps the volume
                online; the restore starts the node and measures rejoin and repair.
maintenance     drain the owner (Suspend-ClusterNode -Drain), restart it cleanly, resume
                it with failback: the HA VM live-migrates away and back, never stopping
                (R-107); the resync after the restart is waited for (R-108).
rolling-update  Cluster-Aware Updating's sequence node by node; with `updates:` the
                packages go to a share on the DC and Invoke-CauRun installs them with the
                hotfix plug-in (R-111, R-112); without, hvlab runs the same sequence with
                restarts only. The HA VM never stops; per node: drain, restart, repair.
disk-failure    detach one data VHDX from a running node on the host (R-109): pool and
                volume Degraded but online; the restore reattaches it and measures the
                repair (R-108).
network         disconnect one node's storage NIC on the host (R-110): the cluster and
                the HA VM stay up over the remaining network.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hvlab.drill_facts import LabView, ps_datetime
from hvlab.drills import (
    DETECT_DEADLINE,
    DRAIN_DEADLINE,
    FAILOVER_DEADLINE,
    NODE_DEADLINE,
    REPAIR_DEADLINE,
    DrillState,
    ha_name,
    uptime_gap,
    wait_for,
)
from hvlab.engine import Step, StepContext
from hvlab.errors import HostError, StepError
from hvlab.guest import NOT_READY, classify
from hvlab.steps.common import SILENT, first, text, val

EXPECT = {
    "node-failure": "the node goes Down, the HA VM restarts on a surviving node, the pool "
    "degrades and the volume stays online; after the node returns the pool is Healthy again",
    "maintenance": "the HA VM live-migrates away and back with no downtime (its uptime keeps "
    "growing)",
    "rolling-update": "every node is drained, updated or restarted, resumed and repaired in "
    "turn, and the HA VM never stops",
    "disk-failure": "the pool and the volume are Degraded and stay online; after the drive "
    "returns the repair completes",
    "network": "the cluster and the HA VM stay up over the remaining network",
}

SHARE = "HvlabUpdates"
SHARE_FOLDER = "C:\\HvlabUpdates"
CAU_MODULE = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\Modules\\ClusterAwareUpdating"
EXTENSIONS = (".msu", ".msi", ".msp")


def expectation(kind: str) -> str:
    return EXPECT[kind]


def phases(kind: str, spec: Any) -> list[Step]:
    table = {
        "node-failure": [
            ("healthy before", _before),
            ("power off the HA VM's owner", _power_off_owner),
            ("owner detected Down", _owner_down),
            ("HA VM runs on a survivor", _ha_restarted),
            ("volume online, pool degraded", _storage_degraded_online),
        ],
        "maintenance": [
            ("healthy before", _before),
            ("drain the HA VM's owner", _drain_owner),
            ("restart the drained node", _restart_drained),
            ("resume with failback", _resume_failback),
            ("storage repaired", _repair_after_maintenance),
            ("HA VM never stopped", _no_downtime),
        ],
        "rolling-update": [
            ("healthy before", _before),
            *(
                [
                    ("stage updates on the DC", _stage_updates),
                    ("Cluster-Aware Updating run", _cau_run),
                ]
                if spec.updates
                else [("rolling restart, node by node", _rolling_restart)]
            ),
            ("HA VM never stopped", _no_downtime),
        ],
        "disk-failure": [
            ("healthy before", _before),
            ("detach a data drive", _detach_drive),
            ("pool and volume degraded, online", _degraded_online),
            ("reattach the drive", _reattach_drive),
        ],
        "network": [
            ("healthy before", _before),
            ("disconnect a storage NIC", _disconnect_nic),
            ("loss noticed", _loss_noticed),
            ("cluster and HA VM stay up", _stay_up),
            ("reconnect the NIC", _reconnect_nic),
            ("HA VM never stopped", _no_downtime),
        ],
    }
    steps: list[Step] = []
    for name, fn in table[kind]:
        needs = (steps[-1].name,) if steps else ()
        steps.append(Step(name, "lab", kind, fn, needs=needs, retry=False))
    return steps


# -- shared ----------------------------------------------------------------------------------


def _view(ctx: StepContext) -> LabView:
    return ctx.view


def _state(ctx: StepContext) -> DrillState:
    return ctx.drill


def _ha(ctx: StepContext, via: str | None = None) -> Any:
    view = _view(ctx)
    return view.ha_vm(via or view.control(), ha_name(ctx.lab))


def _observe(ctx: StepContext, via: str | None = None) -> tuple[float, float]:
    """(drill time, HA VM uptime) now."""
    ha = _ha(ctx, via)
    if ha.uptime is None:
        raise StepError("drill", f"HA VM {ha.name} is {ha.state} ({ha.vm_state or 'no VM'})")
    return _state(ctx).now(), ha.uptime


def _before(ctx: StepContext) -> None:
    st = _state(ctx)
    ha = _ha(ctx)
    st.facts["owner"] = ha.owner
    st.facts["first_seen"] = _observe(ctx)
    st.mark(ctx, f"lab healthy; {ha.name} runs on {ha.owner}")
    ctx.ok(f"{ha.name} on {ha.owner}")


def _no_downtime(ctx: StepContext) -> None:
    st = _state(ctx)
    now = _observe(ctx)
    gap = uptime_gap(st.facts["first_seen"], now)
    st.figures["ha_vm_downtime_s"] = round(gap, 1)
    # A second of slack: the two uptimes are read a round trip apart.
    st.expect(
        f"{ha_name(ctx.lab)} never stopped",
        gap <= 1.0,
        f"its uptime grew {now[1] - st.facts['first_seen'][1]:.1f}s in {now[0] - st.facts['first_seen'][0]:.1f}s",
    )


def _storage_state(ctx: StepContext, via: str | None = None) -> Any:
    view = _view(ctx)
    return view.storage(via or view.control())


def _wait_healthy_storage(ctx: StepContext, via_avoid: str | None = None) -> float:
    view = _view(ctx)

    def healthy() -> tuple[bool, str]:
        st = view.storage(view.control(avoid=via_avoid))
        ok = st.health == "Healthy" and st.operational == ["OK"] and not st.jobs
        return ok and st.pool_health == "Healthy", (
            f"virtual disks {st.health} ({', '.join(st.operational)}), {st.jobs} repair job(s)"
        )

    return wait_for(ctx, "the storage repair to finish", healthy, REPAIR_DEADLINE)


# -- node-failure ------------------------------------------------------------------------------


def _power_off_owner(ctx: StepContext) -> None:
    st = _state(ctx)
    owner = st.facts["owner"]
    vm = next(v.name for v in ctx.lab.nodes if v.name.lower() == owner.lower())
    on_host = ctx.lab.on_host(vm)
    ctx.change(
        f"Stop-VM {on_host} -TurnOff (a power cut)",
        lambda: ctx.host.run("Stop-VM", Name=on_host, TurnOff=True, Force=True),
    )
    st.facts["t_off"] = st.mark(ctx, f"{vm} powered off")


def _owner_down(ctx: StepContext) -> None:
    st, view = _state(ctx), _view(ctx)
    owner = st.facts["owner"]

    def down() -> tuple[bool, str]:
        states = view.node_states(view.control(avoid=owner))
        return states.get(owner) == "Down", f"{owner} {states.get(owner, '?')}"

    t = wait_for(ctx, f"the cluster to see {owner} Down", down, DETECT_DEADLINE)
    st.mark(ctx, f"{owner} Down in the cluster", t)
    st.figures["node_detected_down_s"] = round(t - st.facts["t_off"], 1)


def _ha_restarted(ctx: StepContext) -> None:
    st, view = _state(ctx), _view(ctx)
    owner = st.facts["owner"]
    seen: dict[str, Any] = {}

    def elsewhere() -> tuple[bool, str]:
        ha = view.ha_vm(view.control(avoid=owner), ha_name(ctx.lab))
        seen["ha"], seen["t"] = ha, st.now()
        done = ha.state == "Online" and ha.owner != owner and ha.vm_state == "Running"
        return done, f"{ha.state} on {ha.owner or '?'}"

    wait_for(ctx, f"{ha_name(ctx.lab)} to run on another node", elsewhere, FAILOVER_DEADLINE)
    ha = seen["ha"]
    back = seen["t"] - (ha.uptime or 0.0)  # when it started again, from its uptime
    st.mark(ctx, f"{ha.name} running again on {ha.owner}", back)
    st.figures["ha_vm_downtime_s"] = round(back - st.facts["t_off"], 1)
    st.facts["new_owner"] = ha.owner
    st.expect(f"{ha.name} restarted on a surviving node", ha.owner != owner, ha.owner)


def _storage_degraded_online(ctx: StepContext) -> None:
    st, view = _state(ctx), _view(ctx)
    via = view.control(avoid=st.facts["owner"])
    storage = view.storage(via)
    csvs = {
        text(val(c, "Name")): text(val(c, "State"))
        for c in view.run(via, "Get-ClusterSharedVolume")
    }
    st.expect(
        "the pool degraded while the node is away",
        storage.health != "Healthy",
        f"virtual disks {storage.health} ({', '.join(storage.operational)})",
    )
    st.expect(
        "every volume online",
        bool(csvs) and all(s == "Online" for s in csvs.values()),
        ", ".join(f"{n} {s}" for n, s in csvs.items()),
    )
    ctx.ok(f"virtual disks {storage.health}, CSVs online")


# -- maintenance ---------------------------------------------------------------------------------


def _drain(ctx: StepContext, node: str, via: str) -> float:
    st, view = _state(ctx), _view(ctx)
    t0 = st.now()
    ctx.change(
        f"Suspend-ClusterNode {node} -Drain -Wait",
        lambda: view.run(via, "Suspend-ClusterNode", Name=node, Drain=True, Wait=True),
    )

    def drained() -> tuple[bool, str]:
        n = first(view.run(via, "Get-ClusterNode", Name=node))
        ha = view.ha_vm(via, ha_name(ctx.lab))
        ok = text(val(n, "State")) == "Paused" and text(val(n, "DrainStatus")) == "Completed"
        return ok and ha.owner != node.lower() and ha.state == "Online", (
            f"{node} {val(n, 'State')} drain {val(n, 'DrainStatus')}; HA VM on {ha.owner}"
        )

    t = wait_for(ctx, f"{node} to be drained and paused", drained, DRAIN_DEADLINE)
    st.mark(ctx, f"{node} drained and paused", t)
    return t - t0


def _restart(ctx: StepContext, node: str, via: str) -> float:
    """Restart-Computer inside the node (a clean restart, R-37), then wait for it to
    answer with a new boot and to be back in the cluster (Paused)."""
    st, view = _state(ctx), _view(ctx)
    before = text(
        val(
            first(view.run(node, "Get-CimInstance", ClassName="Win32_OperatingSystem")),
            "LastBootUpTime",
        )
    )
    t0 = st.now()

    def restart() -> None:
        try:
            view.run(node, "Restart-Computer", Force=True)
        except HostError as err:
            if classify(err) != NOT_READY:
                raise  # the session ends with the restart: the expected answer

    ctx.change(f"Restart-Computer in {node}", restart)

    def back() -> tuple[bool, str]:
        os_info = first(view.run(node, "Get-CimInstance", ClassName="Win32_OperatingSystem"))
        boot = text(val(os_info, "LastBootUpTime"))
        state = view.node_states(via).get(node.lower(), "?")
        return boot != before and state in ("Paused", "Up"), f"boot {boot or '?'}, {state}"

    t = wait_for(ctx, f"{node} to restart and rejoin", back, NODE_DEADLINE)
    st.mark(ctx, f"{node} restarted and back in the cluster", t)
    st.facts["returned_at"] = t
    return t - t0


def _resume(ctx: StepContext, node: str, via: str, home: bool) -> float:
    st, view = _state(ctx), _view(ctx)
    t0 = st.now()
    ctx.change(
        f"Resume-ClusterNode {node} -Failback Immediate",
        lambda: view.run(via, "Resume-ClusterNode", Name=node, Failback="Immediate"),
    )

    def resumed() -> tuple[bool, str]:
        state = view.node_states(via).get(node.lower(), "?")
        ha = view.ha_vm(via, ha_name(ctx.lab))
        on_home = ha.owner == node.lower() if home else True
        return state == "Up" and on_home and ha.state == "Online", f"{state}; HA VM on {ha.owner}"

    t = wait_for(ctx, f"{node} to be Up with its roles back", resumed, DRAIN_DEADLINE)
    st.mark(ctx, f"{node} resumed" + (", HA VM failed back" if home else ""), t)
    return t - t0


def _drain_owner(ctx: StepContext) -> None:
    st = _state(ctx)
    owner = st.facts["owner"]
    via = _view(ctx).control(avoid=owner)
    st.facts["via"] = via
    st.figures["drain_s"] = round(_drain(ctx, owner, via), 1)


def _restart_drained(ctx: StepContext) -> None:
    st = _state(ctx)
    st.figures["restart_s"] = round(_restart(ctx, st.facts["owner"], st.facts["via"]), 1)


def _resume_failback(ctx: StepContext) -> None:
    st = _state(ctx)
    st.figures["resume_failback_s"] = round(
        _resume(ctx, st.facts["owner"], st.facts["via"], home=True), 1
    )


def _repair_after_maintenance(ctx: StepContext) -> None:
    st = _state(ctx)
    t = _wait_healthy_storage(ctx)
    st.mark(ctx, "storage healthy, repair done", t)
    st.figures["storage_repair_s"] = round(t - st.facts["returned_at"], 1)


# -- rolling-update --------------------------------------------------------------------------------


def _order(ctx: StepContext) -> list[str]:
    """CAU's default order: the nodes hosting the fewest roles first (CAU FAQ)."""
    view = _view(ctx)
    via = view.control()
    owners = [text(val(g, "OwnerNode")).lower() for g in view.run(via, "Get-ClusterGroup")]
    names = [n.name for n in ctx.lab.nodes]
    return sorted(names, key=lambda n: (owners.count(n.lower()), names.index(n)))


def _rolling_restart(ctx: StepContext) -> None:
    st = _state(ctx)
    for node in _order(ctx):
        via = _view(ctx).control(avoid=node)
        row: dict[str, Any] = {"node": node}
        start = st.now()
        row["drain_s"] = round(_drain(ctx, node, via), 1)
        row["restart_s"] = round(_restart(ctx, node, via), 1)
        row["resume_s"] = round(_resume(ctx, node, via, home=False), 1)
        t = _wait_healthy_storage(ctx)
        st.mark(ctx, f"storage healthy after {node}", t)
        row["repair_s"] = round(t - st.facts["returned_at"], 1)
        row["total_s"] = round(t - start, 1)
        st.per_node.append(row)
    st.figures["nodes_updated"] = len(st.per_node)


def _stage_updates(ctx: StepContext) -> None:
    """Copy the packages of `updates:` from the host into a share on the DC, with what
    the hotfix plug-in needs around them (R-111, R-112)."""
    lab, st = ctx.lab, _state(ctx)
    dc = lab.dc.name
    dc_on_host = lab.dc.host_name
    files = [
        f
        for f in ctx.host.run("Get-ChildItem", Path=lab.updates, File=True, **SILENT)
        if text(val(f, "Name")).lower().endswith(EXTENSIONS)
    ]
    if not files:
        raise StepError(
            "stage updates",
            f"no .msu, .msi or .msp files in {lab.updates} on the host (updates: in the lab file)",
        )
    view = _view(ctx)
    gsi = first(
        ctx.host.run("Get-VMIntegrationService", VMName=dc_on_host, Name="Guest Service Interface")
    )
    if val(gsi, "Enabled") is not True:
        ctx.change(
            f"Enable-VMIntegrationService {dc_on_host} 'Guest Service Interface' (for Copy-VMFile)",
            lambda: ctx.host.run(
                "Enable-VMIntegrationService", VMName=dc_on_host, Name="Guest Service Interface"
            ),
        )
    for f in files:
        name = text(val(f, "Name"))
        dest = f"{SHARE_FOLDER}\\CAUHotfix_All\\{name}"
        ctx.change(
            f"Copy-VMFile {name} -> {dc_on_host}:{dest}",
            lambda n=name, d=dest: ctx.host.run(
                "Copy-VMFile",
                Name=dc_on_host,
                SourcePath=f"{lab.updates}\\{n}",
                DestinationPath=d,
                FileSource="Host",
                CreateFullPath=True,
                Force=True,
            ),
        )
    tools = first(view.run(dc, "Get-WindowsFeature", Name="RSAT-Clustering-PowerShell"))
    if text(val(tools, "InstallState")) != "Installed":
        # The update coordinator runs the CAU cmdlets; it is not a node.
        ctx.change(
            f"Install-WindowsFeature RSAT-Clustering-PowerShell on {dc} (the update coordinator)",
            lambda: view.run(dc, "Install-WindowsFeature", Name=["RSAT-Clustering-PowerShell"]),
        )
    config = f"{SHARE_FOLDER}\\DefaultHotfixConfig.xml"
    if view.run(dc, "Test-Path", Path=config) != [True]:
        ctx.change(
            f"copy DefaultHotfixConfig.xml into {SHARE_FOLDER}",
            lambda: view.run(
                dc,
                "Copy-Item",
                Path=f"{CAU_MODULE}\\DefaultHotfixConfig.xml",
                Destination=SHARE_FOLDER,
            ),
        )
    if first(view.run(dc, "Get-SmbShare", Name=SHARE, **SILENT)) is None:
        ctx.change(
            f"New-SmbShare {SHARE} on {dc} (encrypted, read by everyone, written by admins)",
            lambda: view.run(
                dc,
                "New-SmbShare",
                Name=SHARE,
                Path=SHARE_FOLDER,
                FullAccess=["BUILTIN\\Administrators"],
                ReadAccess=["Everyone"],
                EncryptData=True,
            ),
        )
    st.figures["update_packages"] = len(files)
    st.mark(ctx, f"{len(files)} package(s) on \\\\{dc}\\{SHARE}")


def _cau_run(ctx: StepContext) -> None:
    lab, st, view = ctx.lab, _state(ctx), _view(ctx)
    dc = lab.dc.name
    run = {
        "ClusterName": lab.cluster.name,
        "CauPluginName": ["Microsoft.HotfixPlugin"],
        "CauPluginArguments": [
            {"HotfixRootFolderPath": f"\\\\{dc}\\{SHARE}", "RequireSmbEncryption": "True"}
        ],
        "MaxFailedNodes": 0,
        "MaxRetriesPerNode": 1,
        "RequireAllNodesOnline": True,
        "EnableFirewallRules": True,
        "Force": True,
    }
    t0 = st.now()
    rows = ctx.change(
        f"Invoke-CauRun {lab.cluster.name} with Microsoft.HotfixPlugin from {dc}",
        lambda: view.guest(dc).script("Invoke-CauRunByNode.ps1", Run=run),
    )
    st.mark(ctx, "Cluster-Aware Updating run finished")
    st.figures["cau_run_s"] = round(st.now() - t0, 1)
    failed = []
    for r in rows or []:
        marks = {}
        for key in ("Started", "Drained", "Installed", "Restarted", "Resumed", "Repaired"):
            with contextlib.suppress(ValueError):
                marks[key] = ps_datetime(val(r, key))
        row: dict[str, Any] = {
            "node": text(val(r, "Node")).lower(),
            "status": text(val(r, "Status")),
        }
        row["updates"] = text(val(r, "Updates"))
        spans = [
            ("drain_s", "Started", "Drained"),
            ("install_s", "Drained", "Installed"),
            ("restart_s", "Installed", "Restarted"),
            ("resume_s", "Restarted", "Resumed"),
            ("repair_s", "Restarted", "Repaired"),  # the resync runs from its return
        ]
        for key, a, b in spans:
            if a in marks and b in marks:
                row[key] = round((marks[b] - marks[a]).total_seconds(), 1)
        st.per_node.append(row)
        if row["status"] not in ("Succeeded", "NoUpdates"):
            failed.append(f"{row['node']} {row['status']}")
    st.expect(
        "every node updated",
        bool(rows) and not failed,
        ", ".join(failed) or f"{len(rows or [])} node result(s)",
    )


# -- disk-failure -------------------------------------------------------------------------------------


def _detach_drive(ctx: StepContext) -> None:
    st = _state(ctx)
    owner = st.facts["owner"]
    # A node that does not host the HA VM: the drill is about the storage alone.
    node = next((n for n in ctx.lab.nodes if n.name.lower() != owner), ctx.lab.nodes[0])
    path = ctx.lab.data_disk_paths(node)[0]
    drive = next(
        (
            d
            for d in ctx.host.run("Get-VMHardDiskDrive", VMName=node.host_name)
            if text(val(d, "Path")).lower() == path.lower()
        ),
        None,
    )
    if drive is None:
        raise StepError("detach", f"{path} is not attached to {node.host_name}")
    where = {
        "ControllerType": "SCSI",
        "ControllerNumber": int(val(drive, "ControllerNumber", 0) or 0),
        "ControllerLocation": int(val(drive, "ControllerLocation", 0) or 0),
    }
    st.facts.update(disk_node=node.name, disk_path=path, disk_where=where)
    ctx.change(
        f"Remove-VMHardDiskDrive {node.host_name} {path} (a drive pulled)",
        lambda: ctx.host.run("Remove-VMHardDiskDrive", VMName=node.host_name, **where),
    )
    st.facts["t_pulled"] = st.mark(ctx, f"{path} detached from {node.name}")


def _degraded_online(ctx: StepContext) -> None:
    st, view = _state(ctx), _view(ctx)

    def degraded() -> tuple[bool, str]:
        s = view.storage(view.control())
        return s.health != "Healthy", f"virtual disks {s.health} ({', '.join(s.operational)})"

    t = wait_for(ctx, "the pool to report the missing drive", degraded, DETECT_DEADLINE)
    st.mark(ctx, "pool and virtual disks degraded", t)
    st.figures["degraded_seen_s"] = round(t - st.facts["t_pulled"], 1)
    via = view.control()
    storage = view.storage(via)
    csvs = {
        text(val(c, "Name")): text(val(c, "State"))
        for c in view.run(via, "Get-ClusterSharedVolume")
    }
    lost = [
        d
        for d in view.run(via, "Get-PhysicalDisk")
        if text(val(d, "OperationalStatus")) == "Lost Communication"
    ]
    st.expect(
        "the virtual disks Degraded",
        "Degraded" in storage.operational,
        ", ".join(storage.operational),
    )
    st.expect("the pool not Healthy", storage.pool_health != "Healthy", storage.pool_health)
    st.expect(
        "every volume online",
        bool(csvs) and all(s == "Online" for s in csvs.values()),
        ", ".join(f"{n} {s}" for n, s in csvs.items()),
    )
    st.expect("the pulled drive shown as Lost Communication", len(lost) >= 1, f"{len(lost)}")
    ha = _ha(ctx, via)
    st.expect(f"{ha.name} online", ha.state == "Online" and ha.vm_state == "Running", ha.state)


def _reattach_drive(ctx: StepContext) -> None:
    st = _state(ctx)
    node, path, where = st.facts["disk_node"], st.facts["disk_path"], st.facts["disk_where"]
    on_host = ctx.lab.on_host(node)
    ctx.change(
        f"Add-VMHardDiskDrive {on_host} {path}",
        lambda: ctx.host.run("Add-VMHardDiskDrive", VMName=on_host, Path=path, **where),
    )
    st.facts["returned_at"] = st.mark(ctx, f"{path} attached again")
    t = _wait_healthy_storage(ctx)
    st.mark(ctx, "storage healthy, repair done", t)
    st.figures["storage_repair_s"] = round(t - st.facts["returned_at"], 1)
    _no_downtime(ctx)


# -- network ------------------------------------------------------------------------------------------


def _storage_nic(ctx: StepContext, node: str) -> tuple[str, str, str]:
    """(adapter name, its switch on the host, the subnet address) of a node's first
    storage NIC: the first NIC is management, the next ones storage."""
    vm = ctx.lab.vm(node)
    if len(vm.nics) < 2:
        raise StepError("network", f"{node} has no storage NIC to disconnect")
    nic = vm.nics[1]
    sw = ctx.lab.switch(nic.switch)
    return nic.name, sw.host_name, str(sw.subnet.network_address)


def _disconnect_nic(ctx: StepContext) -> None:
    st = _state(ctx)
    owner = st.facts["owner"]
    node = next(v.name for v in ctx.lab.nodes if v.name.lower() == owner)
    name, switch, subnet = _storage_nic(ctx, node)
    st.facts.update(nic_node=node, nic_name=name, nic_switch=switch, nic_subnet=subnet)
    on_host = ctx.lab.on_host(node)
    ctx.change(
        f"Disconnect-VMNetworkAdapter {on_host}/{name}",
        lambda: ctx.host.run("Disconnect-VMNetworkAdapter", VMName=on_host, Name=name),
    )
    st.facts["t_cut"] = st.mark(ctx, f"{node}/{name} disconnected from {switch}")


def _interface_states(ctx: StepContext, via: str) -> dict[tuple[str, str], str]:
    view = _view(ctx)
    nets = {
        text(val(n, "Name")): text(val(n, "Address")) for n in view.run(via, "Get-ClusterNetwork")
    }
    return {
        (text(val(i, "Node")).lower(), nets.get(text(val(i, "Network")), "")): text(val(i, "State"))
        for i in view.run(via, "Get-ClusterNetworkInterface")
    }


def _loss_noticed(ctx: StepContext) -> None:
    st, view = _state(ctx), _view(ctx)
    node, subnet = st.facts["nic_node"].lower(), st.facts["nic_subnet"]

    def failed() -> tuple[bool, str]:
        state = _interface_states(ctx, view.control()).get((node, subnet), "?")
        return state in ("Failed", "Unreachable"), f"{node} on {subnet}: {state}"

    t = wait_for(
        ctx, f"the cluster to see {node}'s storage interface fail", failed, DETECT_DEADLINE
    )
    st.mark(ctx, f"{node}'s interface on {subnet} Failed", t)
    st.figures["loss_detected_s"] = round(t - st.facts["t_cut"], 1)


def _stay_up(ctx: StepContext) -> None:
    st, view = _state(ctx), _view(ctx)
    via = view.control()
    states = view.node_states(via)
    st.expect(
        "every node Up",
        all(s == "Up" for s in states.values()),
        ", ".join(f"{n} {s}" for n, s in sorted(states.items())),
    )
    ha = _ha(ctx, via)
    st.expect(
        f"{ha.name} online where it was",
        ha.state == "Online" and ha.owner == st.facts["owner"] and ha.vm_state == "Running",
        f"{ha.state} on {ha.owner}",
    )
    storage = view.storage(via)
    st.facts["storage_during_cut"] = storage.health
    ctx.ok(f"nodes Up, {ha.name} Online on {ha.owner}, storage {storage.health}")


def _reconnect_nic(ctx: StepContext) -> None:
    st, view = _state(ctx), _view(ctx)
    node, name, switch = st.facts["nic_node"], st.facts["nic_name"], st.facts["nic_switch"]
    on_host = ctx.lab.on_host(node)
    ctx.change(
        f"Connect-VMNetworkAdapter {on_host}/{name} -> {switch}",
        lambda: ctx.host.run(
            "Connect-VMNetworkAdapter", VMName=on_host, Name=name, SwitchName=switch
        ),
    )
    st.facts["returned_at"] = st.mark(ctx, f"{node}/{name} reconnected")

    def up() -> tuple[bool, str]:
        states = _interface_states(ctx, view.control())
        bad = {k: v for k, v in states.items() if v != "Up"}
        return not bad, ", ".join(f"{n} {s}: {v}" for (n, s), v in bad.items()) or "all Up"

    t = wait_for(ctx, "every cluster network interface to be Up", up, DETECT_DEADLINE)
    st.mark(ctx, "every network interface Up", t)
