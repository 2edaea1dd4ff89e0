"""The constant scripts hvsim recognises: every template is known, hashes follow
the normalisation rule, and anything else is refused as not modelled."""

from __future__ import annotations

from pathlib import Path

import pytest
from guestlab import NicSpec, add_vm, cred, start, unattend_xml

from hvsim import executor, scripts
from hvsim.errors import PSError
from hvsim.model.world import World
from hvsim.objects import ScriptBlock

ROOT = Path(__file__).resolve().parent.parent


def test_every_template_is_in_the_table() -> None:
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*.ps1"))
    assert files, "no templates found"
    table = {k.file: k.sha256 for k in scripts.KNOWN}
    for f in files:
        assert f in table, f"{f} is not known to hvsim.scripts: model it and add its hash"
        text = (ROOT / f).read_text(encoding="utf-8-sig")
        assert scripts.digest(text) == table[f], f"{f} changed: update its model and hash"
    assert sorted(table) == files, "the table names a file that no longer exists"


def test_normalisation_ignores_line_endings_and_trailing_space() -> None:
    text = (ROOT / "templates/host/Invoke-GuestCommand.ps1").read_text()
    crlf = "\r\n".join(line + "  " for line in text.split("\n"))
    assert scripts.find(crlf) is scripts.find(text) is not None
    assert scripts.find(text.replace("Stop", "Continue")) is None


def test_guest_scripts_are_not_accepted_on_the_host() -> None:
    text = (ROOT / "templates/guest/Set-ClusterNetworkRole.ps1").read_text()
    assert scripts.find(text, "host") is None
    assert scripts.find(text, "guest") is not None


def _run_script(world: World, text: str, **params: object) -> list[object]:
    cmd = executor.Command(text, list(params.items()), is_script=True)

    class Sink:
        def error(self, e: PSError) -> None: ...
        def warning(self, t: str) -> None: ...
        def verbose(self, t: str) -> None: ...
        def information(self, d: object) -> None: ...
        def progress(self, a: str, s: str, p: int = -1) -> None: ...

    return executor.run_pipeline(world, world.host, "HV01\\Administrator", [cmd], Sink())


def test_unknown_script_is_not_modelled() -> None:
    world = World.create()
    with pytest.raises(PSError) as err:
        _run_script(world, "Get-VM | Remove-VM -Force")
    assert err.value.fqid == "NotModelled,hvsim"


def test_wrapper_needs_its_mandatory_parameters() -> None:
    world = World.create()
    text = (ROOT / "templates/host/Invoke-GuestCommand.ps1").read_text()
    with pytest.raises(PSError) as err:
        _run_script(world, text, VMName="x", Command="Get-Service")
    assert "Credential" in err.value.message


def test_invoke_command_cmdlet_with_the_wrappers_inner_block() -> None:
    world = World.create()
    xml = unattend_xml("node1", {"00-15-5D-0A-00-01": "10.0.0.11/24"})
    start(world, add_vm(world, "node1", [NicSpec("Mgmt", "lab-mgmt", "00155D0A0001")], xml=xml))
    block = ScriptBlock(
        "param($Command, $Parameters)\n$ErrorActionPreference = 'Stop'\n& $Command @Parameters"
    )
    cmd = executor.Command(
        "Invoke-Command",
        [
            ("VMName", "node1"),
            ("Credential", cred(".\\Administrator")),
            ("ScriptBlock", block),
            ("ArgumentList", ["Get-Service", {"Name": "WinRM"}]),
        ],
    )
    from guestlab import Streams

    out = executor.run_pipeline(world, world.host, "HV01\\Administrator", [cmd], Streams())
    assert out[0]["Name"] == "WinRM"
    probe = executor.Command(
        "Invoke-Command",
        [
            ("VMName", "node1"),
            ("Credential", cred(".\\Administrator")),
            ("ScriptBlock", ScriptBlock("'ready'")),
        ],
    )
    assert executor.run_pipeline(world, world.host, "x", [probe], Streams()) == ["ready"]
