"""lab.status: the lab as the host sees it (VMs, cluster, witness, S2D, CSVs, HA VMs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import IO, Any

from hvlab.creds import CredentialBook
from hvlab.errors import HostError
from hvlab.facts import CLUSTER_FACTS, GuestFacts, Reads
from hvlab.lab import Target, credential, lab_secrets, on_host, say
from hvlab.steps.common import SILENT, first, mark_owner, owns_vm, text, val


def status(
    config: Any = None,
    *,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
    target: Target | None = None,
) -> dict[str, Any]:
    with on_host("status", config, lab, as_json, state_base, target=target) as (
        spec,
        session,
        out,
    ):
        # Status logs on to the guests only: no DSRM password (a promotion's).
        secrets = lab_secrets(spec, session, dsrm=False)
        creds = CredentialBook(spec, secrets, credential)
        data = collect_status(spec, session.host, creds)
    if as_json and target is None:
        print(json.dumps(data, indent=2, default=str))
    elif out is not None:
        _print_status(out, data)
    return data


def collect_status(spec: Any, host: Any, creds: CredentialBook) -> dict[str, Any]:
    data: dict[str, Any] = {
        "lab": spec.name,
        "vms": [],
        "cluster": None,
        "s2d": None,
        "csv": [],
        "ha_vms": [],
    }
    # The host's side in one round trip: the folder's mark, the VMs, their adapters
    # and drives (hvlab.facts).
    reads = Reads()
    reads.add("marker", ("Get-Content", {"Path": spec.marker_path, **SILENT}))
    names = [vm.host_name for vm in spec.vms]
    reads.add("vm", ("Get-VM", {"Name": names, **SILENT}))
    reads.add("adapters", ("Get-VMNetworkAdapter", {"VMName": names, **SILENT}))
    reads.add("drives", ("Get-VMHardDiskDrive", {"VMName": names, **SILENT}))
    answers = reads.send(host)
    folder_is_ours = mark_owner(answers["marker"]) == spec.name
    for vm in spec.vms:
        # Reported by computer name, with the name the host knows it by.
        rec = first(r for r in answers["vm"] if _named(r, "Name", vm.host_name))
        if rec is None or not owns_vm(rec, spec, folder_is_ours):
            data["vms"].append(
                {
                    "name": vm.name,
                    "host_name": vm.host_name,
                    "state": "Missing" if rec is None else "NotOurs",
                }
            )
            continue
        nics = [n for n in answers["adapters"] if _named(n, "VMName", vm.host_name)]
        disks = [d for d in answers["drives"] if _named(d, "VMName", vm.host_name)]
        data["vms"].append(
            {
                "name": vm.name,
                "host_name": vm.host_name,
                "role": vm.role,
                "state": text(val(rec, "State")),
                "uptime_seconds": seconds(val(rec, "Uptime")),
                "nics": [
                    {
                        "name": text(val(n, "Name")),
                        "switch": text(val(n, "SwitchName")),
                        "mac": text(val(n, "MacAddress")),
                        "ips": [text(i) for i in (val(n, "IPAddresses") or [])],
                    }
                    for n in nics
                ],
                "data_disks": max(0, len(disks) - 1),
            }
        )
    if not spec.nodes:
        return data
    node = spec.nodes[0].name

    # The cluster's side in one PowerShell Direct call into the first node.
    try:
        facts = _cluster_facts(host, node, creds, spec)
    except HostError as err:
        data["cluster"] = {"error": err.message}
        return data
    cl = facts.one("Cluster")
    if cl is None:
        return data
    quorum = facts.one("Quorum")
    data["cluster"] = {
        "name": text(val(cl, "Name")),
        "address": str(spec.cluster.address),
        "witness": text(val(quorum, "QuorumResource")) or None,
        "nodes": [
            {"name": text(val(n, "Name")), "state": text(val(n, "State"))} for n in facts["Node"]
        ],
    }
    pool = facts.one("StoragePool")
    if pool is not None:
        members = [
            d for d in facts["PhysicalDisk"] if text(val(d, "CannotPoolReason")) == "In a Pool"
        ]
        settings = facts.one("InVMSettings")
        data["s2d"] = {
            "pool": {
                "name": text(val(pool, "FriendlyName")),
                "health": text(val(pool, "HealthStatus")),
                "operational": text(val(pool, "OperationalStatus")),
                "disks": len(members),
            },
            # both should be off in a lab of VMs.
            "auto_replace": text(val(settings, "AutoReplace")) or None,
            "block_cache_mb": val(settings, "BlockCacheSize"),
        }
    for csv in facts["SharedVolume"]:
        info = val(csv, "SharedVolumeInfo")
        info = info[0] if isinstance(info, list) and info else info
        path = (
            text(val(info, "FriendlyVolumeName"))
            if info is not None and not isinstance(info, str)
            else ""
        )
        name = text(val(csv, "Name"))
        if not path and "(" in name:
            path = f"C:\\ClusterStorage\\{name[name.index('(') + 1 : name.rindex(')')]}"
        data["csv"].append(
            {
                "name": name,
                "state": text(val(csv, "State")),
                "path": path,
                "owner_node": text(val(csv, "OwnerNode")),
            }
        )
    groups = facts.get("Group", [])
    for ha in spec.ha_vms:
        grp = first(g for g in groups if _named(g, "Name", ha.name))
        data["ha_vms"].append(
            {
                "name": ha.name,
                "state": text(val(grp, "State")) if grp is not None else "Missing",
                "owner_node": text(val(grp, "OwnerNode")) if grp is not None else None,
            }
        )
    return data


def _named(rec: Any, key: str, name: str) -> bool:
    return text(val(rec, key)).lower() == name.lower()


def _cluster_facts(host: Any, node: str, creds: CredentialBook, spec: Any) -> GuestFacts:
    """Get-ClusterFacts.ps1 in the node, as the domain account, else the local one."""
    from hvlab.guest import Guest

    params: dict[str, Any] = {
        "Node": True,
        "Quorum": True,
        "SharedVolume": True,
        "StoragePool": True,
        "InVMSettings": True,
        "PhysicalDisk": True,
    }
    if spec.ha_vms:
        params["Group"] = [ha.name for ha in spec.ha_vms]
    err: HostError | None = None
    for cred in (creds.domain_admin, creds.local_admin):
        try:
            out = Guest(host, node, cred, spec.on_host(node)).script(CLUSTER_FACTS, **params)
        except HostError as failed:
            if "credential" not in failed.message.lower():
                raise
            err = err or failed
            continue
        try:
            return GuestFacts.parse(out, ["Cluster"])
        except ValueError as bad:
            raise HostError(f"{CLUSTER_FACTS} @{node}", str(bad)) from None
    return GuestFacts({"Cluster": []})


def seconds(value: Any) -> float | None:
    """A TimeSpan as seconds: pypsrp gives timedelta or an ISO 8601 duration."""
    if value is None:
        return None
    total = getattr(value, "total_seconds", None)
    if callable(total):
        return round(float(total()), 1)
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?", text(value))
    if not match:
        return None
    d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return round(((d * 24 + h) * 60 + m) * 60 + s, 1)


def _print_status(out: IO[str], data: dict[str, Any]) -> None:
    if data["vms"] and all(vm["state"] == "Missing" for vm in data["vms"]):
        say(
            out,
            f"lab {data['lab']} is not on the host: none of its VMs exists ('lab.up' builds it)",
        )
        return
    say(out, f"lab {data['lab']}")
    for vm in data["vms"]:
        ips = ", ".join(ip for n in vm.get("nics", []) for ip in n["ips"])
        on_host = vm.get("host_name", vm["name"])
        shown = vm["name"] if on_host == vm["name"] else f"{vm['name']} (host: {on_host})"
        say(out, f"  VM {shown:<12} {vm['state']:<8} {ips}")
    cl = data.get("cluster")
    if cl and "nodes" in cl:
        nodes = ", ".join(f"{n['name']} {n['state']}" for n in cl["nodes"])
        say(out, f"  cluster {cl['name']} {cl['address']}: {nodes}; witness {cl['witness']}")
    elif cl:
        say(out, f"  cluster: {cl.get('error')}")
    if data.get("s2d"):
        pool = data["s2d"]["pool"]
        say(out, f"  pool {pool['name']}: {pool['health']}, {pool['disks']} disks")
        say(
            out,
            f"  S2D in VMs: auto-replace {data['s2d']['auto_replace']}, "
            f"CSV block cache {data['s2d']['block_cache_mb']} MB",
        )
    for csv in data["csv"]:
        say(out, f"  CSV {csv['path']} {csv['state']}")
    for ha in data["ha_vms"]:
        say(out, f"  HA VM {ha['name']} {ha['state']} on {ha['owner_node']}")
