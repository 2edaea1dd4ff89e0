"""Cluster-Aware Updating in remote-updating mode with the hotfix plug-in (R-112), and
Get-HotFix on a guest.

Invoke-CauRun runs on an update coordinator that is not a node of the cluster (the CAU
overview: "the computer on which the CAU tools are installed and that coordinates the
updates cannot be a member of the failover cluster"). Node by node, it waits for the
storage to be healthy, pauses and drains the node, lets the plug-in install what the
hotfix root folder holds for it, restarts it when an update asks for it, resumes it
with failback and waits for the storage repair, before the next node (R-107, R-108).
The run returns when every node is done; its report gives per node when each phase
ended (the report's shape is modelled).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from hvsim import timing
from hvsim.cmdlets._clusterkit import node_ctx
from hvsim.cmdlets._hvcommon import as_list
from hvsim.cmdlets.cluster_nodes import resume_cluster_node, suspend_cluster_node
from hvsim.cmdlets.hyperv import prompt_failed
from hvsim.cmdlets.smb import find_share
from hvsim.errors import PSError, not_modelled
from hvsim.executor import Nested
from hvsim.model.features import HOTFIX_CONFIG
from hvsim.model.guest import GuestOS
from hvsim.model.iso import parse_package
from hvsim.model.machine import at
from hvsim.objects import PSObj
from hvsim.registry import Call, Context, cmdlet

CAU = "Microsoft.ClusterAwareUpdating."
HOTFIX_PLUGIN = "Microsoft.HotfixPlugin"
# The extensions the plug-in installs with its default configuration.
EXTENSIONS = (".msu", ".msi", ".msp")
# Who may write to the hotfix root folder (cluster-aware-updating-plug-ins, step 3).
WRITERS = {
    "builtin\\administrators",
    "nt authority\\system",
    "creator owner",
    "nt service\\trustedinstaller",
}
READERS = {"builtin\\users", "everyone", "nt authority\\authenticated users"}
KB = re.compile(r"kb(\d{6,8})", re.IGNORECASE)


def _error(text: str, category: str = "InvalidOperation", target: Any = None) -> PSError:
    return PSError(
        text,
        fqid="Invoke-CauRun," + CAU + "Commands.InvokeCauRunCommand",
        category=category,
        exception=CAU + "CauException",
        target=target,
    )


def _truth(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "$true")


def _find_cluster(ctx: Context, name: str) -> Any:
    key = name.split(".")[0].lower()
    cl = ctx.world.clusters.get(key)
    if cl is None:
        raise _error(
            f"The cluster '{name}' could not be reached. Verify that the cluster name resolves "
            "and that the cluster is running.",
            "ConnectionError",
            name,
        )
    return cl


def _plugin_arguments(call: Call) -> dict[str, Any]:
    names = [str(n) for n in as_list(call.get("CauPluginName"))] or [
        "Microsoft.WindowsUpdatePlugin"
    ]
    if names != [HOTFIX_PLUGIN]:
        # A lab has no route to Windows Update; other plug-ins are not modelled.
        raise not_modelled(f"Invoke-CauRun with plug-in(s) {', '.join(names)}")
    args = as_list(call.get("CauPluginArguments"))
    first = args[0] if args else {}
    if not isinstance(first, dict):
        raise not_modelled("CauPluginArguments other than hashtables")
    return {str(k).lower(): v for k, v in first.items()}


def _hotfix_root(ctx: Context, args: dict[str, Any], cl: Any) -> tuple[GuestOS, str, Any]:
    """The hotfix root folder: a share that every node reads, with SMB signing or
    encryption, written only by administrators, holding the configuration file."""
    root = str(args.get("hotfixrootfolderpath") or "")
    if not root:
        raise _error(
            f"The {HOTFIX_PLUGIN} plug-in requires the HotfixRootFolderPath argument.",
            "InvalidArgument",
        )
    parts = [p for p in root.replace("/", "\\").split("\\") if p]
    found = (
        find_share(ctx.world, root, getattr(ctx.machine, "domain", None))
        if root.startswith("\\\\")
        else None
    )
    if found is None:
        raise _error(
            f"The hotfix root folder '{root}' could not be accessed from the cluster nodes.",
            "ObjectNotFound",
            root,
        )
    server, share = found
    folder = "\\".join([share.path.rstrip("\\"), *parts[2:]])
    # DCs require SMB signing by default; elsewhere the share must encrypt (step 4).
    signed_or_encrypted = bool(getattr(share, "encrypt_data", False)) or server.is_dc
    if not signed_or_encrypted:
        raise _error(
            f"The hotfix root folder '{root}' is not protected by SMB signing or SMB Encryption; "
            f"the {HOTFIX_PLUGIN} plug-in requires one of them.",
            "SecurityError",
            root,
        )
    if _truth(args.get("requiresmbencryption", False)) and not getattr(
        share, "encrypt_data", False
    ):
        raise _error(
            f"SMB Encryption is required for '{root}' but the share does not encrypt data.",
            "SecurityError",
            root,
        )
    if not _truth(args.get("disableaclchecks", False)):
        writers = [
            a
            for a in [*share.full_access, *getattr(share, "change_access", [])]
            if a.lower() not in WRITERS
        ]
        readers = {a.lower() for a in [*share.full_access, *getattr(share, "read_access", [])]}
        if writers or not readers & READERS:
            raise _error(
                f"The access permissions of the hotfix root folder '{root}' are not restricted: "
                f"{', '.join(writers) or 'Users cannot read it'} (only Administrators, SYSTEM, "
                "CREATOR OWNER and TrustedInstaller may write).",
                "SecurityError",
                root,
            )
    config = str(args.get("hotfixconfigfilename") or HOTFIX_CONFIG)
    if not server.fs.exists(f"{folder}\\{config}"):
        raise _error(
            f"The hotfix configuration file '{config}' was not found in the hotfix root folder "
            f"'{root}'.",
            "ObjectNotFound",
            root,
        )
    return server, folder, share


def _updates_for(server: GuestOS, folder: str, node: str) -> list[tuple[str, Any]]:
    """Files under CAUHotfix_All and under the node's own folder, by extension."""
    out: list[tuple[str, Any]] = []
    for sub in ("CAUHotfix_All", node):
        path = f"{folder}\\{sub}"
        if not server.fs.is_dir(path):
            continue
        for item in server.fs.listdir(path):
            name = item.name
            if name.lower().endswith(EXTENSIONS) and not hasattr(item, "children"):
                out.append((name, server.fs.read(f"{path}\\{name}")))
    return out


def _hotfix_id(name: str, content: Any) -> str:
    pkg = parse_package(content)
    if pkg is not None and pkg.name.upper().startswith("KB"):
        return pkg.name.upper()
    m = KB.search(name)
    return f"KB{m.group(1)}" if m else name.rsplit(".", 1)[0]


def _install(node: GuestOS, name: str, content: Any, now: float) -> str:
    """What the installer answers for one update: Installed (restart needed),
    AlreadyInstalled or NotApplicable (another build)."""
    hotfixes = getattr(node, "hotfixes", None)
    if hotfixes is None:
        hotfixes = node.hotfixes = []
    ident = _hotfix_id(name, content)
    if any(h["HotFixID"] == ident for h in hotfixes):
        return "AlreadyInstalled"
    pkg = parse_package(content)
    if pkg is not None and pkg.build != node.os.build:
        return "NotApplicable"  # 0x800F081E, as R-119 has it
    hotfixes.append({"HotFixID": ident, "Description": "Update", "InstalledOn": now})
    if pkg is not None:
        node.os.version = f"10.0.{pkg.build}.{pkg.revision}"
    return "Installed"


def _wait_ready(ctx: Context, node: GuestOS, limit: float) -> None:
    """Let time pass until the node's OS answers again (bounded by RebootTimeoutMinutes)."""
    waited = 0.0
    while not node.is_ready():
        if waited > limit:
            raise _error(
                f"Node '{node.name}' did not come back within {limit / 60:g} minutes of its "
                "restart.",
                "OperationTimeout",
                node.name,
            )
        ctx.work(5.0, f"waiting for {node.name} to restart")
        waited += 5.0


def _wait_storage(ctx: Context, cl: Any, limit: float, node: str) -> None:
    """CAU waits for the clustered storage to be healthy before it suspends a node and
    after it resumes one (CAU FAQ; maintain-servers)."""
    waited = 0.0
    while True:
        cl.refresh(ctx.world)
        if not cl.storage_degraded(ctx.world):
            return
        if waited > limit:
            raise _error(
                f"The storage of cluster '{cl.name}' did not become healthy within "
                f"{limit / 60:g} minutes (node '{node}').",
                "OperationTimeout",
                node,
            )
        step = max(1.0, min(60.0, cl.repair_until - float(ctx.world.clock.now())))
        ctx.work(step, "waiting for the storage repair")
        waited += step


@cmdlet(
    "Invoke-CauRun",
    params=[
        "ClusterName",
        "CauPluginName",
        "CauPluginArguments",
        "Credential",
        "MaxFailedNodes",
        "MaxRetriesPerNode",
        "NodeOrder",
        "RequireAllNodesOnline",
        "EnableFirewallRules",
        "FailbackMode",
        "RebootTimeoutMinutes",
        "WaitForStorageRepairTimeoutMinutes",
        "Force",
    ],
)
def invoke_cau_run(ctx: Context, call: Call) -> Iterable[PSObj]:
    cmd = "Invoke-CauRun"
    coordinator = node_ctx(ctx, cmd)  # the Failover Clustering Tools and a domain account
    if coordinator.cluster_config:
        raise _error(
            "Cluster-Aware Updating in remote-updating mode cannot be coordinated from a node of "
            "the cluster being updated: the computer that coordinates the updates cannot be a "
            "member of the failover cluster. Run Invoke-CauRun on another computer.",
            "InvalidOperation",
            coordinator.name,
        )
    if not call.switch("Force"):
        raise prompt_failed("Are you sure you want to update the cluster?", cmd)
    name = str(call.get("ClusterName") or "")
    if not name:
        raise not_modelled("Invoke-CauRun without -ClusterName")
    cl = _find_cluster(ctx, name)
    cl.refresh(ctx.world)
    args = _plugin_arguments(call)
    if call.switch("RequireAllNodesOnline"):
        down = [n for n in cl.nodes if cl.node_state(ctx.world, n) != "Up"]
        if down:
            raise _error(
                f"All cluster nodes must be online to start the updating run; not Up: "
                f"{', '.join(down)}.",
                "InvalidOperation",
                cl.name,
            )
    server, folder, _share = _hotfix_root(ctx, args, cl)
    reboot_limit = 60.0 * int(call.get("RebootTimeoutMinutes") or 15)
    repair_limit = 60.0 * int(call.get("WaitForStorageRepairTimeoutMinutes") or 120)
    failback = str(call.get("FailbackMode") or "Immediate")
    started = float(ctx.world.clock.now())
    ctx.work(timing.seconds("cau.scan"), f"scanning {cl.name} for updates")
    order = [str(n).split(".")[0] for n in as_list(call.get("NodeOrder"))] or sorted(
        cl.nodes, key=lambda n: (sum(1 for g in cl.groups if g.owner == n), cl.nodes.index(n))
    )
    results = []
    for node_name in order:
        node = cl.node_guest(ctx.world, node_name)
        if node is None:
            raise _error(f"Node '{node_name}' is not a node of '{cl.name}'.", "ObjectNotFound")
        marks: dict[str, float] = {"Start": float(ctx.world.clock.now())}
        todo = [
            (f, c)
            for f, c in _updates_for(server, folder, node.name)
            if not any(h["HotFixID"] == _hotfix_id(f, c) for h in getattr(node, "hotfixes", []))
        ]
        if not todo:
            results.append(_node_result(node.name, "NoUpdates", [], marks))
            continue
        _wait_storage(ctx, cl, repair_limit, node.name)
        on_node = Nested(ctx, cl.node_guest(ctx.world, _other(cl, ctx, node.name)))
        suspend_cluster_node(
            on_node,
            Call("Suspend-ClusterNode", "", {"Name": node.name, "Drain": True, "Wait": True}),
        )
        marks["Drained"] = float(ctx.world.clock.now())
        installed = []
        restart = False
        for fname, content in todo:
            ctx.work(timing.seconds("cau.install_update"), f"installing {fname} on {node.name}")
            outcome = _install(node, fname, content, float(ctx.world.clock.now()))
            installed.append(
                {"Title": fname, "HotFixID": _hotfix_id(fname, content), "Result": outcome}
            )
            restart = restart or outcome == "Installed"
        marks["Installed"] = float(ctx.world.clock.now())
        if restart:
            node.request_restart()
            ctx.work(timing.seconds("vm.restart_grace") + 1, f"{node.name} goes down")
            _wait_ready(ctx, node, reboot_limit)
            marks["Restarted"] = float(ctx.world.clock.now())
        resume_cluster_node(
            on_node, Call("Resume-ClusterNode", "", {"Name": node.name, "Failback": failback})
        )
        marks["Resumed"] = float(ctx.world.clock.now())
        _wait_storage(ctx, cl, repair_limit, node.name)
        marks["Repaired"] = float(ctx.world.clock.now())
        results.append(_node_result(node.name, "Succeeded", installed, marks))
    return [_report(cl.name, started, float(ctx.world.clock.now()), results)]


def _other(cl: Any, ctx: Context, node: str) -> str:
    """A node other than the one being updated, to run the cluster calls on."""
    return next((n for n in cl.member_nodes(ctx.world) if n != node), node)


def _node_result(
    node: str, status: str, updates: list[dict[str, Any]], marks: dict[str, float]
) -> PSObj:
    return PSObj(
        [CAU + "CauNodeResult", "System.Object"],
        {
            "Node": node,
            "Status": status,
            "UpdateResults": [
                PSObj([CAU + "CauUpdateResult", "System.Object"], dict(u)) for u in updates
            ],
            # When each phase ended (Start: when the node's turn began).
            **{f"{k}Time": at(v) for k, v in marks.items()},
        },
        to_string=node,
    )


def _report(cluster: str, start: float, end: float, nodes: list[PSObj]) -> PSObj:
    failed = [n for n in nodes if n["Status"] not in ("Succeeded", "NoUpdates")]
    return PSObj(
        [CAU + "CauRunReport", "System.Object"],
        {
            "ClusterName": cluster.upper(),
            "StartTimestamp": at(start),
            "RunDuration": timedelta(seconds=end - start),
            "Status": "Failed" if failed else "Succeeded",
            "NodeResults": nodes,
        },
        to_string=cluster.upper(),
    )


@cmdlet("Get-HotFix", params=["Id"])
def get_hotfix(ctx: Context, call: Call) -> Iterable[PSObj]:
    """Win32_QuickFixEngineering of a guest: the updates the model installed."""
    g = ctx.machine
    if not isinstance(g, GuestOS):
        raise not_modelled("Get-HotFix on the Hyper-V host itself")
    ids = {str(i).upper() for i in as_list(call.get("Id"))}
    out = []
    for h in getattr(g, "hotfixes", []):
        if ids and h["HotFixID"].upper() not in ids:
            continue
        out.append(
            PSObj(
                [
                    "System.Management.ManagementObject#root\\cimv2\\Win32_QuickFixEngineering",
                    "System.Management.ManagementObject",
                    "System.Object",
                ],
                {
                    "HotFixID": h["HotFixID"],
                    "Description": h["Description"],
                    "InstalledOn": at(h["InstalledOn"]),
                    "CSName": g.name,
                },
                to_string=h["HotFixID"],
            )
        )
    if ids and not out:
        ctx.error(
            PSError(
                f"Cannot find the requested hotfix on the '{g.name}' computer. Verify the input "
                "and run the command again.",
                fqid="GetHotFixNoEntriesFound,Microsoft.PowerShell.Commands.GetHotFixCommand",
                category="ObjectNotFound",
                target=sorted(ids)[0],
            )
        )
    return out


def invoke_cau_run_by_node(ctx: Any, run: dict[str, Any]) -> list[PSObj]:
    """templates/guest/Invoke-CauRunByNode.ps1: Invoke-CauRun @Run, then one flat
    record per node (what the script's loop writes)."""
    from hvsim import bind

    call = bind.bind("Invoke-CauRun", [(str(k), v) for k, v in (run or {}).items()], False, None)
    report = next(iter(invoke_cau_run(ctx, call)))
    out = []
    for node in report["NodeResults"]:
        updates = ";".join(f"{u['HotFixID']}={u['Result']}" for u in node["UpdateResults"])
        out.append(
            PSObj(
                ["System.Management.Automation.PSCustomObject", "System.Object"],
                {
                    "Cluster": report["ClusterName"],
                    "RunStatus": report["Status"],
                    "Node": node["Node"],
                    "Status": node["Status"],
                    "Updates": updates,
                    "Started": node.get("StartTime"),
                    **{
                        k: node.get(f"{k}Time")
                        for k in ("Drained", "Installed", "Restarted", "Resumed", "Repaired")
                    },
                },
            )
        )
    return out
