"""Pictures of a lab: its topology (from the lab file) and a run's timeline (from its
report), drawn with matplotlib as SVG or PNG.

matplotlib is an optional dependency (`pip install 'hvlab[pictures]'`): building a
lab never needs it. Text stays text in the SVG (svg.fonttype none), so names can
be searched and the files diff well; the output is deterministic for one input.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hvlab.errors import ConfigError

FORMATS = (".svg", ".png")

# One colour per phase, in build order (timeline) and per kind (topology).
PHASE_COLOURS = {
    "preflight": "#9e9e9e",
    "network": "#5c6bc0",
    "vm": "#26a69a",
    "boot": "#66bb6a",
    "domain": "#ffa726",
    "roles": "#ab47bc",
    "cluster": "#ef5350",
    "s2d": "#8d6e63",
    "ha": "#29b6f6",
}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "drawing needs matplotlib, which hvlab does not install by default: "
            "pip install 'hvlab[pictures]'"
        ) from None
    matplotlib.use("Agg")  # no screen needed
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "hvlab",
            "font.size": 9,
            "font.family": "sans-serif",
        }
    )
    import matplotlib.pyplot as plt

    return plt


def _target(path: str | Path) -> Path:
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise ConfigError(f"{target}: write a picture as .svg or .png")
    if not target.parent.is_dir():
        raise ConfigError(f"{target.parent} is not a folder")
    return target


def _save(fig: Any, target: Path) -> Path:
    plt = _pyplot()
    metadata = {"Date": None} if target.suffix.lower() == ".svg" else {}
    try:
        fig.savefig(target, bbox_inches="tight", metadata=metadata, dpi=110)
    except OSError as err:
        raise ConfigError(f"cannot write {target}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
    return target


# --- topology ---------------------------------------------------------------------


@dataclasses.dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h

    @property
    def bottom(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y


def topology(lab: Any, path: str | Path) -> Path:
    """The lab as it will stand on the host: the switches and their subnets, every VM
    with its NICs and addresses, the cluster with its address, witness, CSVs and HA VMs."""
    target = _target(path)
    plt = _pyplot()
    from matplotlib.patches import FancyBboxPatch

    switches = list(lab.switches)
    vms = list(lab.vms)
    width = max(len(switches), len(vms), 3) * 3.2
    fig, ax = plt.subplots(figsize=(width, 7.5))
    ax.set_xlim(0, width)
    ax.set_ylim(0, 10)
    ax.axis("off")

    def box(b: _Box, title: str, lines: list[str], colour: str) -> None:
        ax.add_patch(
            FancyBboxPatch(
                (b.x, b.y), b.w, b.h, boxstyle="round,pad=0.05", fc=colour, ec="#37474f", lw=1
            )
        )
        ax.text(b.x + b.w / 2, b.y + b.h - 0.22, title, ha="center", va="top", weight="bold")
        for i, line in enumerate(lines):
            ax.text(b.x + b.w / 2, b.y + b.h - 0.6 - 0.33 * i, line, ha="center", va="top")

    box(
        _Box(0.2, 9.0, width - 0.4, 0.8),
        f"Hyper-V host: lab {lab.name}",
        [f"root {lab.host.root}"],
        "#eceff1",
    )

    def spread(count: int, w: float) -> list[float]:
        step = width / count
        return [step * i + (step - w) / 2 for i in range(count)]

    sw_boxes: dict[str, _Box] = {}
    for x, sw in zip(spread(len(switches), 2.8), switches, strict=True):
        b = _Box(x, 6.6, 2.8, 1.5)
        detail = [f"{sw.type}  {sw.subnet}"]
        if sw.gateway is not None:
            detail.append(f"gateway {sw.gateway}" + ("  NAT" if sw.nat else ""))
        box(b, sw.host_name, detail, "#e8eaf6")
        sw_boxes[sw.name] = b

    nodes = {vm.name for vm in lab.nodes}
    vm_boxes: list[tuple[Any, _Box]] = []
    for x, vm in zip(spread(len(vms), 2.8), vms, strict=True):
        extra = 1 if vm.host_name != vm.name else 0
        b = _Box(x, 2.9, 2.8, 0.7 + 0.33 * (len(vm.nics) + 1 + extra))
        lines = [f"{vm.role}, {vm.cpus} vCPU, {vm.memory_bytes / 1024**3:g} GiB"]
        lines += [f"{nic.name}: {nic.ip or 'DHCP'}" for nic in vm.nics]
        # The box says the name on the host; the guest's computer name when it differs.
        if vm.host_name != vm.name:
            lines.insert(0, f"computer name {vm.name}")
        box(b, vm.host_name, lines, "#e0f2f1" if vm.name in nodes else "#fff3e0")
        vm_boxes.append((vm, b))

    for vm, b in vm_boxes:
        for i, nic in enumerate(vm.nics):
            sb = sw_boxes.get(nic.switch)
            if sb is None:
                continue
            x0, y0 = b.top
            x0 += (i - (len(vm.nics) - 1) / 2) * 0.35
            ax.plot([x0, sb.bottom[0]], [y0 + 0.05, sb.bottom[1] - 0.05], color="#78909c", lw=1)

    cl = lab.cluster
    node_boxes = [b for vm, b in vm_boxes if vm.name in nodes]
    if node_boxes:
        left = min(b.x for b in node_boxes) - 0.1
        right = max(b.x + b.w for b in node_boxes) + 0.1
        witness = cl.witness.type.replace("_", " ")
        lines = [f"{cl.name}  {cl.address}  witness: {witness}"]
        lines += [f"CSV {v.csv_path} ({v.resiliency})" for v in lab.volumes]
        lines += [f"HA VM {h.name} on {h.volume or lab.volumes[0].name}" for h in lab.ha_vms]
        b = _Box(left, 0.2, right - left, 0.6 + 0.33 * len(lines))
        box(b, "failover cluster with Storage Spaces Direct", lines, "#fce4ec")
    return _save(fig, target)


# --- timeline ---------------------------------------------------------------------


def timeline(report: dict[str, Any], path: str | Path) -> Path:
    """A run's steps as bars per VM (and the lab-wide steps) over the host's clock,
    coloured by phase: where the time went."""
    target = _target(path)
    steps = [
        s
        for s in report.get("steps", [])
        if s.get("start_seconds") is not None and s.get("status") not in ("skipped", "blocked")
    ]
    if not steps:
        raise ConfigError(
            "the report holds no step timings (written by an older hvlab, or nothing ran); "
            "run lab.up again to get a new one"
        )
    plt = _pyplot()
    from matplotlib.patches import Patch

    scopes: list[str] = []
    for s in steps:
        if s["scope"] not in scopes:
            scopes.append(s["scope"])
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.45 * len(scopes)))
    for s in steps:
        row = scopes.index(s["scope"])
        colour = PHASE_COLOURS.get(s["phase"], "#bdbdbd")
        duration = max(float(s.get("host_seconds") or 0.0), 0.0)
        ax.barh(
            row,
            duration,
            left=float(s["start_seconds"]),
            height=0.6,
            color=colour,
            edgecolor="#c62828" if s["status"] == "failed" else "white",
            linewidth=1.5 if s["status"] == "failed" else 0.5,
        )
    ax.set_yticks(range(len(scopes)), scopes)
    ax.invert_yaxis()
    clock = "modelled seconds" if report.get("clock") == "modelled" else "seconds"
    ax.set_xlabel(f"{clock} since the run started")
    result = report.get("result", "?")
    ax.set_title(f"lab {report.get('lab', '?')}: lab.up {result}, {len(steps)} steps")
    phases = [p for p in PHASE_COLOURS if any(s["phase"] == p for s in steps)]
    ax.legend(
        handles=[Patch(color=PHASE_COLOURS[p], label=p) for p in phases],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12 - 0.6 / (1.2 + 0.45 * len(scopes))),
        fontsize=8,
        ncol=len(phases),
        frameon=False,
    )
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    return _save(fig, target)
