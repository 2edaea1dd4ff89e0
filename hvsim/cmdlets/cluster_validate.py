"""Test-Cluster: validation categories, the tests that fail and why (R-48, R-49,
R-54..R-56, R-15), and the HTML report."""

from __future__ import annotations

import html
from collections.abc import Iterable

from hvsim import timing
from hvsim.cmdlets._clusterkit import (
    cluster_error,
    node_ctx,
    resolve_nodes,
    write_report,
)
from hvsim.cmdlets._hvcommon import as_list
from hvsim.errors import not_modelled
from hvsim.model import s2d as S
from hvsim.model.guest import GuestOS
from hvsim.model.machine import at
from hvsim.objects import PSObj
from hvsim.registry import Call, Context, cmdlet

# -- Test-Cluster (R-48, R-49, R-54..R-56, R-15) --------------------------------------------

CATEGORIES = {
    "inventory": "Inventory",
    "network": "Network",
    "system configuration": "System Configuration",
    "storage spaces direct": "Storage Spaces Direct",
    "hyper-v configuration": "Hyper-V Configuration",
}


def _s2d_tests(nodes: list[GuestOS]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    not_dc = [n.name for n in nodes if n.edition_is_datacenter() is False]
    rows.append(
        (
            "Validate Operating System Edition",
            "Failed" if not_dc else "Success",
            f"The operating system edition of {', '.join(not_dc)} does not support Storage Spaces "
            "Direct; Datacenter is required."
            if not_dc
            else "All nodes run Datacenter.",
        )
    )
    dcs = [n.name for n in nodes if n.is_dc]
    eligible = {
        n.name: [d for d in S.guest_disks(n) if d.cannot_pool_reason({}) is None] for n in nodes
    }
    few = [name for name, disks in eligible.items() if len(disks) < 2]
    problems = []
    if dcs:
        problems.append(f"Is DC: {', '.join(dcs)} is a domain controller")
    if few:
        problems.append(
            f"{', '.join(few)} has fewer than 2 disks eligible for Storage Spaces Direct"
        )
    rows.append(
        (
            "Validate Storage Spaces Direct Support",
            "Failed" if problems else "Success",
            "; ".join(problems) or "All nodes support Storage Spaces Direct.",
        )
    )
    ids: dict[str, list[str]] = {}
    for n in nodes:
        for d in S.guest_disks(n):
            if d.is_boot:
                # Boot disks are not part of this test: children of one image share
                # its page-83 id and the real report still says Success.
                continue
            ids.setdefault(S.unique_id(d.vhd), []).append(f"{n.name} disk {d.number}")
    dups = [f"{uid} ({', '.join(where)})" for uid, where in ids.items() if len(where) > 1]
    rows.append(
        (
            "Verify Unique Device Identifiers",
            "Failed" if dups else "Success",
            "Disks share SCSI page 83h VPD identifiers: " + "; ".join(dups)
            if dups
            else "All data disks have unique SCSI page 83h VPD identifiers.",
        )
    )
    layouts = {name: sorted(d.size for d in disks) for name, disks in eligible.items()}
    differ = len({tuple(v) for v in layouts.values()}) > 1
    rows.append(
        (
            "Verify Node and Disk Configuration",
            "Failed" if differ else "Success",
            "The nodes do not have the same eligible disk configuration: "
            + "; ".join(f"{k}: {len(v)} disks" for k, v in layouts.items())
            if differ
            else "All nodes have the same disk configuration (bus type SAS, media type Unknown).",
        )
    )
    rows.append(("List Disks Eligible for Storage Spaces Direct", "Success", ""))
    return rows


def _category_rows(category: str, nodes: list[GuestOS]) -> list[tuple[str, str, str]]:
    if category == "Storage Spaces Direct":
        return _s2d_tests(nodes)
    if category == "Inventory":
        return [
            ("List Operating System Information", "Success", ""),
            ("List System Information", "Success", ""),
            ("List Software Updates", "Success", ""),
            ("List Unsigned Drivers", "Success", ""),
        ]
    if category == "Network":
        subnets = [{str(i.network) for i in n.ipv4_interfaces()} for n in nodes]
        common = set.intersection(*subnets) if subnets else set()
        apipa = [
            n.name
            for n in nodes
            if any(ip.address.startswith("169.254.") for a in n.net.adapters for ip in a.ips)
        ]
        return [
            ("List Network Binding Order", "Success", ""),
            (
                "Validate Network Communication",
                "Success" if common else "Failed",
                "" if common else "The nodes share no subnet and cannot reach each other.",
            ),
            (
                "Validate IP Configuration",
                "Warning" if apipa else "Success",
                f"{', '.join(apipa)} has an automatic private (APIPA) address." if apipa else "",
            ),
            (
                "Validate Cluster Network Configuration",
                "Warning" if len(common) < 2 else "Success",
                "The nodes are connected by one network only: a single point of failure."
                if len(common) < 2
                else "",
            ),
        ]
    if category == "System Configuration":
        domains = {n.domain for n in nodes}
        missing = [n.name for n in nodes if n.features.get("Failover-Clustering") != "Installed"]
        return [
            (
                "Validate Active Directory Configuration",
                "Failed" if None in domains or len(domains) != 1 else "Success",
                "All nodes must be members of the same domain."
                if None in domains or len(domains) != 1
                else "",
            ),
            ("Validate All Drivers Signed", "Success", ""),
            (
                "Validate Cluster Service and Driver Settings",
                "Failed" if missing else "Success",
                f"The Failover Clustering feature is not installed on {', '.join(missing)}."
                if missing
                else "",
            ),
            ("Validate Same Processor Architecture", "Success", ""),
            (
                "Validate Software Update Levels",
                "Warning",
                "Software updates could not be compared.",
            ),
        ]
    if category == "Hyper-V Configuration":
        no_hv = [n.name for n in nodes if n.hyperv is None]
        return [
            (
                "List Hyper-V Virtual Machine Information",
                "Failed" if no_hv else "Success",
                f"The Hyper-V role is not running on {', '.join(no_hv)}." if no_hv else "",
            ),
            ("Validate Hyper-V Memory Resource Pool Compatibility", "Success", ""),
            (
                "Validate Hyper-V Network Resource Pool And Virtual Switch Compatibility",
                "Success",
                "",
            ),
        ]
    return []


def _report_html(
    title: str, when: str, nodes: list[GuestOS], rows: list[tuple[str, str, str, str]]
) -> str:
    """One table per category with Name / Result / Description rows, the layout of
    the validation report's results tables (modelled, docs/model-notes.md)."""
    lines = [
        "<!DOCTYPE html>",
        f"<html><head><title>{html.escape(title)}</title></head><body>",
        "<h1>Failover Cluster Validation Report</h1>",
        f"<p>Node: {', '.join(html.escape(n.name) for n in nodes)}</p>",
        f"<p>Started {when}</p>",
    ]
    for cat in dict.fromkeys(r[0] for r in rows):
        lines.append(f"<h2>{html.escape(cat)}</h2>")
        lines.append("<table>")
        lines.append("<tr><th>Name</th><th>Result</th><th>Description</th></tr>")
        for c, test, result, detail in rows:
            if c == cat:
                lines.append(
                    f"<tr><td>{html.escape(test)}</td><td>{result}</td>"
                    f"<td>{html.escape(detail)}</td></tr>"
                )
        lines.append("</table>")
    if any(r[2] == "Failed" for r in rows):
        lines.append(
            "<p>Testing has completed for the tests you selected. You should review the "
            "warnings in the Report. A cluster solution is supported by Microsoft only if "
            "you run all cluster validation tests, and all tests succeed (with or without "
            "warnings).</p>"
        )
    else:
        lines.append(
            "<p>Testing has completed successfully and the configuration is suitable for "
            "clustering.</p>"
        )
    lines.append("</body></html>")
    return "\n".join(lines)


@cmdlet(
    "Test-Cluster", params=["Node", "Include", "ReportName", "Ignore", "Force", "List", "Cluster"]
)
def test_cluster(ctx: Context, call: Call) -> Iterable[PSObj]:
    g = node_ctx(ctx, "Test-Cluster")
    if call.switch("List") or call.get("Ignore") or call.get("Cluster"):
        raise not_modelled("Test-Cluster -List, -Ignore or -Cluster")
    names = [str(n) for n in as_list(call.get("Node"))] or [g.name]
    nodes = resolve_nodes(ctx, names, "Test-Cluster")
    if any(n.locale.lower() != "en-us" for n in [*nodes, g]):
        # validation on non-English nodes produces no report.
        raise cluster_error("Test report isn't available, try to validate again.", "Test-Cluster")
    include = [str(c) for c in as_list(call.get("Include"))] or list(CATEGORIES.values())
    cats = []
    for c in include:
        if c.lower() not in CATEGORIES:
            raise cluster_error(
                f"The test category '{c}' was not found. Use Test-Cluster -List to see the "
                "available tests.",
                "Test-Cluster",
                "InvalidArgument",
                c,
            )
        cats.append(CATEGORIES[c.lower()])
    ctx.work(timing.seconds("cluster.test"), "validating " + ", ".join(n.name for n in nodes))
    rows = [(cat, t, r, d) for cat in cats for t, r, d in _category_rows(cat, nodes)]
    now = ctx.world.clock.now()
    when = at(now).strftime("%Y.%m.%d At %H.%M.%S")
    base = str(call.get("ReportName") or f"Validation Report {when}")
    report = write_report(ctx, g, base, _report_html(base, when, nodes, rows))
    failed = any(r[2] == "Failed" for r in rows)
    warned = any(r[2] == "Warning" for r in rows)
    if failed:
        ctx.warning(
            "Test Result:\nValidationFailed\nTesting has completed for the tests you selected. "
            "The configuration is not suitable for clustering. Review the report."
        )
    elif warned:
        ctx.warning(
            "Test Result:\nClusterConditionallyApproved\nTesting has completed successfully. The "
            "configuration appears to be suitable for clustering.  However, you should review the "
            "report because it may contain warnings which you should address to attain the "
            "highest availability."
        )
    return [report]
