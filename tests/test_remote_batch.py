"""hvlab.remote.Host.batch: independent reads as the statements of one pipeline (one
round trip), the answer split per statement; warm connections; against hvsim over
the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import sim_settings

from hvlab.config import Settings
from hvlab.errors import HostError, ResponseLost
from hvlab.remote import Host, Record
from hvlab.secrets import Secret


def _settings(server: Any, **kw: Any) -> Settings:
    return sim_settings(server, **{"retries": 2, **kw})


SILENT = {"ErrorAction": "SilentlyContinue"}


def test_each_statement_gets_its_own_answer_in_one_round_trip(sim_server: Any) -> None:
    server = sim_server()
    with Host.connect(_settings(server)) as host:
        host.run("New-VM", Name="a", Generation=2, NoVHD=True)
        host.run("New-VM", Name="b", Generation=2, NoVHD=True)
        before = len(host.trace)
        vmhost, vms, missing, paths, piped, nothing = host.batch(
            [
                ("Get-VMHost", {}),
                ("Get-VM", {"Name": ["a", "b", "ghost"], **SILENT}),
                ("Get-Content", {"Path": "C:\\no-such-file", **SILENT}),
                ("Test-Path", {"Path": ["C:\\", "C:\\no-such-folder"]}),
                [("Get-VM", {"Name": "b"}), ("Get-VMProcessor", {})],
                ("Get-VMSwitch", {}),
            ]
        )
        calls = host.trace[before:]
    assert len(calls) == 1, "one round trip"
    assert [r.type_names[0] for r in vmhost] == ["Microsoft.HyperV.PowerShell.VMHost"]
    assert sorted(v["Name"] for v in vms) == ["a", "b"]
    assert missing == [] and nothing == []
    assert paths == [True, False]
    assert [(p.type_names[0], p["VMName"]) for p in piped] == [
        ("Microsoft.HyperV.PowerShell.VMProcessor", "b")
    ]
    entry = calls[0]
    assert entry["cmdlet"] == (
        "Get-VMHost; Get-VM; Get-Content; Test-Path; Get-VM | Get-VMProcessor; Get-VMSwitch"
    )
    assert entry["statements"][1] == {"cmdlet": "Get-VM", "params": ["Name", "ErrorAction"]}
    assert entry["statements"][4] == {"cmdlet": "Get-VM | Get-VMProcessor", "params": ["Name"]}


def test_output_that_looks_like_a_separator_stays_in_its_statement(sim_server: Any) -> None:
    """The separator is a GUID new for each batch: a file holding an earlier one (or any
    text) is output like any other."""
    server = sim_server()
    with Host.connect(_settings(server)) as host:
        first = host.batch([("Get-VMHost", {}), ("Get-VMHost", {})])
        assert len(first) == 2
        # What this batch's separators look like cannot be known before it is sent.
        lines = ["hvlab:00000000000000000000000000000000:1", "plain text"]
        host.run("Set-Content", Path="C:\\marks.txt", Value=lines)
        content, empty = host.batch(
            [("Get-Content", {"Path": "C:\\marks.txt"}), ("Get-VMSwitch", {})]
        )
    assert content == lines and empty == []


def test_an_error_fails_the_batch_named_after_its_cmdlet(sim_server: Any) -> None:
    server = sim_server()
    with Host.connect(_settings(server)) as host:
        with pytest.raises(HostError) as info:
            host.batch([("Get-VMHost", {}), ("Get-VM", {"Name": "ghost"}), ("Get-VMSwitch", {})])
        # Silenced, the same read finds nothing and the batch answers.
        ok = host.batch([("Get-VMHost", {}), ("Get-VM", {"Name": "ghost", **SILENT})])
    err = info.value
    assert err.cmdlet == "Get-VM" and err.target == "ghost"
    assert err.error_id == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert len(ok[0]) == 1 and ok[1] == []


def test_a_read_batch_is_asked_again_after_a_lost_answer(sim_server: Any) -> None:
    """R-92: a batch of reads is safe to repeat; a batch with a change is not."""
    from hvsim.model.world import World

    world = World.create(faults="lost:cmdlet=Get-VMSwitch,nth=1;lost:cmdlet=New-VMSwitch,nth=1")
    server = sim_server(world=world)
    with Host.connect(_settings(server)) as host:
        vmhost, switches = host.batch([("Get-VMHost", {}), ("Get-VMSwitch", {})])
        assert len(vmhost) == 1 and switches == []
        assert host.trace[-1]["attempts"] == 2
        with pytest.raises(ResponseLost):
            host.batch(
                [("Get-VMHost", {}), ("New-VMSwitch", {"Name": "x", "SwitchType": "Private"})]
            )
        assert host.trace[-1]["attempts"] == 1
    assert [s.name for s in world.host.hyperv.switches] == ["x"]


def test_a_single_statement_is_a_plain_call(sim_server: Any) -> None:
    server = sim_server()
    with Host.connect(_settings(server)) as host:
        (answer,) = host.batch([("Get-VMHost", {})])
        assert host.batch([]) == []
        entry = host.trace[-1]
    assert isinstance(answer[0], Record)
    assert entry["cmdlet"] == "Get-VMHost" and "statements" not in entry


def test_a_statement_is_a_call_or_a_list_of_calls(sim_server: Any) -> None:
    server = sim_server()
    with Host.connect(_settings(server)) as host, pytest.raises(ValueError):
        host.batch([("Get-VMHost", {}), ["Get-VM"]])  # type: ignore[list-item]


def test_warm_opens_connections_ahead_and_close_ends_them_all(
    sim_server: Any, tmp_path: Path
) -> None:
    server = sim_server()
    host = Host.connect(_settings(server), max_runspaces=4)
    try:
        host.warm(3, keys=True)
        for thread in host._warming:
            thread.join(30)
        assert host._open == 3 and host._idle.qsize() == 3
        assert server.shells == 3
        # Parallel calls now find open connections: no logon on the way.
        before = server.exchanges
        host.map([("Get-VMHost", {}) for _ in range(3)])
        assert server.exchanges - before == 6  # a Command and a Receive each
        host.warm(10)  # never more than max_runspaces
        for thread in host._warming:
            thread.join(30)
        assert host._open == 4
    finally:
        host.close()
    assert host._open == 0 and server.shells == 0
    host.write_trace(tmp_path / "t.jsonl")
    assert json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])["cmdlet"] == "connect"


def test_a_wrong_password_is_tried_once_however_many_connections_are_wanted(
    sim_server: Any,
) -> None:
    """A host's lockout policy counts refused logons: the extra connections are opened
    only once the first logon worked."""
    from hvlab.errors import ConfigError

    server = sim_server()
    with pytest.raises(ConfigError, match="refused the logon"):
        Host.connect(_settings(server, password=Secret("Wrong-Pass-1")), warm=3, keys=True)
    one_logon = server.exchanges
    assert 0 < one_logon <= 3  # an NTLM handshake's requests, for one connection
    host = Host.connect(_settings(server), max_runspaces=8, warm=3, keys=True)
    try:
        for thread in host._warming:
            thread.join(30)
        assert host._open == 4 and server.shells == 4
        # The three opened ahead hold a session key; the first one gets its own when needed.
        assert sum(slot.keys for slot in host._idle._slots) == 3
    finally:
        host.close()
