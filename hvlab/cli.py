"""The functions behind `invoke lab.*`. Each loads what it needs and prints its result;
errors are hvlab.errors exceptions, which tasks.py turns into exit codes.

The offline ones (validate, render, schema, plan --offline) need no host.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from hvlab import paths


def lab_path(config: Any = None, lab: str | None = None) -> Path:
    """The lab file a task works on (hvlab.paths.lab_path)."""
    return paths.lab_path(config, lab)[0]


def _config_value(config: Any, key: str) -> Any:
    if config is None:
        return None
    try:
        return config["hvlab"][key]
    except (KeyError, TypeError, AttributeError):
        return None


def _shown(path: Path) -> str:
    """The path as the user would type it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def described(path: Path, how: str) -> str:
    """The lab file as a task's first line names it: where it is, and when it is the
    copy inside the package, that it is."""
    return f"{_shown(path)} ({how})" if "shipped" in how else _shown(path)


def _emit(text: str) -> None:
    """Print, and stay quiet when the reader went away (`invoke lab.schema | head`)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def validate(config: Any = None, lab: str | None = None) -> None:
    """Print a one-line summary of a valid lab (and its warnings), or raise SpecError."""
    from hvlab.spec import load_lab

    path, how = paths.lab_path(config, lab)
    spec = load_lab(path)
    print(f"{described(path, how)}: lab {spec.name} is valid: {spec.totals().summary()}")
    for warning in spec.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def schema() -> None:
    """Print the JSON Schema of lab files (point an editor's YAML plugin at it)."""
    from hvlab.spec import Lab

    document = Lab.model_json_schema(by_alias=True)
    # `name` may be left out of a file: it defaults to the file name (the loader fills it).
    document["required"] = [key for key in document.get("required", []) if key != "name"]
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "hvlab lab file"
    _emit(json.dumps(document, indent=2, sort_keys=True))


def render(
    config: Any = None, lab: str | None = None, out: str | None = None, diagram: bool = False
) -> None:
    """Write unattend.xml and guest.json per VM into `out`; print only where they went.
    With `diagram`, write only the lab's topology picture (needs no password)."""
    from hvlab.errors import ConfigError
    from hvlab.render import render_all
    from hvlab.secrets import resolve_secrets
    from hvlab.spec import load_lab

    if diagram:
        from hvlab import pictures

        spec = load_lab(lab_path(config, lab))
        folder = Path(out or ".")
        written = pictures.topology(spec, folder / f"{spec.name}-topology.svg")
        print(f"wrote the topology of lab {spec.name} to {written}")
        return
    if not out:
        raise ConfigError("lab.render needs --out FOLDER (or --diagram for a picture)")
    spec = load_lab(lab_path(config, lab))
    secrets = resolve_secrets(spec, prompt=sys.stdin.isatty())
    try:
        written = render_all(spec, secrets, out)
    except FileExistsError as err:
        raise ConfigError(
            f"cannot write the rendered files to {out}: {err.filename} appeared "
            "while writing; run again"
        ) from None
    except OSError as err:
        raise ConfigError(
            f"cannot write the rendered files to {out}: {err.strerror or err}"
        ) from None
    print(
        f"wrote {len(written)} files for {len(spec.vms)} VMs of lab {spec.name} to {out} "
        "(unattend.xml holds the encoded administrator password: keep the folder private)"
    )


def plan(
    config: Any = None, lab: str | None = None, as_json: bool = False, offline: bool = False
) -> None:
    """What lab.up would create, phase by phase. Without a host (offline) the list is
    everything the lab holds, as on an empty host."""
    from hvlab.spec import load_lab
    from hvlab.spec.inventory import inventory

    if not offline:
        plan_on_host(config, lab, as_json)
        return
    spec = load_lab(lab_path(config, lab))
    phases = inventory(spec)
    if as_json:
        _emit(json.dumps({"lab": spec.name, "offline": True, "phases": phases}, indent=2))
        return
    _emit(_plan_text(spec.name, spec.totals().summary(), phases))


def _plan_text(name: str, summary: str, phases: list[dict[str, Any]]) -> str:
    lines = [f"Plan for lab {name} (offline: no host asked; everything is new): {summary}"]
    for number, phase in enumerate(phases, 1):
        lines.append(f"{number:2}. {phase['name']}")
        if not phase["resources"]:
            lines.append("      (nothing)")
        for res in phase["resources"]:
            lines.append(f"      + {res['kind']:<15} {res['name']}  {res['detail']}")
    return "\n".join(lines)


# --- against a host (the configured one, or the embedded simulated host) ---------


def _lab(config: Any, lab: str | None, as_json: bool) -> Any:
    """The lab through the Python API, its text on the terminal: stdout, or stderr when
    stdout carries the JSON report."""
    from hvlab.api import Lab

    return Lab.load(lab, config=config, output=sys.stderr if as_json else sys.stdout)


def _print_json(payload: Any) -> None:
    _emit(json.dumps(payload, indent=2, default=str))


def up(
    config: Any = None,
    lab: str | None = None,
    parallel: int = 0,
    as_json: bool = False,
    yes: bool = False,
    trace: str | None = None,
    allow_restart: bool = False,
    junit: str | None = None,
) -> None:
    """Build the lab (hvlab.api.Lab.up); with --json the report, also when it failed;
    with --junit a JUnit XML report too."""
    from hvlab.errors import HvlabError

    try:
        result = _lab(config, lab, as_json).up(
            parallel=parallel,
            trace=trace,
            ask=not yes,
            allow_restart=allow_restart,
            junit=junit,
        )
    except HvlabError as err:
        if as_json and getattr(err, "report", None) is not None:
            _print_json(err.report)
        raise
    if as_json:
        _print_json(result.report)


def plan_on_host(config: Any = None, lab: str | None = None, as_json: bool = False) -> None:
    """What lab.up would change (hvlab.api.Lab.plan), as text or JSON."""
    payload = _lab(config, lab, as_json).plan()
    if as_json:
        _print_json(payload)


def down(
    config: Any = None, lab: str | None = None, yes: bool = False, as_json: bool = False
) -> None:
    """Remove what the lab provably created (hvlab.api.Lab.down)."""
    from hvlab.errors import HvlabError

    try:
        payload = _lab(config, lab, as_json).down(ask=not yes)
    except HvlabError as err:
        if as_json and getattr(err, "report", None) is not None:
            _print_json(err.report)
        raise
    if as_json:
        _print_json(payload)


def status(config: Any = None, lab: str | None = None, as_json: bool = False) -> None:
    """Show the lab as the host sees it (hvlab.api.Lab.status)."""
    data = _lab(config, lab, as_json).status().data
    if as_json:
        _print_json(data)


def drill(
    config: Any = None,
    lab: str | None = None,
    kind: str | None = None,
    recover: bool = False,
    as_json: bool = False,
    junit: str | None = None,
) -> None:
    """Run one high-availability drill on a healthy lab, or bring a lab back; see
    hvlab.drills."""
    from hvlab import drills

    drills.drill(config, lab=lab, kind=kind, recover=recover, as_json=as_json, junit_file=junit)


def _report_or_raise(call: Any, as_json: bool) -> None:
    """Run a lifecycle call; with --json print its report, also when it failed."""
    from hvlab.errors import HvlabError

    try:
        payload = call()
    except HvlabError as err:
        if as_json and getattr(err, "report", None) is not None:
            _print_json(err.report)
        raise
    if as_json:
        _print_json(payload)


def stop(config: Any = None, lab: str | None = None, as_json: bool = False) -> None:
    """Shut the lab down in order (hvlab.api.Lab.stop)."""
    _report_or_raise(lambda: _lab(config, lab, as_json).stop(), as_json)


def start(config: Any = None, lab: str | None = None, as_json: bool = False) -> None:
    """Start the lab in order until healthy (hvlab.api.Lab.start)."""
    _report_or_raise(lambda: _lab(config, lab, as_json).start(), as_json)


def checkpoint(
    config: Any = None, name: str = "", lab: str | None = None, as_json: bool = False
) -> None:
    """A checkpoint of the whole lab (hvlab.api.Lab.checkpoint)."""
    _report_or_raise(lambda: _lab(config, lab, as_json).checkpoint(name), as_json)


def restore(
    config: Any = None, name: str = "", lab: str | None = None, as_json: bool = False
) -> None:
    """The whole lab back to a checkpoint (hvlab.api.Lab.restore)."""
    _report_or_raise(lambda: _lab(config, lab, as_json).restore(name), as_json)


def checkpoints(config: Any = None, lab: str | None = None, as_json: bool = False) -> None:
    """The lab's checkpoints (hvlab.api.Lab.checkpoints)."""
    found = _lab(config, lab, as_json).checkpoints()
    if as_json:
        _print_json(found)


def run_in_vm(
    config: Any = None,
    vm: str | None = None,
    cmdlet: str = "",
    params: list[str] | None = None,
    lab: str | None = None,
    as_json: bool = False,
) -> None:
    """One cmdlet inside a lab VM; prints its records (hvlab.access.run)."""
    from hvlab import access

    access.run(
        config, vm=vm, cmdlet=cmdlet, params=access.parse_params(params), lab=lab, as_json=as_json
    )


def connect(
    config: Any = None, vm: str | None = None, lab: str | None = None, as_json: bool = False
) -> None:
    """How to reach a lab VM (hvlab.access.connect)."""
    from hvlab import access

    access.connect(config, vm=vm, lab=lab, as_json=as_json)


def list_labs(config: Any = None, as_json: bool = False) -> None:
    """Every lab on the host by its mark (hvlab.hostlabs)."""
    from hvlab import hostlabs

    hostlabs.list_labs(config, as_json=as_json)


def rule(number: str) -> None:
    """Print one entry of the rule reference (hvlab/rules.md)."""
    from hvlab import rules

    _emit(rules.lookup(number))


def report(
    config: Any = None,
    lab: str | None = None,
    timeline: str | None = None,
    report_file: str | None = None,
) -> None:
    """Summarise the last lab.up's report; with `timeline`, draw it (SVG or PNG)."""
    from hvlab.errors import ConfigError
    from hvlab.spec import load_lab

    if report_file:
        source = Path(report_file)
    else:
        spec = load_lab(lab_path(config, lab))
        source = (
            paths.state_dir(spec.name, paths.home(config), paths.host_id(config)) / "report.json"
        )
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no report at {source}: run lab.up first") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read the report {source}: {err}") from None
    if timeline:
        from hvlab import pictures

        written = pictures.timeline(data, timeline)
        print(f"wrote the timeline of lab {data.get('lab')} to {written}")
        return
    steps = data.get("steps", [])
    clock = "modelled s" if data.get("clock") == "modelled" else "s"
    _emit(
        f"lab {data.get('lab')}: {data.get('result')}, {len(steps)} steps, "
        f"{data.get('changed', 0)} changed, {data.get('wall_seconds', 0):.1f} s wall"
    )
    longest = sorted(steps, key=lambda s: -(s.get("host_seconds") or 0.0))[:5]
    for s in longest:
        _emit(f"  {s['step']:<22} {s.get('host_seconds') or 0:9.1f} {clock}  {s['status']}")


# --- base images ---------------------------------------------------------------------


def image_build(config: Any = None, **options: Any) -> None:
    """Build a base image from an ISO on the host; see hvlab.image."""
    from hvlab import image

    image.build(config, **options)


def image_list(config: Any = None, folder: str | None = None, as_json: bool = False) -> None:
    """List the images in the host's image folder; see hvlab.image."""
    from hvlab import image

    image.list_images(config, folder=folder, as_json=as_json)
