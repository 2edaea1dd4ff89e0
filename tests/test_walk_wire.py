"""PowerShell Direct over the real wire: the wrapper sent with pypsrp reaches the
guest model, and objects come back deserialized with their notes (R-34, "How
objects travel"); the R-34 errors reach the client as error records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import sim_settings
from guestlab import PASSWORD, NicSpec, add_vm, start, unattend_xml

from hvlab.config import Settings
from hvlab.errors import HostError
from hvlab.remote import Credential, Host
from hvlab.secrets import Secret
from hvsim.model.world import World

WRAPPER = (
    Path(__file__).resolve().parent.parent / "templates/host/Invoke-GuestCommand.ps1"
).read_text()


def _settings(server: Any) -> Settings:
    return sim_settings(server)


def test_guest_command_over_winrm(sim_server: Any) -> None:
    world = World.create()
    xml = unattend_xml("node1", {"00-15-5D-0A-00-01": "10.0.0.11/24"})
    start(world, add_vm(world, "node1", [NicSpec("Mgmt", "lab-mgmt", "00155D0A0001")], xml=xml))
    server = sim_server(auth="ntlm", world=world)
    good = Credential(".\\Administrator", Secret(PASSWORD))
    with Host.connect(_settings(server)) as host:
        out = host.script(
            WRAPPER,
            VMName="node1",
            Credential=good,
            Command="Get-Service",
            Parameters={"Name": "WinRM"},
        )
        rec = out[0]
        assert rec.type_names[0] == "Deserialized.System.ServiceProcess.ServiceController"
        assert rec["Name"] == "WinRM" and rec["PSComputerName"] == "node1"
        os_info = host.script(
            WRAPPER,
            VMName="node1",
            Credential=good,
            Command="Get-CimInstance",
            Parameters={"ClassName": "Win32_OperatingSystem"},
        )[0]
        assert os_info["BuildNumber"] == "20348"
        with pytest.raises(HostError) as err:
            host.script(
                WRAPPER,
                VMName="node1",
                Credential=Credential(".\\Administrator", Secret("wrong")),
                Command="Get-Service",
                Parameters={"Name": "WinRM"},
            )
        assert "The credential is invalid." in err.value.message
        assert "wrong" not in str(err.value)  # R: no secret in error texts
        with pytest.raises(HostError) as err:
            host.script(
                WRAPPER, VMName="nope", Credential=good, Command="Get-Service", Parameters={}
            )
        assert "does not resolve to any virtual machine" in err.value.message
