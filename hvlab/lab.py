"""lab.up, lab.plan (against a host), lab.status and lab.down."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from hvlab import report as progress
from hvlab.creds import CredentialBook
from hvlab.engine import Run, StepResult
from hvlab.errors import ConfigError, HostError, HvlabError, StepError
from hvlab.paths import state_dir
from hvlab.session import Session, open_session
from hvlab.state import LabState
from hvlab.steps import build as build_steps
from hvlab.steps.common import SILENT, first, has_mark, lab_folder_is_ours, owns_vm, text, val


def _load(config: Any, lab: str | None) -> Any:
    from hvlab.cli import lab_path
    from hvlab.spec import load_lab

    return load_lab(lab_path(config, lab))


def _secrets(spec: Any, session: Session) -> Any:
    from hvlab.secrets import resolve_secrets

    prompt = None if session.simulated or not sys.stdin.isatty() else True
    return resolve_secrets(spec, prompt=prompt, simulated=session.simulated)


def _credential(user: str, secret: Any) -> Any:
    from hvlab.remote import Credential

    return Credential(user, secret)


def _say(stream: IO[str], line: str) -> None:
    print(line, file=stream, flush=True)


@contextlib.contextmanager
def _on_host(
    verb: str,
    config: Any,
    lab: str | None,
    as_json: bool,
    state_base: Path | None,
    parallel: int = 0,
) -> Iterator[tuple[Any, Session, IO[str]]]:
    """Load the lab, open the host, and say first which host it is (simulated or not).
    With --json the text goes to stderr so stdout holds only the report."""
    spec = _load(config, lab)
    out = sys.stderr if as_json else sys.stdout
    with open_session(config, parallel=parallel, state_base=state_base) as session:
        _say(out, f"hvlab lab.{verb} {spec.name} on {session.description}")
        yield spec, session, out


def _services(
    spec: Any, session: Session, secrets: Any, state: LabState, config: Any = None
) -> dict[str, Any]:
    from hvlab.cli import _config_value
    from hvlab.render import render_unattend

    hard_reset = _config_value(config, "hard_reset")
    return {
        # One power cycle for a first boot that never answers; hvlab.hard_reset.
        "hard_reset": True if hard_reset is None else bool(hard_reset),
        "host": session.host,
        "lab": spec,
        "secrets": secrets,
        "creds": CredentialBook(spec, secrets, _credential),
        "state": state,
        "render_unattend": lambda vm: render_unattend(spec, vm, secrets),
    }


def up(
    config: Any = None,
    *,
    lab: str | None = None,
    parallel: int = 0,
    as_json: bool = False,
    yes: bool = False,
    trace: str | None = None,
    state_base: Path | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    with _on_host("up", config, lab, as_json, state_base, parallel) as (spec, session, out):
        folder = state_dir(spec.name, state_base)
        state = LabState(folder)
        if not session.simulated and not yes:
            _confirm(f"Build lab {spec.name} on {session.description}?")
        _say(out, "Nested virtualization is for labs and evaluation, not production clusters.")
        secrets = _secrets(spec, session)
        reporter = progress.reporter(out)
        run = Run(
            build_steps(spec),
            _services(spec, session, secrets, state, config),
            reporter,
            parallel=parallel,
            time_factor=session.time_factor,
            min_deadline=min_wait(),
            on_step_done=state.record_step,
        )
        error: HvlabError | None = None
        try:
            results = run.execute()
        except HvlabError as err:
            error = err
            results = list(run.results.values())
        finally:
            reporter.close()
            _write_trace(session, folder, trace)
        payload = _report(spec, session, results, time.monotonic() - started, error)
        if error is None:
            payload["endpoints"] = endpoints(spec)
        else:
            _diagnostics(session, spec, state, results, error)
        state.write_json("report.json", payload)
        for line in progress.summary_lines(results):
            _say(out, line)
        if as_json:
            print(json.dumps(payload, indent=2, default=str))
        if error is not None:
            raise error
        return payload


def min_wait() -> float:
    """The shortest any wait may be (real seconds), however fast the simulated clock runs.

    HVLAB_MIN_WAIT lowers it for tests that make a guest hang on purpose."""
    raw = os.environ.get("HVLAB_MIN_WAIT", "30")
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ConfigError(f"HVLAB_MIN_WAIT must be a number of seconds, not {raw!r}") from None


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise ConfigError(f"{question} Pass --yes to confirm when not on a terminal.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise ConfigError("not confirmed; nothing was changed")


def _report(
    spec: Any, session: Session, results: list[StepResult], wall: float, error: Exception | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "lab": spec.name,
        "host": {"simulated": session.simulated, "description": session.description},
        "result": "ok" if error is None else "failed",
        "error": str(error) if error else None,
        "changed": sum(1 for r in results if r.changed),
        "wall_seconds": round(wall, 3),
        "round_trips": len(getattr(session.host, "trace", []) or []),
        "steps": [r.to_json() for r in results],
    }
    modelled = session.modelled_seconds()
    if modelled is not None:
        payload["modelled_clock_seconds"] = round(modelled, 1)
    return payload


def endpoints(spec: Any) -> dict[str, Any]:
    def ip(vm: Any) -> str | None:
        return str(vm.nics[0].ip) if vm.nics and vm.nics[0].ip else None

    return {
        "dc": {"name": spec.dc.name, "ip": ip(spec.dc)} if spec.dc else None,
        "nodes": [{"name": n.name, "ip": ip(n)} for n in spec.nodes],
        "cluster": {"name": spec.cluster.name, "address": str(spec.cluster.address)},
        "csv": [v.csv_path for v in spec.volumes],
        "ha_vms": [h.name for h in spec.ha_vms],
    }


def _write_trace(session: Session, folder: Path, extra: str | None) -> None:
    writer = getattr(session.host, "write_trace", None)
    if writer is None:
        return
    writer(folder / "trace.jsonl")
    if extra:
        writer(Path(extra))


def _diagnostics(
    session: Session, spec: Any, state: LabState, results: list[StepResult], error: Exception
) -> None:
    """What a person needs to see why the build stopped: no secrets, best effort."""
    bundle: dict[str, Any] = {
        "error": str(error),
        "failed_steps": [r.to_json() for r in results if r.status == "failed"],
        "host_facts": None,
        "vms": [],
    }
    try:
        bundle["vms"] = [
            {
                "name": vm.name,
                "records": [_plain(r) for r in session.host.run("Get-VM", Name=vm.name, **SILENT)],
            }
            for vm in spec.vms
        ]
        bundle["host_facts"] = [_plain(r) for r in session.host.run("Get-VMHost")]
    except HvlabError as err:  # the host may be the thing that failed
        bundle["host_error"] = str(err)
    state.write_json("diagnostics.json", bundle)


def _plain(rec: Any) -> dict[str, Any]:
    keys = (
        "Name",
        "State",
        "Status",
        "Heartbeat",
        "Uptime",
        "ComputerName",
        "MemoryCapacity",
        "Notes",
    )
    return {k: text(val(rec, k)) for k in keys if val(rec, k) is not None}


def plan(
    config: Any = None,
    *,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
) -> dict[str, Any]:
    """The same steps with every change recorded instead of made."""
    with _on_host("plan", config, lab, as_json, state_base) as (spec, session, out):
        secrets = _secrets(spec, session)
        state = LabState(state_dir(spec.name, state_base))
        run = Run(
            build_steps(spec),
            _services(spec, session, secrets, state, config),
            progress.PlainReporter(open_devnull()),
            planning=True,
            time_factor=session.time_factor,
        )
        results = run.execute()
    ahead = _planned_resources(spec, results)
    payload = {
        "lab": spec.name,
        "changes": sum(1 for r in results if r.changed),
        "steps": [{**r.to_json(), "resources": ahead.get(r.name, [])} for r in results],
    }
    if as_json:
        print(json.dumps(payload, indent=2))
    else:
        for r in results:
            if r.status == "would-change":
                _say(
                    out, f"  {r.name:<22} would change: {r.changes[0]} (then the rest of the step)"
                )
            elif r.status == "blocked":
                _say(out, f"  {r.name:<22} pending: {'; '.join(r.reasons)}")
            else:
                _say(out, f"  {r.name:<22} no change: {'; '.join(r.reasons[:3])}")
            for res in ahead.get(r.name, []):
                _say(out, f"      + {res['kind']:<15} {res['name']}  {res['detail']}")
        _say(
            out,
            "nothing to change"
            if not payload["changes"]
            else f"{payload['changes']} step(s) would change",
        )
    return payload


# Which phases of the offline inventory each kind of step creates.
_STEP_PHASES = {
    "switches": ("switches", "NAT"),
    "folder": ("folders",),
    "vm": ("disks", "VMs", "NICs"),
    "boot": ("boot",),
    "domain": ("domain",),
    "roles": ("features",),
    "cluster": ("cluster",),
    "s2d": ("S2D", "volumes"),
    "ha": ("HA VM",),
}


def _planned_resources(spec: Any, results: list[StepResult]) -> dict[str, list[dict[str, str]]]:
    """For each step that would change or waits on a change: what it will create,
    as on an empty host (the host cannot be asked about what does not exist yet)."""
    from hvlab.spec.inventory import inventory

    phases = {p["name"]: p["resources"] for p in inventory(spec)}
    out: dict[str, list[dict[str, str]]] = {}
    for r in results:
        if r.status not in ("would-change", "blocked"):
            continue
        kind = r.name.split(":", 1)[0]
        items = [res for ph in _STEP_PHASES.get(kind, ()) for res in phases.get(ph, [])]
        if ":" in r.name:
            scope = r.scope.lower()
            items = [res for res in items if scope in f"{res['name']} {res['detail']}".lower()]
        out[r.name] = items
    return out


def open_devnull() -> IO[str]:
    return open(os.devnull, "w", encoding="utf-8")


# --- status ---------------------------------------------------------------------


def status(
    config: Any = None,
    *,
    lab: str | None = None,
    as_json: bool = False,
    state_base: Path | None = None,
) -> dict[str, Any]:
    with _on_host("status", config, lab, as_json, state_base) as (spec, session, out):
        secrets = _secrets(spec, session)
        services = _services(spec, session, secrets, LabState(state_dir(spec.name, state_base)))
        data = collect_status(spec, session.host, services["creds"])
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        _print_status(out, data)
    return data


def collect_status(spec: Any, host: Any, creds: CredentialBook) -> dict[str, Any]:
    from hvlab.guest import Guest

    data: dict[str, Any] = {
        "lab": spec.name,
        "vms": [],
        "cluster": None,
        "s2d": None,
        "csv": [],
        "ha_vms": [],
    }
    folder_is_ours = lab_folder_is_ours(host, spec)
    for vm in spec.vms:
        rec = first(host.run("Get-VM", Name=vm.name, **SILENT))
        if rec is None or not owns_vm(rec, spec, folder_is_ours):
            data["vms"].append({"name": vm.name, "state": "Missing" if rec is None else "NotOurs"})
            continue
        nics = host.run("Get-VMNetworkAdapter", VMName=vm.name)
        disks = host.run("Get-VMHardDiskDrive", VMName=vm.name)
        data["vms"].append(
            {
                "name": vm.name,
                "role": vm.role,
                "state": text(val(rec, "State")),
                "uptime_seconds": _seconds(val(rec, "Uptime")),
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

    def g(cmd: str, **p: Any) -> list[Any]:
        for cred in (creds.domain_admin, creds.local_admin):
            try:
                return Guest(host, node, cred).run(cmd, **p)
            except HostError as err:
                if "credential" not in err.message.lower():
                    raise
        return []

    try:
        cl = first(g("Get-Cluster", **SILENT))
    except HostError as err:
        data["cluster"] = {"error": err.message}
        return data
    if cl is None:
        return data
    quorum = first(g("Get-ClusterQuorum", **SILENT))
    data["cluster"] = {
        "name": text(val(cl, "Name")),
        "address": str(spec.cluster.address),
        "witness": text(val(quorum, "QuorumResource")) or None,
        "nodes": [
            {"name": text(val(n, "Name")), "state": text(val(n, "State"))}
            for n in g("Get-ClusterNode")
        ],
    }
    pool = first(g("Get-StoragePool", IsPrimordial=False, **SILENT))
    if pool is not None:
        members = [
            d for d in g("Get-PhysicalDisk") if text(val(d, "CannotPoolReason")) == "In a Pool"
        ]
        data["s2d"] = {
            "pool": {
                "name": text(val(pool, "FriendlyName")),
                "health": text(val(pool, "HealthStatus")),
                "operational": text(val(pool, "OperationalStatus")),
                "disks": len(members),
            }
        }
    for csv in g("Get-ClusterSharedVolume", **SILENT):
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
    for ha in spec.ha_vms:
        grp = first(g("Get-ClusterGroup", Name=ha.name, **SILENT))
        data["ha_vms"].append(
            {
                "name": ha.name,
                "state": text(val(grp, "State")) if grp is not None else "Missing",
                "owner_node": text(val(grp, "OwnerNode")) if grp is not None else None,
            }
        )
    return data


def _seconds(value: Any) -> float | None:
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
    _say(out, f"lab {data['lab']}")
    for vm in data["vms"]:
        ips = ", ".join(ip for n in vm.get("nics", []) for ip in n["ips"])
        _say(out, f"  VM {vm['name']:<12} {vm['state']:<8} {ips}")
    cl = data.get("cluster")
    if cl and "nodes" in cl:
        nodes = ", ".join(f"{n['name']} {n['state']}" for n in cl["nodes"])
        _say(out, f"  cluster {cl['name']} {cl['address']}: {nodes}; witness {cl['witness']}")
    elif cl:
        _say(out, f"  cluster: {cl.get('error')}")
    if data.get("s2d"):
        pool = data["s2d"]["pool"]
        _say(out, f"  pool {pool['name']}: {pool['health']}, {pool['disks']} disks")
    for csv in data["csv"]:
        _say(out, f"  CSV {csv['path']} {csv['state']}")
    for ha in data["ha_vms"]:
        _say(out, f"  HA VM {ha['name']} {ha['state']} on {ha['owner_node']}")


# --- down -----------------------------------------------------------------------


def down(
    config: Any = None,
    *,
    lab: str | None = None,
    yes: bool = False,
    as_json: bool = False,
    state_base: Path | None = None,
) -> dict[str, Any]:
    """Remove what carries this lab's mark; leave everything else as it is."""
    removed: list[str] = []
    problems: list[str] = []
    with _on_host("down", config, lab, as_json, state_base) as (spec, session, out):
        host = session.host
        targets = find_marked(spec, host)
        if not any(targets.values()):
            _say(out, "nothing of this lab is on the host")
        else:
            for kind, names in targets.items():
                for name in names:
                    shown = f"{name[1]} ({name[0]})" if isinstance(name, tuple) else name
                    _say(out, f"  will remove {kind} {shown}")
            if not yes:
                _confirm(
                    f"Remove {sum(len(v) for v in targets.values())} resources of lab {spec.name}?"
                )

        def attempt(what: str, fn: Any) -> None:
            # Keep going when parts are already gone: down must always finish.
            try:
                fn()
                removed.append(what)
                _say(out, f"  removed {what}")
            except HostError as err:
                problems.append(f"{what}: {err}")
                _say(out, f"  could not remove {what}: {err.message}")

        for vm_id, name in targets["vm"]:
            # By Id through the pipeline: another VM may share the name and is not ours.
            attempt(
                f"VM {name}",
                lambda i=vm_id: (
                    host.pipeline(
                        [("Get-VM", {"Id": i}), ("Stop-VM", {"TurnOff": True, "Force": True})]
                    ),
                    host.pipeline([("Get-VM", {"Id": i}), ("Remove-VM", {"Force": True})]),
                ),
            )
        for folder in targets["folder"]:
            attempt(
                f"folder {folder}",
                lambda f=folder: host.run("Remove-Item", Path=f, Recurse=True, Force=True),
            )
        for nat in targets["nat"]:
            attempt(f"NAT {nat}", lambda n=nat: host.run("Remove-NetNat", Name=n, Confirm=False))
        for switch in targets["switch"]:
            attempt(
                f"switch {switch}", lambda s=switch: host.run("Remove-VMSwitch", Name=s, Force=True)
            )
    payload = {"lab": spec.name, "removed": removed, "problems": problems}
    if as_json:
        print(json.dumps(payload, indent=2))
    if problems:
        raise StepError("down", "; ".join(problems))
    _say(out, f"removed {len(removed)} resources of lab {spec.name}")
    return payload


def find_marked(spec: Any, host: Any) -> dict[str, list[Any]]:
    """Everything on the host that carries this lab's mark."""
    targets: dict[str, list[Any]] = {"vm": [], "folder": [], "nat": [], "switch": []}
    root = spec.root
    folder_is_ours = lab_folder_is_ours(host, spec)
    for vm in host.run("Get-VM"):
        # A VM without Notes counts only when the folder it lives in is ours.
        if owns_vm(vm, spec, folder_is_ours):
            targets["vm"].append((text(val(vm, "Id")), text(val(vm, "Name"))))
    if folder_is_ours:
        targets["folder"].append(root)
    for nat in host.run("Get-NetNat", **SILENT):
        if text(val(nat, "Name")) == f"{spec.name}-nat":
            targets["nat"].append(text(val(nat, "Name")))
    for sw in host.run("Get-VMSwitch"):
        if has_mark(val(sw, "Notes"), spec.name):
            targets["switch"].append(text(val(sw, "Name")))
    return targets
