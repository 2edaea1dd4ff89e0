"""What lab.up keeps when a build fails: .hvlab/<lab>/diagnostics.json, and a console
picture of each guest that did not answer.

For the VMs the failed steps were about (the nodes, for a cluster step; at most
MAX_GUESTS), it asks the host for the VM's record and then:

- when the guest answers over PowerShell Direct: the newest errors of its System and
  Application event logs (Get-EventLog -EntryType Error -Newest N) and, when its first
  boot failed, the tail of Windows Setup's logs (Get-Content -Tail of
  C:\\Windows\\Panther\\setupact.log and setuperr.log: where Setup logs specialize and
  OOBE, per Microsoft's "Deployment Troubleshooting and Log Files");
- when it does not: the VM's console as the host sees it (templates/host/
  Get-VMThumbnail.ps1, GetVirtualSystemThumbnailImage, raw RGB 565), saved as
  console-<vm>.png with Pillow (the `pictures` extra), or a note saying how to get it.

Everything is best effort (a diagnostic never hides the build's own error), bounded
(a few VMs, a few events, short lines, one small picture each) and scrubbed: any text
that holds one of the lab's passwords has it masked before it is written.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from hvlab.errors import HostError, HvlabError
from hvlab.guest import as_whoever_logs_on, classify
from hvlab.resources import template
from hvlab.steps.common import SILENT, first, text, val

log = logging.getLogger("hvlab.diagnostics")

MAX_GUESTS = 4
EVENT_LOGS = ("System", "Application")
EVENTS_PER_LOG = 10
MESSAGE_CHARS = 400
SETUP_LOGS = {
    "C:\\Windows\\Panther\\setupact.log": 40,
    "C:\\Windows\\Panther\\setuperr.log": 20,
}
LINE_CHARS = 300
THUMBNAIL = (320, 240)
PICTURES_HINT = (
    "Pillow is not installed, so the console picture was not saved; install the pictures "
    "extra (pip install 'hvlab[pictures]') to get console-<vm>.png next time"
)
VM_KEYS = (
    "Name",
    "State",
    "Status",
    "Heartbeat",
    "Uptime",
    "ComputerName",
    "MemoryCapacity",
    "Notes",
)


def collect(
    session: Any,
    spec: Any,
    state: Any,
    results: list[Any],
    error: Exception,
    *,
    creds: Any = None,
    secrets: Any = None,
) -> dict[str, Any]:
    """Write diagnostics.json (and console pictures) for a failed run; return the bundle."""
    bundle: dict[str, Any] = {
        "error": str(error),
        "failed_steps": [r.to_json() for r in results if r.status == "failed"],
        "host_facts": None,
        "vms": [],
        "guests": [],
    }
    host = session.host
    records: dict[str, Any] = {}
    try:
        for vm in spec.vms:
            found = host.run("Get-VM", Name=vm.host_name, **SILENT)
            records[vm.name] = first(found)
            bundle["vms"].append({"name": vm.name, "records": [_plain(r) for r in found]})
        bundle["host_facts"] = [_plain(r) for r in host.run("Get-VMHost")]
    except HvlabError as err:  # the host may be the thing that failed
        bundle["host_error"] = str(err)
    else:
        first_boots = {r.scope for r in results if r.status == "failed" and r.phase == "boot"}
        for name in suspects(spec, results):
            try:
                bundle["guests"].append(
                    _guest(host, state, creds, name, records.get(name), name in first_boots)
                )
            except Exception as err:  # best effort: say what stopped this part
                log.warning("diagnostics of %s stopped: %s", name, err)
                bundle["guests"].append({"name": name, "error": f"{type(err).__name__}: {err}"})
    bundle = scrub(bundle, secrets)
    state.write_json("diagnostics.json", bundle)
    return bundle


def suspects(spec: Any, results: list[Any]) -> list[str]:
    """The VMs the failed steps were about: a VM's own step names it; a cluster, S2D or
    HA VM step concerns every node. At most MAX_GUESTS, in the lab's order."""
    names = {vm.name.lower(): vm.name for vm in spec.vms}
    wanted: set[str] = set()
    for r in results:
        if r.status != "failed":
            continue
        if r.scope.lower() in names:
            wanted.add(r.scope.lower())
        elif r.phase in ("cluster", "s2d", "ha"):
            wanted.update(n.name.lower() for n in spec.nodes)
    return [vm.name for vm in spec.vms if vm.name.lower() in wanted][:MAX_GUESTS]


def _guest(
    host: Any, state: Any, creds: Any, name: str, record: Any, first_boot: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name}
    if record is None:
        entry["state"] = "Missing"
        return entry
    vm_state = text(val(record, "State"))
    entry.update(state=vm_state, heartbeat=text(val(record, "Heartbeat")))
    answered = False
    if vm_state == "Running" and creds is not None:
        try:
            entry["events"] = {log: _events(host, creds, name, log) for log in EVENT_LOGS}
            answered = True
        except HostError as err:
            entry["why"] = f"{classify(err)}: {err.message[:MESSAGE_CHARS]}"
        if answered and first_boot:
            try:
                entry["setup_log"] = {
                    path: _tail(host, creds, name, path, lines)
                    for path, lines in SETUP_LOGS.items()
                }
            except HostError as err:
                entry["setup_log_error"] = err.message[:MESSAGE_CHARS]
    entry["answered"] = answered
    if not answered:
        entry["console"] = _console(host, state, name, record, vm_state)
    return entry


def _events(host: Any, creds: Any, vm: str, log_name: str) -> list[dict[str, Any]]:
    """The newest errors of one event log, newest first. A log without errors answers
    "No matches found" as a non-terminating error, which SilentlyContinue drops."""
    records = as_whoever_logs_on(
        host,
        creds,
        vm,
        lambda g: g.run(
            "Get-EventLog",
            LogName=log_name,
            EntryType=["Error"],
            Newest=EVENTS_PER_LOG,
            **SILENT,
        ),
    )
    return [
        {
            "time": text(val(r, "TimeGenerated")),
            "source": text(val(r, "Source")),
            "id": val(r, "EventID"),
            "type": text(val(r, "EntryType")),
            "message": text(val(r, "Message"))[:MESSAGE_CHARS],
        }
        for r in records[:EVENTS_PER_LOG]
    ]


def _tail(host: Any, creds: Any, vm: str, path: str, lines: int) -> list[str]:
    found = as_whoever_logs_on(
        host, creds, vm, lambda g: g.run("Get-Content", Path=path, Tail=lines, **SILENT)
    )
    return [text(line).rstrip("\r\n")[:LINE_CHARS] for line in found[-lines:]]


def _console(host: Any, state: Any, name: str, record: Any, vm_state: str) -> dict[str, Any]:
    """The console as the host pictures it, saved as PNG when Pillow is there."""
    if vm_state in ("Off", "Saved"):
        return {"note": f"{name} is {vm_state}: there is no console to picture"}
    width, height = THUMBNAIL
    answer = first(
        host.script(
            template("host/Get-VMThumbnail.ps1"),
            _label=f"Get-VMThumbnail {name}",
            _read_only=True,
            VMId=text(val(record, "Id")),
            WidthPixels=width,
            HeightPixels=height,
        )
    )
    code = int(val(answer, "ReturnValue", -1) or 0)
    data = val(answer, "ImageData")
    if code != 0 or not data:
        return {"note": f"GetVirtualSystemThumbnailImage returned {code}: no picture"}
    raw = base64.b64decode(str(data))
    if len(raw) != width * height * 2:
        return {"note": f"the picture has {len(raw)} bytes, not {width * height * 2}: not saved"}
    png = rgb565_png(raw, width, height)
    if png is None:
        return {"note": PICTURES_HINT, "width": width, "height": height}
    file = f"console-{name}.png"
    state.write_artifact(file, png)
    return {"file": file, "width": width, "height": height}


def rgb565_png(raw: bytes, width: int, height: int) -> bytes | None:
    """Raw RGB 565 pixels (little-endian, rows top down) as a PNG; None without Pillow."""
    try:
        import io

        from PIL import Image
    except ImportError:
        return None
    rgb = bytearray()
    for i in range(0, len(raw), 2):
        pixel = raw[i] | raw[i + 1] << 8
        r, g, b = pixel >> 11, (pixel >> 5) & 0x3F, pixel & 0x1F
        rgb += bytes(((r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)))
    image = Image.frombytes("RGB", (width, height), bytes(rgb))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def scrub(value: Any, secrets: Any) -> Any:
    """The bundle with every password of the lab masked wherever it appears."""
    words = [s.reveal() for s in (secrets.all() if secrets is not None else []) if len(s)]
    if not words:
        return value

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            for word in words:
                v = v.replace(word, "********")
            return v
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return clean(value)


def _plain(rec: Any) -> dict[str, Any]:
    return {k: text(val(rec, k)) for k in VM_KEYS if val(rec, k) is not None}
