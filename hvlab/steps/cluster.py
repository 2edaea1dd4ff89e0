"""The cluster, its witness and networks, S2D and the CSVs, and the HA VM.

Every cluster cmdlet runs inside a node through PowerShell Direct with the domain
account (R-47, R-52), never in the host session: no CredSSP, no TrustedHosts.
"""

from __future__ import annotations

import html
import re
from typing import Any

from hvlab.engine import StepContext
from hvlab.errors import HostError, StepError
from hvlab.facts import CLUSTER_FACTS, kept_guest_facts
from hvlab.steps import adobjects
from hvlab.steps.common import (
    SILENT,
    cluster_facts,
    first,
    guest_facts,
    guest_script,
    in_guest,
    same_path,
    text,
    together,
    val,
)

S2D_CATEGORIES = ["Storage Spaces Direct", "Inventory", "Network", "System Configuration"]


def _node(ctx: StepContext) -> str:
    """The node cluster cmdlets run in: the first node that answers."""
    return ctx.lab.nodes[0].name


def _nodes(ctx: StepContext) -> list[str]:
    return [n.name for n in ctx.lab.nodes]


def cluster(ctx: StepContext) -> None:
    lab = ctx.lab
    node = _node(ctx)
    cl = lab.cluster
    # What the step checks, in one PowerShell Direct call; the proof that cluster
    # cmdlets reach the other nodes goes side by side, and counts only where
    # the original order would have made it: on a cluster whose nodes were all Up.
    generation = ctx.run.generation
    facts, proof = together(
        lambda: cluster_facts(ctx, node, Node=True, Quorum=True, Network=True),
        lambda: _reach_attempt(ctx),
    )
    existing = facts.one("Cluster")
    if existing is not None:
        if text(val(existing, "Name")).lower() != cl.name.lower():
            raise StepError(
                "cluster",
                f"{node} is already in cluster {val(existing, 'Name')!r}, not {cl.name!r} (R-53, R-86)",
            )
        ctx.ok(f"cluster {cl.name} exists")
    else:
        _unique_disk_ids(ctx)
        _clean_disks(ctx)
        _validate(ctx)
        what = f"New-Cluster {cl.name} {cl.address} on {', '.join(_nodes(ctx))}"

        def create() -> Any:
            return in_guest(
                ctx,
                node,
                "New-Cluster",
                Name=cl.name,
                Node=_nodes(ctx),
                StaticAddress=[str(cl.address)],
                NoStorage=True,
            )

        if lab.domain.mode == "existing":
            # The cluster's name object, recorded when New-Cluster creates it.
            adobjects.create(ctx, node, cl.name, what, create)
        else:
            ctx.change(what, create)

    def unchanged() -> bool:
        return existing is not None and ctx.run.generation == generation

    _resume_paused(ctx, facts["Node"] if unchanged() else None)
    up_at_read = _nodes_up(ctx, facts["Node"] if unchanged() else None)
    _reach_other_nodes(ctx, proof if unchanged() and up_at_read else None)
    _witness(ctx, facts.one("Quorum") if unchanged() else None)
    _networks(ctx, facts["Network"] if unchanged() else None)


def _resume_paused(ctx: StepContext, known: list[Any] | None = None) -> None:
    """A node left paused (a drain that was interrupted, R-107) takes no roles: resume
    it, with its roles back. `known`: Get-ClusterNode as read a moment ago."""
    node = _node(ctx)
    nodes = known if known is not None else in_guest(ctx, node, "Get-ClusterNode")
    for n in nodes:
        if text(val(n, "State")) == "Paused":
            name = text(val(n, "Name"))
            ctx.change(
                f"Resume-ClusterNode {name} -Failback Immediate",
                lambda m=name: in_guest(
                    ctx, node, "Resume-ClusterNode", Name=m, Failback="Immediate"
                ),
            )


def _nodes_up(ctx: StepContext, known: list[Any] | None = None) -> bool:
    """Wait until every node is Up. `known`: Get-ClusterNode as read a moment ago, the
    wait's first look. Returns whether that first look found them all Up."""
    node = _node(ctx)
    wanted = {n.lower() for n in _nodes(ctx)}
    looks: list[bool] = []

    def probe() -> tuple[bool, str]:
        nonlocal known
        seen_nodes = known if known is not None else in_guest(ctx, node, "Get-ClusterNode")
        known = None
        states = {text(val(n, "Name")).lower(): text(val(n, "State")) for n in seen_nodes}
        seen = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
        done = all(states.get(n) == "Up" for n in wanted)
        looks.append(done)
        return done, seen

    ctx.wait("every cluster node to be Up", probe, deadline=ctx.waits.cluster_up)
    return bool(looks) and looks[0]


def _reach_attempt(ctx: StepContext) -> Any:
    """Get-ClusterNode -Cluster <last node> inside the first node: what it returned, or
    the HostError it raised (judged by _reach_other_nodes)."""
    node, others = _node(ctx), _nodes(ctx)[1:]
    if not others:
        return []
    try:
        return in_guest(ctx, node, "Get-ClusterNode", Cluster=others[-1])
    except HostError as err:
        return err


def _reach_other_nodes(ctx: StepContext, attempt: Any = None) -> None:
    """Prove that a cluster cmdlet run through PowerShell Direct in one node reaches
    the others with the session's credential (R-94): every later cluster call relies
    on it, and no source shows it working. Stops the run with what was tried.
    `attempt`: what _reach_attempt found a moment ago; a failure there is tried again
    before it counts."""
    node, others = _node(ctx), _nodes(ctx)[1:]
    if not others:
        return
    target = others[-1]
    seen = attempt if attempt is not None and not isinstance(attempt, HostError) else None
    if seen is None:
        seen = _reach_attempt(ctx)
    if isinstance(seen, HostError):
        err = seen
        raise StepError(
            "cluster",
            f"a cluster cmdlet run in {node} through PowerShell Direct cannot reach {target} "
            f"(R-94): tried Get-ClusterNode -Cluster {target} inside {node} as "
            f"{getattr(ctx.creds.current(node), 'user', '?')}; got: {err}",
        ) from err
    names = {text(val(n, "Name")).lower() for n in seen}
    missing = [n for n in _nodes(ctx) if n.lower() not in names]
    if missing:
        raise StepError(
            "cluster",
            f"Get-ClusterNode -Cluster {target} inside {node} does not list {', '.join(missing)} "
            "(R-94)",
        )
    ctx.ok(f"cluster cmdlets in {node} reach {target}")


def _unique_disk_ids(ctx: StepContext) -> None:
    """Copied VHDX files share an identifier and break S2D (R-15): check before validating.

    Data disks only: every OS disk is a differencing child of one image and carries
    the image's identifier by design (MS-VHDX 2.6.1.2); validation ignores boot disks."""
    seen: dict[str, str] = {}
    host = ctx.host
    paths = [p for vm in ctx.lab.nodes for p in ctx.lab.data_disk_paths(vm)]
    for path, found in zip(paths, host.map([("Get-VHD", {"Path": p}) for p in paths]), strict=True):
        ident = text(val(first(found), "DiskIdentifier"))
        if ident in seen:
            raise StepError(
                "cluster", f"{path} and {seen[ident]} share disk identifier {ident} (R-15)"
            )
        seen[ident] = path


def _clean_disks(ctx: StepContext) -> None:
    """Data disks must be empty before S2D (R-60), cleaned in the order of Microsoft's
    "Clean drives" script: Storage Spaces metadata of a pool that is gone first
    (Reset-PhysicalDisk), then each disk that is not RAW is brought online and
    writable, cleared, and set read-only and offline again. Fresh VHDX files are RAW
    and offline (SAN policy) and are left alone; never the boot or system disk."""
    together(*[lambda v=vm.name: _clean_node_disks(ctx, v) for vm in ctx.lab.nodes])


def _clean_node_disks(ctx: StepContext, vm: str) -> None:
    # Before the cluster there is no live pool: "In a Pool" is metadata left over.
    for pd in in_guest(ctx, vm, "Get-PhysicalDisk"):
        if text(val(pd, "CannotPoolReason")) == "In a Pool":
            uid = text(val(pd, "UniqueId"))
            ctx.change(
                f"Reset-PhysicalDisk {uid} on {vm}",
                lambda u=uid: in_guest(ctx, vm, "Reset-PhysicalDisk", UniqueId=u),
            )
    for disk in in_guest(ctx, vm, "Get-Disk"):
        if val(disk, "IsBoot") is True or val(disk, "IsSystem") is True:
            continue
        if text(val(disk, "PartitionStyle")) in ("RAW", ""):
            continue
        number = val(disk, "Number")
        ctx.change(f"clean disk {number} on {vm}", lambda n=number: _clean_disk(ctx, vm, n))


def _clean_disk(ctx: StepContext, vm: str, number: Any) -> None:
    in_guest(ctx, vm, "Set-Disk", Number=number, IsOffline=False)
    in_guest(ctx, vm, "Set-Disk", Number=number, IsReadOnly=False)
    in_guest(ctx, vm, "Clear-Disk", Number=number, RemoveData=True, RemoveOEM=True, Confirm=False)
    in_guest(ctx, vm, "Set-Disk", Number=number, IsReadOnly=True)
    in_guest(ctx, vm, "Set-Disk", Number=number, IsOffline=True)


def _validate(ctx: StepContext) -> None:
    """Test-Cluster with the S2D categories; keep the report; stop on failed tests (R-48)."""
    node = _node(ctx)
    report_name = f"hvlab-{ctx.lab.name}"
    out = in_guest(
        ctx, node, "Test-Cluster", Node=_nodes(ctx), Include=S2D_CATEGORIES, ReportName=report_name
    )
    path = next(
        (
            text(val(o, "FullName"))
            for o in out
            if text(val(o, "FullName")).lower().endswith(".htm")
        ),
        None,
    )
    if path is None:
        path = text(val(first(out), "FullName"))
    lines = in_guest(ctx, node, "Get-Content", Path=path)
    report = "\n".join(text(line) for line in lines)
    saved = ctx.state.write_artifact("test-cluster.htm", report)
    # lab.up --junit makes a case of each test of this run's validation.
    ctx.run.services["validation"] = report
    failed = failed_tests(report)
    if failed:
        raise StepError(
            "cluster",
            f"Test-Cluster reported failures: {'; '.join(failed)}. Report: {saved}",
        )
    ctx.ok(f"Test-Cluster passed; report {saved}")


_ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.IGNORECASE | re.DOTALL)
_CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


_ROW_OR_SECTION = re.compile(r"<h2[^>]*>(.*?)</h2>|<tr[^>]*>(.*?)</tr>", re.IGNORECASE | re.DOTALL)


def validation_results(report: str) -> list[tuple[str, str, str, str]]:
    """(category, test, result, description) of every test a validation report lists:
    each table row of test cells under its category's heading (header rows left out)."""
    out: list[tuple[str, str, str, str]] = []
    category = ""
    for match in _ROW_OR_SECTION.finditer(report):
        heading, row = match.groups()
        if heading is not None:
            category = html.unescape(_TAG.sub("", heading)).strip()
            continue
        if re.search(r"<th[\s>]", row, re.IGNORECASE):
            continue
        cells = [html.unescape(_TAG.sub("", c)).strip() for c in _CELL.findall(row)]
        if len(cells) >= 2:
            out.append((category, cells[0], cells[1], cells[2] if len(cells) > 2 else ""))
    return out


def failed_tests(report: str) -> list[str]:
    """Names of the tests a validation report marks as failed (a row whose cells say so)."""
    failed = []
    for row in _ROW.findall(report):
        cells = [_TAG.sub("", c).strip() for c in _CELL.findall(row)]
        if len(cells) >= 2 and any(c.lower() in ("failed", "failure") for c in cells[1:]):
            failed.append(cells[0])
    return failed


def _witness(ctx: StepContext, quorum: Any = None) -> None:
    """A file share witness on the DC for the CNO (R-58); other witness types as the spec
    says. `quorum`: Get-ClusterQuorum as read with the step's facts (None: read it)."""
    lab = ctx.lab
    witness = lab.cluster.witness
    node = _node(ctx)
    if witness.type == "none":
        ctx.ok("no witness asked for")
        return
    if witness.type != "file_share":
        raise StepError(
            "cluster", f"witness type {witness.type} is not supported by hvlab yet; use file_share"
        )
    server = witness.server or lab.dc.name
    share = witness.share or f"{lab.cluster.name}-witness"
    folder = f"C:\\Witness\\{share}"
    # A server named by its FQDN (fs01.corp.example.com) is used as written.
    fqdn = server if "." in server else f"{server}.{lab.domain.fqdn}"
    unc = f"\\\\{fqdn}\\{share}"
    dc = server.split(".")[0]
    if lab.dc is None or dc.lower() != lab.dc.name.lower():
        # Not a VM of this lab: PowerShell Direct cannot reach it, the share is the
        # owner's to provide (with full access for the cluster's computer account).
        ctx.ok(f"witness share {unc} is provided by its server")
    if quorum is None:
        quorum = first(in_guest(ctx, node, "Get-ClusterQuorum"))
    resource = text(val(quorum, "QuorumResource"))
    if resource and "witness" in resource.lower():
        ctx.ok(f"quorum witness {resource}")
        return
    if lab.dc is not None and dc.lower() == lab.dc.name.lower():
        if first(in_guest(ctx, dc, "Get-SmbShare", Name=share, **SILENT)) is None:
            nb = lab.domain.netbios
            ctx.change(
                f"New-SmbShare {share} on {dc}",
                lambda: (
                    in_guest(ctx, dc, "New-Item", ItemType="Directory", Path=folder, Force=True),
                    in_guest(
                        ctx,
                        dc,
                        "New-SmbShare",
                        Name=share,
                        Path=folder,
                        FullAccess=[f"{nb}\\{lab.cluster.name}$", f"{nb}\\Administrator"],
                    ),
                ),
            )
        else:
            ctx.ok(f"share {share} exists on {dc}")
        # The folder's ACL from the share's, also when an earlier run's answer to
        # New-SmbShare was lost before this call; it is idempotent.
        ctx.change(
            f"Set-SmbPathAcl {share} on {dc}",
            lambda: in_guest(ctx, dc, "Set-SmbPathAcl", ShareName=share),
        )
    ctx.change(
        f"Set-ClusterQuorum -FileShareWitness {unc}",
        lambda: in_guest(ctx, node, "Set-ClusterQuorum", FileShareWitness=unc),
    )


def _networks(ctx: StepContext, networks: list[Any] | None = None) -> None:
    """Name the cluster networks after the lab's switches and give them the roles the
    lab file asks for (cluster.networks: management and storage, R-59). `networks`:
    Get-ClusterNetwork as read with the step's facts (None: read it)."""
    lab = ctx.lab
    node = _node(ctx)
    if networks is None:
        networks = in_guest(ctx, node, "Get-ClusterNetwork")
    wanted = {n["address"]: n["role_value"] for n in lab.cluster_networks()}
    for net in networks:
        address = text(val(net, "Address"))
        sw = next((s for s in lab.switches if str(s.subnet.network_address) == address), None)
        if sw is None or address not in wanted:
            continue
        role = wanted[address]
        current_role = val(net, "Role")
        role_number = _role_number(current_role)
        if text(val(net, "Name")) == sw.name and role_number == role:
            ctx.ok(f"cluster network {sw.name} has role {role}")
            continue
        ctx.change(
            f"cluster network {address} -> {sw.name} (role {role})",
            lambda a=address, n=sw.name, r=role: guest_script(
                ctx, node, "Set-ClusterNetworkRole.ps1", Address=a, Name=n, Role=r
            ),
        )


def _role_number(role: Any) -> int:
    names = {"none": 0, "cluster": 1, "client": 2, "clusterandclient": 3}
    if isinstance(role, int):
        return role
    return names.get(text(role).lower(), -1)


def s2d(ctx: StepContext) -> None:
    """Enable S2D, flat and without cache in VMs (R-62), then the volumes as CSVs (R-64)."""
    lab = ctx.lab
    node = _node(ctx)
    paths = [v.csv_path for v in lab.volumes]
    # The step's facts, one PowerShell Direct call per node side by side: the pool, the
    # disks and the volumes from the first node, the CSV paths and VM paths from each.
    # They stand while the run changes nothing; after a change the step reads again.
    generation = ctx.run.generation
    facts, *per_node = together(
        lambda: cluster_facts(
            ctx,
            node,
            StoragePool=True,
            InVMSettings=True,
            PhysicalDisk=True,
            VirtualDisk=[v.name for v in lab.volumes],
            SharedVolume=True,
            # For the HA VM steps after this one, while the run changes nothing.
            Group=[ha.name for ha in lab.ha_vms],
        ),
        *[lambda v=vm.name: guest_facts(ctx, v, Path=paths, VMHost=True) for vm in lab.nodes],
    )

    def unchanged() -> bool:
        return ctx.run.generation == generation

    pools = facts.get("StoragePool", [])
    if not pools:
        ctx.change(
            f"Enable-ClusterStorageSpacesDirect on {lab.cluster.name}",
            lambda: in_guest(
                ctx, node, "Enable-ClusterStorageSpacesDirect", CacheState="Disabled", Confirm=False
            ),
        )
        pools = in_guest(ctx, node, "Get-StoragePool", IsPrimordial=False)
    pool = first(pools)
    pool_name = text(val(pool, "FriendlyName"))
    if text(val(pool, "HealthStatus")) != "Healthy":
        # A node or drive that came back is being resynced: wait for it.
        def healthy() -> tuple[bool, str]:
            p = first(in_guest(ctx, node, "Get-StoragePool", IsPrimordial=False))
            jobs = in_guest(ctx, node, "Get-StorageJob")
            return text(val(p, "HealthStatus")) == "Healthy", (
                f"pool {val(p, 'HealthStatus')}/{val(p, 'OperationalStatus')}, "
                f"{len(jobs)} repair job(s)"
            )

        ctx.wait(f"pool {pool_name} to be Healthy", healthy, deadline=ctx.waits.repair)
        pool = first(in_guest(ctx, node, "Get-StoragePool", IsPrimordial=False))
    ctx.ok(f"pool {pool_name} is Healthy")
    _in_vm_settings(ctx, node, facts.one("InVMSettings") if unchanged() else None)

    disks = facts["PhysicalDisk"] if unchanged() else in_guest(ctx, node, "Get-PhysicalDisk")
    media_types(ctx, node, disks)

    for volume in lab.volumes:
        if unchanged():
            vdisk = first(
                d
                for d in facts["VirtualDisk"]
                if text(val(d, "FriendlyName")).lower() == volume.name.lower()
            )
        else:
            vdisk = first(
                in_guest(ctx, node, "Get-VirtualDisk", FriendlyName=volume.name, **SILENT)
            )
        if vdisk is None:
            size = volume.size_bytes or _percent_size(pool, volume.percent, len(lab.nodes))
            ctx.change(
                f"New-Volume {volume.name} {size // 2**30} GiB {volume.file_system} "
                f"{volume.resiliency}",
                lambda v=volume, s=size: in_guest(
                    ctx,
                    node,
                    "New-Volume",
                    StoragePoolFriendlyName=pool_name,
                    FriendlyName=v.name,
                    FileSystem=v.file_system,
                    Size=s,
                    ResiliencySettingName=v.resiliency,
                ),
            )
        else:
            ctx.ok(f"volume {volume.name} exists")
        csv_name = f"Cluster Virtual Disk ({volume.name})"
        shared = (
            facts["SharedVolume"] if unchanged() else in_guest(ctx, node, "Get-ClusterSharedVolume")
        )
        csvs = {text(val(c, "Name")): c for c in shared}
        if text(val(csvs.get(csv_name), "State")) != "Online":
            raise StepError("s2d", f"{csv_name} is not an Online CSV")

    if not unchanged():
        per_node = together(
            *[lambda v=vm.name: guest_facts(ctx, v, Path=paths, VMHost=True) for vm in lab.nodes]
        )
    # Every CSV is mounted on every node: one look per node at all the paths.
    for vm, seen in zip(lab.nodes, per_node, strict=True):
        found = seen["Path"]
        absent = [p for p, there in zip(paths, found, strict=False) if there is not True]
        if absent or len(found) != len(paths):
            raise StepError("s2d", f"{', '.join(absent) or paths} not there on {vm.name} (R-64)")
    ctx.ok(f"{', '.join(paths)} mounted on every node")

    # New VMs land on the CSV on whichever node creates them.
    path = lab.volumes[0].csv_path
    for vm, seen in zip(lab.nodes, per_node, strict=True):
        settings = seen.one("VMHost")
        if same_path(val(settings, "VirtualMachinePath"), path) and same_path(
            val(settings, "VirtualHardDiskPath"), path
        ):
            ctx.ok(f"{vm.name} keeps VMs on {path}")
            continue
        ctx.change(
            f"Set-VMHost {vm.name} VM paths -> {path}",
            lambda v=vm.name: in_guest(
                ctx, v, "Set-VMHost", VirtualMachinePath=path, VirtualHardDiskPath=path
            ),
        )


# Storage Spaces Direct in VMs: the Health Service must not "replace" a virtual
# disk that was briefly gone (Microsoft's in-VM guidance), and a virtual node keeps no
# CSV in-memory read cache (MSLab sets BlockCacheSize 0 for VMs).
AUTO_REPLACE = "False"
BLOCK_CACHE_MB = 0


def _in_vm_settings(ctx: StepContext, node: str, now: Any = None) -> None:
    """`now`: the settings as read with the step's facts (None: read them)."""
    if now is None:
        now = first(guest_script(ctx, node, "Get-S2DInVMSettings.ps1"))
    if (
        text(val(now, "AutoReplace")).lower() == AUTO_REPLACE.lower()
        and int(val(now, "BlockCacheSize", -1)) == BLOCK_CACHE_MB
    ):
        ctx.ok("automatic drive replacement off, CSV block cache 0")
        return
    after = first(
        ctx.change(
            f"automatic drive replacement off, BlockCacheSize {BLOCK_CACHE_MB} (S2D in VMs)",
            lambda: guest_script(
                ctx,
                node,
                "Set-S2DInVMSettings.ps1",
                AutoReplace=AUTO_REPLACE,
                BlockCacheSize=BLOCK_CACHE_MB,
            ),
        )
    )
    if (
        text(val(after, "AutoReplace")).lower() != AUTO_REPLACE.lower()
        or int(val(after, "BlockCacheSize", -1)) != BLOCK_CACHE_MB
    ):
        raise StepError(
            "s2d",
            f"the in-VM settings did not stick: AutoReplace {val(after, 'AutoReplace')}, "
            f"BlockCacheSize {val(after, 'BlockCacheSize')} (R-62)",
        )


def _percent_size(pool: Any, percent: float | None, nodes: int) -> int:
    size = int(val(pool, "Size", 0) or 0)
    allocated = int(val(pool, "AllocatedSize", 0) or 0)
    copies = 2 if nodes < 3 else 3  # two-way mirror for 2 nodes, three-way from 3
    usable = (size - allocated) // copies
    return int(usable * (percent or 0) / 100) // 2**30 * 2**30


def ha_vm(ctx: StepContext, spec: Any) -> None:
    """A VM on the CSV made highly available, started, and live-migrated once (R-67..R-69)."""
    lab = ctx.lab
    node = _node(ctx)
    volume = next((v for v in lab.volumes if v.name == spec.volume), lab.volumes[0])
    # The group as the S2D step read it, when the run has changed nothing since.
    kept = kept_guest_facts(ctx, CLUSTER_FACTS, node, {"Group": [spec.name]})
    if kept is not None and "Group" in kept:
        group = first(kept["Group"])
    else:
        group = first(in_guest(ctx, node, "Get-ClusterGroup", Name=spec.name, **SILENT))
    creator = node
    if group is None:
        if first(in_guest(ctx, creator, "Get-VM", Name=spec.name, **SILENT)) is None:
            vhd = f"{volume.csv_path}\\{spec.name}\\{spec.name}.vhdx"
            ctx.change(
                f"New-VM {spec.name} on {volume.csv_path} in {creator}",
                lambda: in_guest(
                    ctx,
                    creator,
                    "New-VM",
                    Name=spec.name,
                    Generation=2,
                    MemoryStartupBytes=spec.memory_bytes,
                    Path=volume.csv_path,
                    NewVHDPath=vhd,
                    NewVHDSizeBytes=spec.disk_bytes,
                    SwitchName=lab.cluster.management_switch,
                ),
            )
        ctx.change(
            f"Add-ClusterVirtualMachineRole {spec.name}",
            lambda: in_guest(ctx, creator, "Add-ClusterVirtualMachineRole", VMName=spec.name),
        )
        group = first(in_guest(ctx, node, "Get-ClusterGroup", Name=spec.name))
    if text(val(group, "State")) != "Online":
        ctx.change(
            f"Start-ClusterGroup {spec.name}",
            lambda: in_guest(ctx, node, "Start-ClusterGroup", Name=spec.name),
        )
        group = first(in_guest(ctx, node, "Get-ClusterGroup", Name=spec.name))
    owner = text(val(group, "OwnerNode"))
    if owner.lower() != creator.lower():
        ctx.ok(f"{spec.name} runs on {owner}: it has been moved off {creator} already")
        return
    target = next(n for n in _nodes(ctx) if n.lower() != owner.lower())
    before = first(in_guest(ctx, owner, "Get-VM", Name=spec.name))
    uptime_before = val(before, "Uptime")
    ctx.change(
        f"Move-ClusterVirtualMachineRole {spec.name} {owner} -> {target} (live)",
        lambda: in_guest(
            ctx,
            node,
            "Move-ClusterVirtualMachineRole",
            Name=spec.name,
            Node=target,
            MigrationType="Live",
        ),
    )

    def moved() -> tuple[bool, str]:
        g = first(in_guest(ctx, node, "Get-ClusterGroup", Name=spec.name))
        seen = f"owner {val(g, 'OwnerNode')}, {val(g, 'State')}"
        return text(val(g, "OwnerNode")).lower() == target.lower() and text(
            val(g, "State")
        ) == "Online", seen

    ctx.wait(f"{spec.name} to run on {target}", moved, deadline=ctx.waits.migration)
    after = first(in_guest(ctx, target, "Get-VM", Name=spec.name))
    if text(val(after, "State")) != "Running":
        raise StepError(
            f"ha:{spec.name}",
            f"{spec.name} is {val(after, 'State')} on {target} after the migration",
        )
    if _seconds(val(after, "Uptime")) + 1 < _seconds(uptime_before):
        raise StepError(
            f"ha:{spec.name}",
            f"{spec.name} restarted during the live migration (uptime reset, R-69)",
        )
    ctx.ok(f"{spec.name} live-migrated to {target} and kept running")


def _seconds(value: Any) -> float:
    if value is None:
        return 0.0
    total = getattr(value, "total_seconds", None)
    if callable(total):
        return float(total())
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def media_types(ctx: StepContext, node: str, disks: list[Any]) -> None:
    """VHDX disks report MediaType Unspecified, and a node's reboot resets what was set:
    give the pool members one type (R-63). `disks`: Get-PhysicalDisk in `node`."""
    for disk in disks:
        in_pool = text(val(disk, "CannotPoolReason")) == "In a Pool"
        if in_pool and text(val(disk, "MediaType")) == "Unspecified":
            uid = text(val(disk, "UniqueId"))
            ctx.change(
                f"Set-PhysicalDisk {uid} MediaType HDD",
                lambda u=uid: in_guest(ctx, node, "Set-PhysicalDisk", UniqueId=u, MediaType="HDD"),
            )
