"""Failover clusters: nodes, groups, resources, networks, quorum, S2D pool, CSVs
and highly available VMs (R-47..R-59, R-62..R-69).

A cluster lives in `world.clusters` (name lower-case -> Cluster). Node state is
derived, not stored: a node is Up when its guest is ready and still carries this
cluster's configuration (R-53). `refresh()` applies what follows from the nodes'
states: clustered VMs of a node that went down fail over to a node that is Up.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from hvsim.model.s2d import StoragePool


@dataclasses.dataclass
class Network:
    name: str
    address: str  # the subnet address, e.g. 10.0.0.0
    prefix: int
    role: int  # 0 None, 1 Cluster, 3 ClusterAndClient
    id: str

    @property
    def role_name(self) -> str:
        return {0: "None", 1: "Cluster", 3: "ClusterAndClient"}.get(self.role, "None")


@dataclasses.dataclass
class Group:
    name: str
    group_type: str  # Cluster, AvailableStorage, VirtualMachine, ClusterStoragePool
    owner: str  # node computer name
    core: bool = False
    # What the group should be: Online or Offline; failover restores Online groups.
    wanted: str = "Online"
    vm_id: str | None = None  # for VirtualMachine groups
    failed: bool = False
    id: str = ""


@dataclasses.dataclass
class Resource:
    name: str
    resource_type: str
    group: str
    id: str = ""


@dataclasses.dataclass(eq=False)
class Cluster:
    name: str
    domain: str  # FQDN
    netbios: str
    address: str | None
    nodes: list[str]  # computer names in join order
    id: str
    created: float
    networks: list[Network] = dataclasses.field(default_factory=list)
    groups: list[Group] = dataclasses.field(default_factory=list)
    resources: list[Resource] = dataclasses.field(default_factory=list)
    witness: str | None = None  # \\server\share of a file share witness
    pool: StoragePool | None = None
    s2d_enabled: bool = False
    # CSV in-memory read cache per node, MB: 1 GiB by default since Windows Server 2019
    # (windowsserverdocs storage-spaces/csv-cache.md); (Get-Cluster).BlockCacheSize.
    block_cache_size: int = 1024
    # Storage Health Service settings set on the clustered subsystem; a name
    # not set here has its default.
    health_settings: dict[str, str] = dataclasses.field(default_factory=dict)
    # The core resources (IP address, name, witness) are Failed until this modelled
    # time: a node's management network dropped under them.
    core_failed_until: float = 0.0
    # What the cluster logged, newest last (System log, FailoverClustering source).
    events: list[str] = dataclasses.field(default_factory=list)

    # -- lookups ------------------------------------------------------------------

    def node_guest(self, world: Any, name: str) -> Any:
        from hvsim.model.guest import GuestOS

        for m in world.machines():
            if isinstance(m, GuestOS) and m.name.lower() == name.lower():
                return m
        return None

    def node_state(self, world: Any, name: str) -> str:
        g = self.node_guest(world, name)
        if g is None or g.cluster_config != self.name or not g.is_ready():
            return "Down"
        return "Up"

    def up_nodes(self, world: Any) -> list[str]:
        return [n for n in self.nodes if self.node_state(world, n) == "Up"]

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name.lower() == name.lower()), None)

    def network_by_address(self, address: str) -> Network | None:
        return next((n for n in self.networks if n.address == address), None)

    def quorum_state(self, world: Any) -> str:
        """R-58: the witness is Online only if the share exists and grants the CNO."""
        if self.witness is None:
            return "Offline"
        from hvsim.cmdlets.smb import find_share

        found = find_share(world, self.witness)
        if found is None:
            return "Failed"
        _, share = found
        return "Online" if share.grants(f"{self.netbios}\\{self.name}$") else "Failed"

    def vm_of(self, world: Any, group: Group) -> tuple[Any, Any] | None:
        """(node guest, VM) holding the group's VM, wherever it is now."""
        for n in self.nodes:
            g = self.node_guest(world, n)
            if g is None or g.hyperv is None:
                continue
            for vm in g.hyperv.vms:
                if str(vm.id) == group.vm_id:
                    return g, vm
        return None

    def group_state(self, world: Any, group: Group) -> str:
        if group.failed:
            return "Failed"
        if group.group_type == "VirtualMachine":
            found = self.vm_of(world, group)
            if found is None:
                return "Failed"
            state = found[1].state
            return {"Running": "Online", "Off": "Offline", "Saved": "Offline"}.get(state, "Pending")
        if group.group_type == "AvailableStorage":
            return "Offline"
        return "Online" if self.up_nodes(world) else "Offline"

    def management_network_dropped(self, world: Any, node: str) -> None:
        """A node's management address moved to a new vSwitch's vNIC: its network
        went away for a moment under the core resources, which fail and restart
        (R-70; modelled, the real length of the gap is timing-dependent)."""
        now = float(world.clock.now())
        from hvsim import timing

        self.core_failed_until = max(
            self.core_failed_until, now + timing.seconds("cluster.core_recover")
        )
        guest = self.node_guest(world, node)
        for r in self.resources:
            if r.group == "Cluster Group":
                # Event 1069 of FailoverClustering: a resource in a role failed.
                text = (
                    f"Cluster resource '{r.name}' of type '{r.resource_type}' in "
                    f"clustered role 'Cluster Group' failed."
                )
                self.events.append(f"1069: {text[:-1]} (network on {node} changed).")
                # The node whose network changed logs it in its System log.
                if guest is not None:
                    guest.event(
                        "System", "Microsoft-Windows-FailoverClustering", 1069, "Error", text
                    )

    @property
    def auto_replace(self) -> bool:
        """System.Storage.PhysicalDisk.AutoReplace.Enabled, on unless set to False (R-62)."""
        value = self.health_settings.get("System.Storage.PhysicalDisk.AutoReplace.Enabled")
        return value is None or value.strip().lower() != "false"

    def core_failed(self, world: Any) -> bool:
        return float(world.clock.now()) < self.core_failed_until

    # -- what follows from node states ------------------------------------------------

    def refresh(self, world: Any) -> None:
        """Fail clustered VMs over from nodes that are Down to a node that is Up (R-69)."""
        up = self.up_nodes(world)
        if not up:
            return
        if self.pool is not None:
            # A CSV's coordinator moves off a node that went down.
            for vd in self.pool.virtual_disks:
                if vd.csv_owner not in up:
                    vd.csv_owner = up[0]
        for group in self.groups:
            if group.owner in up:
                self._bring_online(world, group)
                continue
            target = up[0]
            if group.group_type == "VirtualMachine":
                self._fail_over(world, group, target)
            group.owner = target

    def storage_degraded(self, world: Any) -> bool:
        """With a member node Down its disks are missing: the pool and the mirrors are
        Degraded until it is back (modelled; docs/model-notes.md)."""
        if self.pool is None:
            return False
        from hvsim.model.s2d import disk_state

        up = set(self.up_nodes(world))
        return any(node not in up or disk_state(v).retired for node, v in self.pool.members)

    def _bring_online(self, world: Any, group: Group) -> None:
        """A VM group that should be Online but whose VM went off with its node's reboot
        is started again by the cluster on its (Up again) owner."""
        if group.group_type != "VirtualMachine" or group.wanted != "Online" or group.failed:
            return
        found = self.vm_of(world, group)
        if found is None:
            return
        node, vm = found
        if vm.state == "Off" and node.name == group.owner:
            if vm.memory_startup > node.memory_free():
                group.failed = True
                return
            vm.state = "Running"
            vm.started_at = world.clock.now()

    def _fail_over(self, world: Any, group: Group, target: str) -> None:
        found = self.vm_of(world, group)
        dest = self.node_guest(world, target)
        if found is None or dest is None or dest.hyperv is None:
            group.failed = True
            return
        src, vm = found
        src.hyperv.vms.remove(vm)
        dest.hyperv.vms.append(vm)
        vm.host_name = dest.name
        vm.state, vm.started_at = "Off", None
        if group.wanted == "Online":
            # The VM restarts on the surviving node: a fresh boot, Uptime from zero.
            if vm.memory_startup > dest.memory_free():
                group.failed = True
                return
            vm.state = "Running"
            vm.started_at = world.clock.now()

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "nodes": sorted(self.nodes),
            "groups": sorted(g.name for g in self.groups),
            "witness": self.witness,
            "pool": self.pool.friendly_name if self.pool else None,
            "volumes": sorted(v.friendly_name for v in self.pool.virtual_disks)
            if self.pool
            else [],
        }


def subnets_of(guest: Any) -> list[tuple[ipaddress.IPv4Network, bool]]:
    """(subnet, has default gateway) for each static IPv4 address of a node."""
    out = []
    for ad in guest.net.adapters:
        for ip in ad.ips:
            if ip.family != "IPv4" or ip.address.startswith("169.254."):
                continue
            net = ipaddress.IPv4Network(f"{ip.address}/{ip.prefix_length}", strict=False)
            out.append((net, bool(ad.gateway)))
    return out


def discover_networks(world: Any, guests: list[Any]) -> list[Network]:
    """R-59: one cluster network per subnet; with a default gateway it serves clients."""
    seen: dict[ipaddress.IPv4Network, bool] = {}
    for g in guests:
        for net, gw in subnets_of(g):
            seen[net] = seen.get(net, False) or gw
    out = []
    for i, (net, gw) in enumerate(
        sorted(seen.items(), key=lambda kv: int(kv[0].network_address)), 1
    ):
        out.append(
            Network(
                f"Cluster Network {i}",
                str(net.network_address),
                net.prefixlen,
                3 if gw else 1,
                str(world.new_uuid()),
            )
        )
    return out


def cluster_of(world: Any, guest: Any) -> Cluster | None:
    name = getattr(guest, "cluster_config", None)
    if not name:
        return None
    return world.clusters.get(name.lower())
