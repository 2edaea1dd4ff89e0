"""Failover clusters: nodes, groups, resources, networks, quorum, S2D pool, CSVs
and highly available VMs (R-47..R-59, R-62..R-69).

A cluster lives in `world.clusters` (name lower-case -> Cluster). Node state is
derived, not stored: a node is Up when its guest is ready, still carries this
cluster's configuration (R-53) and reaches the others over at least one cluster
network. A node that vanishes without saying goodbye (a power cut, every network
gone) stays Up until its heartbeats have been missed for SameSubnetDelay x
SameSubnetThreshold (R-105); its VMs then wait out the resiliency period before
they restart elsewhere, as the group's failover policy allows (R-106). `refresh()`
applies what follows from the nodes' states. A paused node keeps its membership
but takes no roles (R-107). Storage repairs after a node or disk returns live in
hvsim.model.s2d (R-108).
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
    # Heartbeats: every SameSubnetDelay ms; a route is declared unreachable
    # after SameSubnetThreshold are missed. Windows Server 2016 and later: 1000 x 10.
    same_subnet_delay_ms: int = 1000
    same_subnet_threshold: int = 10
    # Compute resiliency: 2 = AlwaysIsolate; a lost node's VMs stay put
    # (Unmonitored) for ResiliencyDefaultPeriod seconds before they fail over.
    resiliency_level: int = 2
    resiliency_default_period: int = 240
    # node -> modelled time its heartbeats stopped without a clean leave.
    heartbeat_lost: dict[str, float] = dataclasses.field(default_factory=dict)
    # "NODE|subnet" -> modelled time that node's adapter on that network lost its link.
    link_down: dict[str, float] = dataclasses.field(default_factory=dict)
    # Paused nodes -> the groups a drain moved off them, for failback.
    paused: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # A drain that could not finish leaves DrainStatus Failed on the node; one that did,
    # Completed (until the node is resumed).
    drain_failed: list[str] = dataclasses.field(default_factory=list)
    drain_completed: list[str] = dataclasses.field(default_factory=list)
    # group name -> times it failed over, for FailoverThreshold/FailoverPeriod.
    failovers: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    # Storage: pool members away ("NODE" or "disk:<UniqueId>" -> since) and
    # the end of the repair (resync) that runs once they are back.
    members_away: dict[str, float] = dataclasses.field(default_factory=dict)
    repair_start: float = 0.0
    repair_until: float = 0.0

    # -- lookups ------------------------------------------------------------------

    def node_guest(self, world: Any, name: str) -> Any:
        # A node's name resolves in the cluster's domain (R-145: labs side by side).
        return world.guest_named(name, self.domain)

    @property
    def heartbeat_timeout(self) -> float:
        """Seconds of silence before a route (and a node with no route left) is
        declared unreachable: SameSubnetDelay x SameSubnetThreshold (R-105)."""
        return self.same_subnet_delay_ms / 1000.0 * self.same_subnet_threshold

    def node_alive(self, world: Any, name: str) -> bool:
        """The node's OS runs and still carries this cluster's configuration."""
        g = self.node_guest(world, name)
        # Stop-Cluster stops the cluster service on every node: they are Down until it
        # runs again (Start-Cluster, or the next boot: the service starts automatically).
        return (
            g is not None
            and g.cluster_config == self.name
            and g.is_ready()
            and g.services.get("ClusSvc") == "Running"
        )

    def node_connected(self, world: Any, name: str) -> bool:
        """Alive and reaching the others over at least one cluster network (R-105)."""
        if not self.node_alive(world, name):
            return False
        if not self.networks:
            return True
        g = self.node_guest(world, name)
        return any(network_link_up(g, n.address, n.prefix) for n in self.networks)

    def node_state(self, world: Any, name: str) -> str:
        now = float(world.clock.now())
        if self.node_connected(world, name):
            self.heartbeat_lost.pop(name, None)
            return "Paused" if name in self.paused else "Up"
        lost = self.heartbeat_lost.get(name)
        if lost is not None and now < lost + self.heartbeat_timeout:
            # the others have not missed enough heartbeats yet.
            return "Paused" if name in self.paused else "Up"
        return "Down"

    def isolated(self, world: Any, name: str) -> bool:
        """R-106: Down by heartbeat loss, and still inside its resiliency period."""
        lost = self.heartbeat_lost.get(name)
        if lost is None or self.resiliency_level != 2 or self.node_state(world, name) != "Down":
            return False
        return (
            float(world.clock.now())
            < lost + self.heartbeat_timeout + self.resiliency_default_period
        )

    def up_nodes(self, world: Any) -> list[str]:
        """Nodes that can take roles: Up, not paused."""
        return [n for n in self.nodes if self.node_state(world, n) == "Up"]

    def member_nodes(self, world: Any) -> list[str]:
        """Nodes in the active membership: Up or Paused (R-107)."""
        return [n for n in self.nodes if self.node_state(world, n) in ("Up", "Paused")]

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name.lower() == name.lower()), None)

    def network_by_address(self, address: str) -> Network | None:
        return next((n for n in self.networks if n.address == address), None)

    def quorum_state(self, world: Any) -> str:
        """R-58: the witness is Online only if the share exists and grants the CNO."""
        if self.witness is None:
            return "Offline"
        from hvsim.cmdlets.smb import find_share

        found = find_share(world, self.witness, self.domain)
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
        if group.group_type == "VirtualMachine" and self.isolated(world, group.owner):
            # the VM is Unmonitored on an isolated node; the cluster cannot say.
            return "Unknown"
        if group.group_type == "VirtualMachine":
            found = self.vm_of(world, group)
            if found is None:
                return "Failed"
            state = found[1].state
            return {"Running": "Online", "Off": "Offline", "Saved": "Offline"}.get(state, "Pending")
        if group.group_type == "AvailableStorage":
            return "Offline"
        return "Online" if self.member_nodes(world) else "Offline"

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

    def refresh(self, world: Any, wait: str | None = None) -> None:
        """Apply what follows from the nodes' states: storage members away or back
        (R-108), lost nodes detected (R-105), their VMs failed over once the
        resiliency period is over and the failover policy allows (R-106), VMs of a
        node that came back restarted there.

        A read that polls for something due waits for it (`wait`: "nodes" for node and
        role states, "links" for networks, "storage" for the repair): at timescale 0
        the clock goes to the next such moment, so a poll sees the cluster as it is
        then; a change made meanwhile (Resume-ClusterNode) does not wait."""
        self._track_storage(world)
        due = self._next_event(world, wait) if wait else None
        if due is not None:
            world.clock.advance_to(due)
            self._track_storage(world)
        up = self.up_nodes(world)
        members = self.member_nodes(world)
        if not members:
            return
        if self.pool is not None:
            # A CSV's coordinator moves off a node that went down.
            for vd in self.pool.virtual_disks:
                if vd.csv_owner not in members:
                    vd.csv_owner = members[0]
        now = float(world.clock.now())
        for group in self.groups:
            if group.owner in members:
                self._bring_online(world, group)
                continue
            if group.group_type == "VirtualMachine" and self.isolated(world, group.owner):
                continue  # Unmonitored until the resiliency period is over
            if not up:
                continue
            lost = self.heartbeat_lost.get(group.owner)
            when = now
            if lost is not None:
                when = lost + self.heartbeat_timeout
                if group.group_type == "VirtualMachine" and self.resiliency_level == 2:
                    when += self.resiliency_default_period
                when = min(when, now)
            target = self.placement(world, exclude=group.owner)
            if group.group_type == "VirtualMachine":
                self._fail_over(world, group, target, when)
            group.owner = target

    def placement(self, world: Any, exclude: str | None = None) -> str:
        """Where a role goes: the Up node that hosts the fewest roles, then node order
        (modelled on the memory-aware placement Microsoft describes for drain)."""
        up = [n for n in self.up_nodes(world) if n != exclude] or self.up_nodes(world)
        load = {n: sum(1 for g in self.groups if g.owner == n) for n in up}
        return min(up, key=lambda n: (load[n], self.nodes.index(n)))

    # -- heartbeats and links (R-105) ------------------------------------------------

    def node_leaving(self, world: Any, name: str, hard: bool) -> None:
        """The node's OS goes away. A clean shutdown stops the cluster service, which
        leaves the membership at once; a power cut or a crash says nothing, and the
        others notice only when its heartbeats stop arriving (R-105)."""
        now = float(world.clock.now())
        if hard:
            if self.node_connected(world, name):
                self.heartbeat_lost[name] = now
            else:
                self.heartbeat_lost.setdefault(name, now)
        else:
            self.heartbeat_lost.pop(name, None)
        if self.pool is not None and any(n == name for n, _ in self.pool.members):
            self.members_away.setdefault(name, now)

    def link_changed(self, world: Any, guest: Any) -> None:
        """A node's adapter lost or got back its link (Disconnect-/Connect-
        VMNetworkAdapter on its host). Routes over that network fail after the
        heartbeat timeout; with no route left the node is lost like a crashed one."""
        now = float(world.clock.now())
        for net in self.networks:
            key = f"{guest.name}|{net.address}"
            if network_link_up(guest, net.address, net.prefix):
                self.link_down.pop(key, None)
            else:
                self.link_down.setdefault(key, now)
        if guest.is_ready() and not self.node_connected(world, guest.name):
            self.heartbeat_lost.setdefault(guest.name, now)
            if self.pool is not None:
                self.members_away.setdefault(guest.name, now)

    def interface_state(self, world: Any, node: str, net: Network) -> str:
        """ClusterNetworkInterface state of a node on a network: Failed once the route
        has been silent for the heartbeat timeout (R-105); Unreachable when no other
        node answers on it (modelled)."""
        g = self.node_guest(world, node)
        if g is None or not self.node_alive(world, node):
            return "Unavailable"
        if not network_link_up(g, net.address, net.prefix):
            since = self.link_down.get(f"{node}|{net.address}")
            if since is not None and float(world.clock.now()) < since + self.heartbeat_timeout:
                return "Up"
            return "Failed"
        peers = [
            n
            for n in self.nodes
            if n != node
            and self.node_alive(world, n)
            and network_link_up(self.node_guest(world, n), net.address, net.prefix)
        ]
        return "Up" if peers else "Unreachable"

    def network_state(self, world: Any, net: Network) -> str:
        states = [self.interface_state(world, n, net) for n in self.nodes]
        live = [s for s in states if s != "Unavailable"]
        if live and all(s == "Up" for s in live):
            return "Up"
        return "Partitioned" if sum(1 for s in live if s == "Up") >= 2 else "Down"

    def _next_event(self, world: Any, kind: str) -> float | None:
        """The next moment something of `kind` is due: a heartbeat timeout or the end of
        a resiliency period ("nodes"), a route's timeout ("links"), the end of a repair
        ("storage")."""
        now = float(world.clock.now())
        times: list[float] = []
        for node, lost in self.heartbeat_lost.items() if kind == "nodes" else ():
            if self.node_connected(world, node):
                continue
            times.append(lost + self.heartbeat_timeout)
            owns_vms = any(
                g.owner == node and g.group_type == "VirtualMachine" and g.wanted == "Online"
                for g in self.groups
            )
            if owns_vms and self.resiliency_level == 2:
                times.append(lost + self.heartbeat_timeout + self.resiliency_default_period)
        if kind == "links":
            times += [t + self.heartbeat_timeout for t in self.link_down.values()]
        if kind == "storage" and not self.members_away:
            times.append(self.repair_until)
        future = [t for t in times if t > now]
        return min(future) if future else None

    # -- storage members and repairs (R-108) -------------------------------------------

    def member_present(self, world: Any, node: str, vhd: Any) -> bool:
        """A pool member is there when its node runs, reaches the cluster and still has
        the disk attached."""
        if not self.node_connected(world, node):
            return False
        g = self.node_guest(world, node)
        return g is not None and any(d.vhd is vhd for d in _attached_disks(g))

    def _track_storage(self, world: Any) -> None:
        """Note members that went away, and start the repair when they are back:
        Storage Spaces resyncs what changed while they were gone (R-108)."""
        if self.pool is None:
            return
        from hvsim import timing
        from hvsim.model.s2d import unique_id

        now = float(world.clock.now())
        for node, vhd in self.pool.members:
            key = f"disk:{unique_id(vhd)}"
            if not self.member_present(world, node, vhd):
                if node not in self.members_away:
                    self.members_away.setdefault(key, now)
                continue
            back: list[float] = []
            for k in (key, node):
                since = self.members_away.pop(k, None)
                if since is not None:
                    back.append(self._returned_at(world, k, node, since, now))
            if back:
                start = max(back)
                end = start + timing.seconds("s2d.repair")
                if end > self.repair_until:
                    self.repair_start = start if self.repair_until <= start else self.repair_start
                    self.repair_until = end

    def _returned_at(self, world: Any, key: str, node: str, since: float, now: float) -> float:
        """When a member came back: a node that rebooted when its OS was ready again
        (the boot's last Ready stage), anything else when it was first seen back."""
        if key != node:
            return now
        g = self.node_guest(world, node)
        ready = [
            s.start
            for s in getattr(g, "timeline", [])
            if s.phase == "Ready" and since < s.start <= now
        ]
        return max(ready) if ready else now

    def storage_health(self, world: Any) -> tuple[str, str]:
        """(HealthStatus, OperationalStatus) of the mirrors: Degraded while a member is
        away, InService while the repair runs (maintain-servers: Warning/InService
        until the repair jobs finish), Healthy/OK after (R-108)."""
        if self.pool is None:
            return "Healthy", "OK"
        from hvsim.model.s2d import disk_state

        self._track_storage(world)
        # A node restored alone from a checkpoint brings back stale disks.
        if self.members_away or any(
            disk_state(v).retired or disk_state(v).stale for _, v in self.pool.members
        ):
            return "Warning", "Degraded"
        if float(world.clock.now()) < self.repair_until:
            return "Warning", "InService"
        return "Healthy", "OK"

    def storage_degraded(self, world: Any) -> bool:
        return self.storage_health(world)[0] != "Healthy"

    def repairing(self, world: Any) -> bool:
        return (
            self.pool is not None
            and not self.members_away
            and (float(world.clock.now()) < self.repair_until)
        )

    # -- VMs ----------------------------------------------------------------------------

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

    def migration_problem(self, world: Any, vm: Any, dest_name: str, live: bool) -> str | None:
        """Why a VM cannot move to `dest_name` now, or None (R-59, R-69, R-70)."""
        dest = self.node_guest(world, dest_name)
        if self.node_state(world, dest_name) != "Up" or dest is None or dest.hyperv is None:
            return f"The destination node '{dest_name}' is not Up."
        if vm.state == "Running" and vm.memory_startup > dest.memory_free():
            return f"Not enough memory in the system on '{dest_name}' to start the virtual machine."
        for a in vm.adapters:
            if a.switch and not dest.hyperv.find_switches(a.switch):
                return (
                    f"The virtual switch '{a.switch}' of network adapter '{a.name}' was not "
                    f"found on '{dest_name}'."
                )
        if live and not any(n.role >= 1 for n in self.networks):
            return (
                "No cluster network is available for live migration (every network has role None)."
            )
        return None

    def move_vm(self, world: Any, group: Group, dest_name: str) -> None:
        """Complete a live or quick migration: the VM keeps running and its Uptime (R-69)."""
        found = self.vm_of(world, group)
        dest = self.node_guest(world, dest_name)
        if found is None or dest is None:
            return
        src, vm = found
        src.hyperv.vms.remove(vm)
        dest.hyperv.vms.append(vm)
        vm.host_name = dest.name
        group.owner = dest.name

    def failover_allowed(self, group: Group, when: float) -> bool:
        """The group's failover policy (R-106): at most FailoverThreshold failovers in
        FailoverPeriod (6 hours); the threshold's default is the node count minus one."""
        window = [t for t in self.failovers.get(group.name, []) if t > when - FAILOVER_PERIOD]
        window.append(when)
        self.failovers[group.name] = window
        return len(window) <= max(1, len(self.nodes) - 1)

    def _fail_over(self, world: Any, group: Group, target: str, when: float | None = None) -> None:
        found = self.vm_of(world, group)
        dest = self.node_guest(world, target)
        if found is None or dest is None or dest.hyperv is None:
            group.failed = True
            return
        src, vm = found
        when = float(world.clock.now()) if when is None else when
        src.hyperv.vms.remove(vm)
        dest.hyperv.vms.append(vm)
        vm.host_name = dest.name
        vm.state, vm.started_at = "Off", None
        if group.wanted == "Online":
            if not self.failover_allowed(group, when):
                # over the threshold the cluster leaves the role Failed.
                group.failed = True
                self.events.append(
                    f"1069: Cluster resource 'Virtual Machine {vm.name}' in clustered role "
                    f"'{group.name}' failed; the failover threshold was reached."
                )
                return
            # The VM restarts on the surviving node: a fresh boot, Uptime from zero.
            if vm.memory_startup > dest.memory_free():
                group.failed = True
                return
            vm.state = "Running"
            vm.started_at = when

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


# FailoverPeriod of a group, hours (default 6): the window FailoverThreshold counts in.
FAILOVER_PERIOD = 6 * 3600.0


def _attached_disks(guest: Any) -> list[Any]:
    from hvsim.model.s2d import guest_disks

    return guest_disks(guest)


def adapter_link_up(guest: Any, ad: Any) -> bool:
    """A guest adapter has a link: its VM adapter is connected to a switch; a host vNIC
    of an external switch in the guest depends on the adapter that switch binds."""
    if ad.switch and guest.hyperv is not None:
        sw = next((x for x in guest.hyperv.switches if x.name == ad.switch), None)
        if sw is not None and sw.net_adapter:
            bound = guest.net.adapter(sw.net_adapter)
            return bound is None or bound.status == "Up"
        return True
    return ad.status == "Up"


def network_link_up(guest: Any, address: str, prefix: int) -> bool:
    """The guest has a live adapter with an address in that subnet."""
    net = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
    for ad in guest.net.adapters:
        for ip in ad.ips:
            if ip.family != "IPv4" or ip.address.startswith("169.254."):
                continue
            if ipaddress.IPv4Address(ip.address) in net and adapter_link_up(guest, ad):
                return True
    return False


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
