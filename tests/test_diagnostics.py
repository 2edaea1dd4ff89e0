"""What a failed build leaves for a person to read (issue 15): the guests' event logs and
Windows Setup's log when a guest answers, its console picture when it does not.

hvsim's side (Get-EventLog, the setup logs, the thumbnail script) is tested over the
wire with hvlab's own client; hvlab's side through lab.up on the embedded host.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from guestlab import PASSWORD, NicSpec, add_vm, restart, start, stop, unattend_xml
from test_lab_e2e import PASSWORDS, sim_world

from hvlab import lab as labs
from hvlab.diagnostics import PICTURES_HINT, collect, rgb565_png
from hvlab.engine import StepResult
from hvlab.errors import HostError, StepError
from hvlab.guest import Guest
from hvlab.remote import Credential, Host
from hvlab.resources import template
from hvlab.secrets import Secret
from hvlab.state import LabState
from hvsim.model import console
from hvsim.model.world import World

LOCAL = Credential(".\\Administrator", Secret(PASSWORD))
THUMBNAIL = template("host/Get-VMThumbnail.ps1")


def _vm(world: World, name: str, mac: str, ip: str, **kw: Any) -> Any:
    dashed = "-".join(mac[i : i + 2] for i in range(0, 12, 2))
    xml = unattend_xml(name, {dashed: f"{ip}/24"}, **kw)
    return add_vm(world, name, [NicSpec("Mgmt", "lab-mgmt", mac)], xml=xml)


def _thumbnail(host: Host, vm: Any, width: int = 320, height: int = 240) -> Any:
    return host.script(
        THUMBNAIL, _read_only=True, VMId=str(vm.id), WidthPixels=width, HeightPixels=height
    )[0]


def _pixels(png: bytes) -> bytes:
    """The picture's RGB bytes, row by row."""
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB").tobytes()


def _expected(screen: str, width: int = 320, height: int = 240) -> bytes:
    png = rgb565_png(console.render(console.SCREENS[screen], width, height), width, height)
    assert png is not None
    return _pixels(png)


# -- hvsim: Get-EventLog inside a guest ----------------------------------------------------


def test_event_logs_record_boots_and_unclean_shutdowns_over_the_wire(wire: Any) -> None:
    world = World.create()
    vm = _vm(world, "ev1", "00155D0A0031", "10.0.0.31")
    start(world, vm)
    restart(world, vm, hard=True)  # a power cut while Windows ran: 6008 at the next boot
    restart(world, vm, hard=True)
    restart(world, vm)  # a clean restart from inside: 1074, then 6006
    with wire(world) as host:
        guest = Guest(host, "ev1", LOCAL)
        errors = guest.run("Get-EventLog", LogName="System", EntryType=["Error"])
        assert [e["EventID"] for e in errors] == [6008, 6008]
        assert str(errors[0]["EntryType"]) == "Error" and errors[0]["Source"] == "EventLog"
        assert errors[0]["Index"] > errors[1]["Index"], "newest first"
        assert "was unexpected" in errors[0]["Message"]
        # -Newest counts what the filter lets through, not what it reads (EventLog.cs).
        one = guest.run("Get-EventLog", LogName="System", EntryType=["Error"], Newest=1)
        assert [e["Index"] for e in one] == [errors[0]["Index"]]
        newest = guest.run("Get-EventLog", LogName="System", Newest=3)
        ids = [e["EventID"] for e in newest]
        assert ids == [6009, 6005, 6006], "the clean restart's boot, after its shutdown"
        assert any(
            e["EventID"] == 1074 for e in guest.run("Get-EventLog", LogName="System", Newest=10)
        )
        # A log without a match: "No matches found", non-terminating, which the wrapper's
        # ErrorActionPreference Stop turns into a failure unless the call silences it.
        with pytest.raises(HostError) as info:
            guest.run("Get-EventLog", LogName="Application", EntryType=["Error"])
        assert info.value.error_id.startswith("GetEventLogNoEntriesFound,")
        assert info.value.message == "No matches found"
        quiet = guest.run(
            "Get-EventLog",
            LogName="Application",
            EntryType=["Error"],
            ErrorAction="SilentlyContinue",
        )
        assert quiet == []
        with pytest.raises(HostError) as info:
            guest.run("Get-EventLog", LogName="Nope")
        assert info.value.error_id.startswith("EventLogNotFound,")


def test_guests_log_joins_role_installs_and_cluster_events(wire: Any) -> None:
    from test_model_cluster import build_cluster, build_domain, build_nodes

    world = World.create()
    build_domain(world)
    build_nodes(world)
    build_cluster(world)
    lab_admin = Credential("LAB\\Administrator", Secret(PASSWORD))
    with wire(world) as host:
        node1 = Guest(host, "node1", lab_admin)
        system = node1.run("Get-EventLog", LogName="System", Newest=200)
        sources = {(e["Source"], e["EventID"]) for e in system}
        assert ("NetJoin", 4096) in sources, "the join"
        assert ("Microsoft-Windows-ServerManager", 1000) in sources, "the role install"
        # A vSwitch on the management NIC of a clustered node drops its network under the
        # core resources: FailoverClustering 1069 in that node's System log.
        node1.run(
            "New-VMSwitch", Name="ClusterSwitch", NetAdapterName="Ethernet", AllowManagementOS=True
        )
        failed = node1.run(
            "Get-EventLog",
            LogName="System",
            EntryType=["Error"],
            Source=["Microsoft-Windows-FailoverClustering"],
        )
        assert failed and {e["EventID"] for e in failed} == {1069}
        assert any("Cluster IP Address" in e["Message"] for e in failed)
        dc = Guest(host, "dc", lab_admin)
        dc_log = dc.run("Get-EventLog", LogName="System", Newest=200)
        assert any(
            e["Source"] == "Microsoft-Windows-ActiveDirectory_DomainService" for e in dc_log
        ), "the promotion"


# -- hvsim: Windows Setup's log --------------------------------------------------------------


def test_setup_log_follows_the_first_boot_and_stops_where_it_hangs(wire: Any) -> None:
    world = World.create(faults="boot_hang:vm=hung")
    done = _vm(world, "done", "00155D0A0032", "10.0.0.32")
    hung = _vm(world, "hung", "00155D0A0033", "10.0.0.33")
    start(world, done)
    start(world, hung)
    # The hung guest's log stops in specialize: the pass began, nothing after it.
    lines = hung.guest.fs.read("C:\\Windows\\Panther\\setupact.log").splitlines()
    assert "Starting the specialize configuration pass" in lines[1]
    assert not any("specialize configuration pass completed" in line for line in lines)
    assert not any("oobeSystem" in line for line in lines)
    with wire(world) as host:
        tail = Guest(host, "done", LOCAL).run(
            "Get-Content", Path="C:\\Windows\\Panther\\setupact.log", Tail=3
        )
        assert [line.split("] ", 1)[1] for line in tail] == [
            "Starting the oobeSystem configuration pass",
            "The oobeSystem configuration pass completed",
            "Windows Setup completed",
        ]
        whole = "\n".join(
            Guest(host, "done", LOCAL).run("Get-Content", Path="C:\\Windows\\Panther\\setupact.log")
        )
        assert "ComputerName is DONE" in whole and "10.0.0.32/24" in whole
        assert PASSWORD not in whole, "Setup never logs the password"


def test_a_broken_answer_file_writes_setuperr(wire: Any) -> None:
    world = World.create()
    vm = add_vm(world, "bad", [NicSpec("Mgmt", "lab-mgmt", "00155D0A0034")], xml="<unattend>")
    start(world, vm)
    errors = vm.guest.fs.read("C:\\Windows\\Panther\\setuperr.log")
    assert "could not parse or process the unattend answer file" in errors
    assert "for pass [specialize]" in errors
    with wire(world) as host:
        shot = _thumbnail(host, vm)
    png = rgb565_png(base64.b64decode(shot["ImageData"]), 320, 240)
    assert png is not None and _pixels(png) == _expected("setup-error")


# -- hvsim: the console thumbnail --------------------------------------------------------------


def test_the_console_thumbnail_follows_the_vms_state(wire: Any) -> None:
    world = World.create(faults="boot_hang:vm=hung")
    ready = _vm(world, "ready", "00155D0A0035", "10.0.0.35")
    hung = _vm(world, "hung", "00155D0A0036", "10.0.0.36")
    off = _vm(world, "off", "00155D0A0037", "10.0.0.37")
    start(world, ready)
    start(world, hung)
    start(world, off)
    stop(world, off)
    with wire(world) as host:
        shots = {vm.name: _thumbnail(host, vm) for vm in (ready, hung, off)}
        small = _thumbnail(host, hung, 64, 48)
        with pytest.raises(HostError) as info:
            _thumbnail(host, hung, 2000, 48)
        assert "ParameterArgumentValidationError" in info.value.error_id
        with pytest.raises(HostError) as info:
            host.script(
                THUMBNAIL,
                VMId="00000000-0000-4000-8000-000000000000",
                WidthPixels=64,
                HeightPixels=48,
            )
        assert "No virtual machine has the Id" in info.value.message
    for name in ("ready", "hung"):
        shot = shots[name]
        assert shot["ReturnValue"] == 0 and shot["Format"] == "RGB565"
        assert len(base64.b64decode(shot["ImageData"])) == 320 * 240 * 2
    # GetVirtualSystemThumbnailImage's "Invalid state for this operation" for a VM that is Off.
    assert shots["off"]["ReturnValue"] == 32775 and shots["off"]["ImageData"] is None
    assert len(base64.b64decode(small["ImageData"])) == 64 * 48 * 2

    def picture(name: str) -> bytes:
        png = rgb565_png(base64.b64decode(shots[name]["ImageData"]), 320, 240)
        assert png is not None
        return _pixels(png)

    assert picture("hung") == _expected("specialize")
    assert picture("ready") == _expected("lock")
    assert picture("hung") != picture("ready")


def test_rgb565_decodes_the_documented_layout() -> None:
    # Little-endian 16-bit pixels: 5 bits red, 6 green, 5 blue.
    raw = bytes([0x00, 0xF8, 0xE0, 0x07, 0x1F, 0x00, 0xFF, 0xFF])
    png = rgb565_png(raw, 4, 1)
    assert png is not None
    assert _pixels(png) == bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])


# -- hvlab: diagnostics.json of a failed lab.up --------------------------------------------------


@pytest.fixture
def workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Waits as short as a test allows: these builds are meant to fail.
    monkeypatch.setenv("HVLAB_MIN_WAIT", "2")
    return workdir


def _no_passwords(folder: Path) -> None:
    blob = "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())
    for name, password in PASSWORDS.items():
        assert password not in blob, f"{name} leaked"
        assert password.encode("utf-16-le").decode("latin-1") not in blob


@pytest.mark.slow
def test_a_guest_that_never_answers_leaves_its_console_picture(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HVSIM_FAULTS", "boot_hang:vm=hvhost02")
    with pytest.raises(StepError):
        labs.up(None)
    folder = workdir / ".hvlab" / "sim" / "s2d-2node"
    diag = json.loads((folder / "diagnostics.json").read_text())
    (entry,) = diag["guests"]
    assert entry["name"] == "hvhost02" and entry["answered"] is False
    assert entry["state"] == "Running" and entry["why"].startswith("not-ready")
    assert entry["console"] == {"file": "console-hvhost02.png", "width": 320, "height": 240}
    assert _pixels((folder / "console-hvhost02.png").read_bytes()) == _expected("specialize")
    _no_passwords(workdir / ".hvlab")

    # Without Pillow the bundle says how to get the picture, and saves none.
    (folder / "console-hvhost02.png").unlink()
    monkeypatch.setitem(sys.modules, "PIL", None)
    from hvlab.api import Lab

    lab = Lab.load(None)
    failed = StepResult("boot:hvhost02", "hvhost02", "boot", status="failed")
    with lab.connected() as open_lab:
        bundle = collect(
            open_lab.session,
            lab.spec,
            LabState(lab.state_dir),
            [failed],
            RuntimeError("boot:hvhost02 failed"),
            creds=open_lab._creds(),
        )
    assert bundle["guests"][0]["console"]["note"] == PICTURES_HINT
    assert not (folder / "console-hvhost02.png").exists()


@pytest.mark.slow
def test_a_guest_that_answers_gives_its_event_errors_and_setup_log(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guest boots, then one of the first boot's own reads keeps failing (R-102's
    # retries run out): it still answers, so its logs are read, not its console.
    monkeypatch.setenv(
        "HVSIM_FAULTS", "transient:cmdlet=Get-NetAdapterAdvancedProperty,machine=hvhost02,rate=1"
    )
    with pytest.raises(StepError, match="boot:hvhost02"):
        labs.up(None)
    folder = workdir / ".hvlab" / "sim" / "s2d-2node"
    diag = json.loads((folder / "diagnostics.json").read_text())
    (entry,) = diag["guests"]
    assert entry["name"] == "hvhost02" and entry["answered"] is True
    assert "console" not in entry and not list(folder.glob("console-*.png"))
    app = entry["events"]["Application"]
    assert app and all(e["source"] == "hvsim" and e["type"] == "Error" for e in app)
    assert "Get-NetAdapterAdvancedProperty" in app[0]["message"]
    assert entry["events"]["System"] == [], "a clean first boot logs no system errors"
    setup = entry["setup_log"]
    assert setup["C:\\Windows\\Panther\\setupact.log"][-1].endswith("Windows Setup completed")
    assert setup["C:\\Windows\\Panther\\setuperr.log"] == []
    assert len(setup["C:\\Windows\\Panther\\setupact.log"]) <= 40
    _no_passwords(workdir / ".hvlab")
    # The same errors are in the guest, as the model keeps them.
    guest = sim_world(workdir).guest("hvhost02")
    assert len(guest.events.entries("Application")) >= len(app)
