"""What a drill reads about the lab while it runs: which node answers cluster calls,
the nodes' states, the HA VM (owner, state, uptime), the storage (virtual disks,
repair jobs), and the lab's health as one list of problems.

Every read is a cmdlet inside a node through hvlab.guest (PowerShell Direct with the
domain account, R-47) or a Hyper-V cmdlet on the host; nothing here changes the lab.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from hvlab.errors import HostError
from hvlab.guest import Guest
from hvlab.status import seconds as timespan_seconds
from hvlab.steps.common import SILENT, first, text, val

_DT = re.compile(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def ps_datetime(value: Any) -> dt.datetime:
    """A DateTime as pypsrp hands it over (ISO 8601 text with up to 7 decimals)."""
    if isinstance(value, dt.datetime):
        return value
    match = _DT.match(text(value).strip())
    if not match:
        raise ValueError(f"not a DateTime: {value!r}")
    base, frac, zone = match.groups()
    stamp = base + (f".{(frac or '0')[:6]:0<6}") + ({"Z": "+00:00"}.get(zone or "", zone or ""))
    parsed = dt.datetime.fromisoformat(stamp)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclasses.dataclass
class HaVM:
    name: str
    state: str  # the cluster group's state
    owner: str
    vm_state: str = ""  # Hyper-V's, on the owner
    uptime: float | None = None


@dataclasses.dataclass
class Storage:
    health: str  # worst HealthStatus of the virtual disks
    operational: list[str]
    jobs: int  # running repair jobs
    pool_health: str


class LabView:
    """Reads of one lab during a drill, with a node that answers cluster calls."""

    def __init__(self, spec: Any, host: Any, creds: Any) -> None:
        self.spec = spec
        self.host = host
        self.creds = creds
        self.nodes = [n.name for n in spec.nodes]

    def guest(self, vm: str) -> Guest:
        return Guest(self.host, vm, self.creds.domain_admin, self.spec.on_host(vm))

    def run(self, vm: str, cmdlet: str, **params: Any) -> list[Any]:
        return self.guest(vm).run(cmdlet, **params)

    # -- which node to ask ----------------------------------------------------------

    def vm_states(self) -> dict[str, str]:
        """The nodes' VM states by lower-case computer name (the host knows them by
        their host names, R-145)."""
        found = self.host.run("Get-VM", Name=[self.spec.on_host(n) for n in self.nodes], **SILENT)
        out: dict[str, str] = {}
        for v in found:
            vm = self.spec.by_host_name(text(val(v, "Name")))
            if vm is not None:
                out[vm.name.lower()] = text(val(v, "State"))
        return out

    def control(self, avoid: str | None = None) -> str:
        """A running node other than `avoid` whose cluster service answers."""
        states = self.vm_states()
        for node in self.nodes:
            if avoid and node.lower() == avoid.lower():
                continue
            if states.get(node.lower()) != "Running":
                continue
            try:
                # Get-Cluster answers from the node's cluster service and, unlike the
                # node and role queries, does not wait for anything due.
                self.run(node, "Get-Cluster")
            except HostError:
                continue
            return node
        raise HostError(
            "no cluster node answers cluster calls" + (f" (besides {avoid})" if avoid else ""),
        )

    # -- facts ----------------------------------------------------------------------

    def node_states(self, via: str) -> dict[str, str]:
        return {
            text(val(n, "Name")).lower(): text(val(n, "State"))
            for n in self.run(via, "Get-ClusterNode")
        }

    def ha_vm(self, via: str, name: str) -> HaVM:
        grp = first(self.run(via, "Get-ClusterGroup", Name=name, **SILENT))
        if grp is None:
            return HaVM(name, "Missing", "")
        ha = HaVM(name, text(val(grp, "State")), text(val(grp, "OwnerNode")).lower())
        if ha.owner and ha.state == "Online":
            try:
                vm = first(self.run(ha.owner, "Get-VM", Name=name, **SILENT))
            except HostError:
                vm = None
            if vm is not None:
                ha.vm_state = text(val(vm, "State"))
                ha.uptime = timespan_seconds(val(vm, "Uptime"))
        return ha

    def storage(self, via: str) -> Storage:
        vds = [v for v in self.run(via, "Get-VirtualDisk") if text(val(v, "FriendlyName")) != ""]
        healths = [text(val(v, "HealthStatus")) for v in vds]
        order = ["Unhealthy", "Warning", "Unknown", "Healthy"]
        worst = min(healths or ["Healthy"], key=lambda h: order.index(h) if h in order else 0)
        jobs = [j for j in self.run(via, "Get-StorageJob") if text(val(j, "JobState")) == "Running"]
        pool = first(self.run(via, "Get-StoragePool", IsPrimordial=False, **SILENT))
        return Storage(
            worst,
            sorted({text(val(v, "OperationalStatus")) for v in vds}),
            len(jobs),
            text(val(pool, "HealthStatus")) or "Missing",
        )

    def problems(self) -> list[str]:
        """What keeps the lab from being healthy for a drill: every lab VM running,
        every node Up, every HA VM Online and running, the pool and every virtual disk
        Healthy with no repair running, every CSV online. Empty when healthy."""
        out: list[str] = []
        states = {text(val(v, "Name")).lower(): text(val(v, "State")) for v in self._lab_vms()}
        for vm in self.spec.vms:
            state = states.get(vm.host_name.lower(), "Missing")
            if state != "Running":
                out.append(f"VM {vm.host_name} is {state}")
        if out:
            return out
        for vm in self.spec.nodes:
            for adapter in self.host.run("Get-VMNetworkAdapter", VMName=vm.host_name):
                if not text(val(adapter, "SwitchName")):
                    out.append(
                        f"adapter {text(val(adapter, 'Name'))} of {vm.host_name} is disconnected"
                    )
            attached = {
                text(val(d, "Path")).lower()
                for d in self.host.run("Get-VMHardDiskDrive", VMName=vm.host_name)
            }
            for path in self.spec.data_disk_paths(vm):
                if path.lower() not in attached:
                    out.append(f"{path} is not attached to {vm.host_name}")
        try:
            via = self.control()
        except HostError as err:
            return [str(err)]
        for node, state in self.node_states(via).items():
            if state != "Up":
                out.append(f"cluster node {node} is {state}")
        for spec in self.spec.ha_vms:
            ha = self.ha_vm(via, spec.name)
            if ha.state != "Online" or ha.vm_state != "Running":
                out.append(
                    f"HA VM {spec.name} is {ha.state}"
                    + (f" on {ha.owner}" if ha.owner else "")
                    + (f", VM {ha.vm_state}" if ha.vm_state and ha.vm_state != "Running" else "")
                )
        st = self.storage(via)
        if st.pool_health != "Healthy":
            out.append(f"the storage pool is {st.pool_health}")
        if st.health != "Healthy" or st.operational != ["OK"]:
            out.append(
                f"virtual disks are {st.health} ({', '.join(st.operational) or 'none found'})"
            )
        if st.jobs:
            out.append(f"{st.jobs} storage repair job(s) still running")
        for net in self.run(via, "Get-ClusterNetwork"):
            if text(val(net, "State")) != "Up":
                out.append(f"cluster network {text(val(net, 'Name'))} is {text(val(net, 'State'))}")
        for csv in self.run(via, "Get-ClusterSharedVolume"):
            if text(val(csv, "State")) != "Online":
                out.append(f"{text(val(csv, 'Name'))} is {text(val(csv, 'State'))}")
        return out

    def _lab_vms(self) -> list[Any]:
        return self.host.run("Get-VM", Name=[vm.host_name for vm in self.spec.vms], **SILENT)
