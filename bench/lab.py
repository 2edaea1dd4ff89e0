"""Benchmark of lab.up against hvsim: makespan against the critical path, and cost.

Run: python bench/lab.py [--timescale 0.01]

Measured in one run, side by side:
- modelled makespan of lab.up (2-node and 4-node) at a timescale > 0, the
  critical-path lower bound for that spec from hvsim's duration table, and their
  ratio; the same with --parallel 1;
- controller wall time and round trips at timescale 0;
- wall time of a no-op re-run (lab.up on a complete lab);
- the controller's peak RSS while building an 8-node lab (hvsim runs in its own
  process for that measurement, so only hvlab is counted).

- the same makespan and critical path when the lab runs on base images that
  image.build made with the node roles (and the DC's AD DS) staged (R-120):
  the nodes skip the role install and the Hyper-V double boot.

- round trips and wall times over a slow link (see --link below).

Targets: ratio <= 1.10 (2-node) and <= 1.15 (4-node); no-op re-run < 3 s;
controller RSS < 150 MB; 4-node makespan on staged images <= 18 minutes.

`--images-only` measures only the makespans and critical paths, default images
against staged ones, side by side.

- a whole-lab restore against a fresh lab.up (R-130): each lab is built, checkpointed
  (lab.checkpoint) and restored (lab.restore); the modelled seconds each took on
  the host's clock, and the makespans (wall time / timescale). `--restore-only`
  measures only these.

`--link` measures what round trips cost over a link that is not loopback: at 0 and
at 50 ms per HTTP exchange (hvsim's link latency, `--latencies`), for the 2-node and
4-node labs, the host calls, HTTP exchanges and wall time of a full build at
timescale 0 (the controller's time outside modelled waits), of a no-op re-run, of
lab.status and of lab.plan on the complete lab. Each measurement runs
bench/lab_tasks.py in a child process. With `--before REV` the same is measured,
in the same run, for the hvlab of git revision REV (against this tree's hvsim) and
shown side by side. Targets: no-op re-run of the default lab at most 25 round trips
and under 1 s at 0 ms, under 2 s at 50 ms; lab.status at most 10 round trips; the
4-node no-op under 3 s at 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hvlab.spec import load_lab  # noqa: E402
from hvsim import timing  # noqa: E402

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Bench-Admin-Pa55!",
    "HVLAB_DSRM_PASSWORD": "Bench-Dsrm-Pa55!",
}


def critical_path(lab_file: Path, staged: bool = False, staged_dc: bool = False) -> float:
    """The longest chain of modelled durations lab.up cannot avoid for this spec.

    Host side: the switches, then per VM its OS disk, the offline answer file
    (mount and dismount), New-VM and Start-VM; nodes also create their data disks
    (side by side). The mount-inject-dismount section runs one VM at a time on a
    host (R-91). The DC goes first: the other VMs are made once it answered over
    PowerShell Direct (R-94) and its promotion restart is under way, so only they
    wait for the DC's first boot, its AD DS install and each other's sections. Then
    the first boot. The DC's install and promotion reboot
    (ad.promote covers both) and AD becoming ready; the nodes' roles with their
    double reboot once the DC is ready, then each node's vSwitch (side by side,
    before the cluster: R-70); validation, the cluster and the witness; S2D and the
    volumes; the HA VMs (side by side) with their start and live migration.
    Parallel branches count once.

    With `staged` node images (R-120) a node's first boot also finishes the staged
    roles and the node only joins and restarts once; with `staged_dc` the DC's first
    boot finishes AD DS and the DC skips its install. Boot contention is left out,
    as for the default images.
    """
    spec = load_lab(lab_file)
    d = timing.DURATIONS
    switches = d["switch.create"] * len(spec.switches)
    per_vm = d["vhd.create_dynamic"] + 2 * d["vhd.mount"] + d["vm.create"] + d["vm.start"]
    staged_boot = d["vm.first_boot"] + d["feature.staged_first_boot"]
    dc_boot = staged_boot if staged_dc else d["vm.first_boot"]
    promote = d["ad.promote"] - (d["feature.install"] if staged_dc else 0.0)
    dc_ready = switches + per_vm + dc_boot + promote + d["ad.ready"]
    serialized = (len(spec.vms) - 1) * 2 * d["vhd.mount"]  # the other VMs' mount sections
    # The nodes are made once the DC answered over PowerShell Direct and its
    # promotion restart is under way (after its AD DS install, unless staged).
    proof = switches + per_vm + dc_boot + (0.0 if staged_dc else d["feature.install"])
    node_first_boot = staged_boot if staged else d["vm.first_boot"]
    node_boot = proof + per_vm + serialized + d["vhd.create_dynamic"] + node_first_boot
    node_roles = d["domain.join_restart"] if staged else d["feature.hyperv_install"]
    roles = max(dc_ready, node_boot) + node_roles + d["switch.create"]
    cluster = d["cluster.test"] + d["cluster.create"] + d["cluster.quorum"]
    s2d = d["s2d.enable"] + d["s2d.new_volume"] * len(spec.volumes)
    ha = (
        d["vm.create"] + d["cluster.add_vm_role"] + d["vm.start"] + d["cluster.live_migration"]
        if spec.ha_vms
        else 0.0
    )
    return roles + cluster + s2d + ha


def run_up(lab_file: Path, timescale: float, parallel: int = 0, state: Path | None = None) -> dict:
    """lab.up against the embedded hvsim in this process; returns the JSON report."""
    from hvlab import lab as labmod

    os.environ["HVSIM_TIMESCALE"] = str(timescale)
    os.environ.update(PASSWORDS)
    base = state or Path(tempfile.mkdtemp(prefix="hvlab-bench-"))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return labmod.up(None, lab=str(lab_file), parallel=parallel, as_json=True, state_base=base)


def staged_lab(lab_file: Path, state: Path, folder: Path, *, staged_dc: bool = False) -> Path:
    """Build base images into the embedded host under `state` from a modelled
    evaluation ISO (uploaded with --iso-local): one with the node roles staged for
    the nodes, and one for the DC, with AD DS staged when `staged_dc`. Write a copy
    of the lab file that uses them by name, and return it."""
    import yaml

    from hvlab import image
    from hvsim.model import iso

    os.environ["HVSIM_TIMESCALE"] = "0"
    media = folder / "server2022-eval.iso"
    media.write_bytes(iso.manifest_bytes(iso.server_2022_indexes(evaluation=True)))
    dc_name = "bench-dc-staged" if staged_dc else "bench-dc"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        image.build(
            None, iso_local=str(media), name="bench-node", features="node", state_base=state
        )
        image.build(
            None,
            iso_local=str(media),
            name=dc_name,
            features="dc" if staged_dc else None,
            state_base=state,
        )
    spec = yaml.safe_load(lab_file.read_text())
    spec["host"]["images"] = {"node": {"name": "bench-node"}, "dc": {"name": dc_name}}
    spec.setdefault("defaults", {})["image"] = "node"
    for vm in spec["vms"]:
        if vm["role"] == "dc":
            vm["image"] = "dc"
    out = folder / lab_file.name
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def images_rows(ts: float) -> list[dict]:
    """Makespan and critical path per lab on the default images, on images with the
    node roles staged (the DC's image from the same ISO, nothing staged), and with
    AD DS staged into the DC's image as well (R-120)."""
    rows = []
    for name in ("s2d-2node", "s2d-4node"):
        lab_file = ROOT / "labs" / f"{name}.yaml"
        row: dict = {"lab": name}
        plain = run_up(lab_file, ts)
        row["default_critical_path_s"] = round(critical_path(lab_file), 1)
        row["default_makespan_s"] = round(modelled(plain, lab_file, ts), 1)
        for label, staged_dc in (("staged", False), ("staged_dc_too", True)):
            state = Path(tempfile.mkdtemp(prefix="hvlab-bench-"))
            folder = Path(tempfile.mkdtemp(prefix="hvlab-lab-"))
            staged_file = staged_lab(lab_file, state, folder, staged_dc=staged_dc)
            report = run_up(staged_file, ts, state=state)
            row[f"{label}_critical_path_s"] = round(
                critical_path(staged_file, staged=True, staged_dc=staged_dc), 1
            )
            row[f"{label}_makespan_s"] = round(modelled(report, staged_file, ts), 1)
        for label in ("default", "staged", "staged_dc_too"):
            row[f"{label}_makespan_min"] = round(row[f"{label}_makespan_s"] / 60, 1)
        row["staged_to_default"] = round(row["staged_makespan_s"] / row["default_makespan_s"], 3)
        rows.append(row)
        print(json.dumps({"timescale": ts, **row}), flush=True)
    return rows


def run_lifecycle(verb: str, lab_file: Path, timescale: float, state: Path, name: str) -> dict:
    """lab.checkpoint / lab.restore NAME on the lab built under `state`."""
    from hvlab import lifecycle

    os.environ["HVSIM_TIMESCALE"] = str(timescale)
    os.environ.update(PASSWORDS)
    call = getattr(lifecycle, verb)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return call(None, name, lab=str(lab_file), as_json=True, state_base=state)


def restore_rows(ts: float) -> list[dict]:
    """A restore of each lab against a fresh lab.up, measured side by side."""
    rows = []
    for name in ("s2d-2node", "s2d-4node"):
        lab_file = ROOT / "labs" / f"{name}.yaml"
        state = Path(tempfile.mkdtemp(prefix="hvlab-bench-"))
        up = run_up(lab_file, ts, state=state)
        checkpoint = run_lifecycle("checkpoint", lab_file, ts, state, "bench")
        restore = run_lifecycle("restore", lab_file, ts, state, "bench")
        up_clock = float(up["modelled_clock_seconds"])
        rows.append(
            {
                "lab": name,
                "up_modelled_s": round(up_clock, 1),
                "checkpoint_modelled_s": checkpoint["host_seconds"],
                "restore_modelled_s": restore["host_seconds"],
                "restore_vs_up": round(restore["host_seconds"] / up_clock, 3),
                "up_makespan_s": round(modelled(up, lab_file, ts), 1) if ts else None,
                "restore_makespan_s": round(restore["wall_seconds"] / ts, 1) if ts else None,
                "restore_steps": len(restore["steps"]),
            }
        )
    return rows


def modelled(report: dict, lab_file: Path, timescale: float) -> float:
    return report["wall_seconds"] / timescale


def rss_8node(lab_file: Path) -> float:
    """Peak RSS (MB) of a controller building an 8-node lab against hvsim in another process."""
    code = f"""
import os, resource, sys, json, io, contextlib
sys.path.insert(0, {str(ROOT)!r})
from hvlab import lab as labmod
os.environ.update({PASSWORDS!r})
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    labmod.up(None, lab={str(lab_file)!r}, as_json=True, yes=True)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    from hvsim.model.world import World
    from hvsim.server import serve_in_thread

    world = World.create(timescale=0.0)
    with serve_in_thread(world, auth="ntlm", user="bench", password="Bench-Host-Pa55!") as server:
        env = dict(
            os.environ,
            HVLAB_HOST=server.url,
            HVLAB_USER="bench",
            HVLAB_PASSWORD="Bench-Host-Pa55!",
            HVLAB_AUTH="ntlm",
            HVLAB_CERT_VALIDATION="false",
            HVLAB_TIME_FACTOR="0",
        )
        with tempfile.TemporaryDirectory() as cwd:
            out = subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
    if out.returncode != 0:
        raise SystemExit(f"8-node controller run failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def tree_at(rev: str, folder: Path) -> Path:
    """A folder from which Python imports the hvlab of git revision `rev` and this
    tree's hvsim (which serves the link latency and counts exchanges; it only adds to
    what earlier hvlabs send, and knows their constant scripts)."""
    export = folder / "tree"
    export.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(export)], input=archive, check=True)
    # setup.py maps these folders into the package; a plain import needs them there.
    for name in ("labs", "templates", "unattend"):
        (export / "hvlab" / name).symlink_to(export / name)
    path = folder / "path"
    path.mkdir()
    (path / "hvlab").symlink_to(export / "hvlab")
    (path / "hvsim").symlink_to(ROOT / "hvsim")
    return path


def link_costs(lab_file: Path, latency: float, path: Path | None) -> dict:
    """bench/lab_tasks.py in a child process; `path` puts another hvlab first."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "lab_tasks.py"),
            "--lab",
            str(lab_file),
            "--latency",
            str(latency),
        ],
        env=env,
        cwd=tempfile.mkdtemp(prefix="hvlab-bench-"),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"lab_tasks.py failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def link_rows(latencies: list[float], before: str | None) -> list[dict]:
    """Round trips and wall times per lab, latency and task; before and after side by
    side when `before` names a revision."""
    variants: list[tuple[str, Path | None]] = [("after", None)]
    if before:
        variants.insert(0, ("before", tree_at(before, Path(tempfile.mkdtemp(prefix="hvlab-")))))
    rows = []
    for name in ("s2d-2node", "s2d-4node"):
        lab_file = ROOT / "labs" / f"{name}.yaml"
        for latency in latencies:
            for label, path in variants:
                costs = link_costs(lab_file, latency, path)
                row = {"variant": label, **costs}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


TASKS = {"noop": "no-op re-run", "status": "lab.status", "plan": "lab.plan", "build": "full build"}


def link_table(rows: list[dict]) -> str:
    """The figures as a Markdown table, before and after side by side: host calls,
    HTTP exchanges and wall seconds per lab, latency and task."""
    variants = [v for v in ("before", "after") if any(r["variant"] == v for r in rows)]
    head = "| lab, latency | task | " + " | ".join(
        f"{v}: calls / exchanges / wall" for v in variants
    )
    lines = [head + " |", "|---|---|" + "---|" * len(variants)]
    cases = sorted({(r["lab"], r["latency_ms"]) for r in rows}, key=lambda c: (c[0], c[1]))
    for lab, latency in cases:
        by = {r["variant"]: r for r in rows if (r["lab"], r["latency_ms"]) == (lab, latency)}
        for task, title in TASKS.items():
            cells = [
                f"{by[v][task]['host_calls']} / {by[v][task]['exchanges']} / "
                f"{by[v][task]['wall_s']:.2f} s"
                for v in variants
            ]
            lines.append(f"| {lab}, {latency:g} ms | {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timescale", type=float, default=0.05)
    parser.add_argument(
        "--images-only", action="store_true", help="only default against staged images"
    )
    parser.add_argument(
        "--restore-only", action="store_true", help="only a restore against a fresh lab.up"
    )
    parser.add_argument(
        "--link", action="store_true", help="only the cost of round trips over a slow link"
    )
    parser.add_argument(
        "--latencies", default="0,50", help="milliseconds per HTTP exchange for --link"
    )
    parser.add_argument(
        "--before", default=None, help="a git revision whose hvlab --link measures too"
    )
    args = parser.parse_args()
    ts = args.timescale
    if args.restore_only:
        print(json.dumps({"timescale": ts, "restore": restore_rows(ts)}, indent=2))
        return
    if args.images_only:
        print(json.dumps({"timescale": ts, "images": images_rows(ts)}, indent=2))
        return
    if args.link:
        latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
        rows = link_rows(latencies, args.before)
        print(link_table(rows))
        return
    rows = []
    for name, target in (("s2d-2node", 1.10), ("s2d-4node", 1.15)):
        lab_file = ROOT / "labs" / f"{name}.yaml"
        bound = critical_path(lab_file)
        full = run_up(lab_file, ts)
        serial = run_up(lab_file, ts, parallel=1)
        instant_state = Path(tempfile.mkdtemp(prefix="hvlab-bench-"))
        instant = run_up(lab_file, 0.0, state=instant_state)
        t0 = time.monotonic()
        noop = run_up(lab_file, 0.0, state=instant_state)
        noop_wall = time.monotonic() - t0
        rows.append(
            {
                "lab": name,
                "critical_path_s": round(bound, 1),
                "makespan_s": round(modelled(full, lab_file, ts), 1),
                "ratio": round(modelled(full, lab_file, ts) / bound, 3),
                "target": target,
                "makespan_parallel1_s": round(modelled(serial, lab_file, ts), 1),
                "ratio_parallel1": round(modelled(serial, lab_file, ts) / bound, 3),
                "wall_ts0_s": instant["wall_seconds"],
                "round_trips_ts0": instant["round_trips"],
                "noop_rerun_wall_s": round(noop_wall, 2),
                "noop_changes": noop["changed"],
            }
        )
        print(json.dumps({"timescale": ts, **rows[-1]}), flush=True)
    images = images_rows(ts)
    restores = restore_rows(ts)
    rss = rss_8node(ROOT / "bench" / "s2d-8node.yaml")
    link = link_rows([0.0, 50.0], args.before)
    print(
        json.dumps(
            {
                "timescale": ts,
                "labs": rows,
                "images": images,
                "restore": restores,
                "controller_peak_rss_mb_8node": rss,
                "link": link,
            },
            indent=2,
        )
    )
    print(link_table(link))


if __name__ == "__main__":
    main()
