"""hvlab.remote.Host and hvlab.config.Settings against hvsim served in-process."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SIM_PASSWORD, SIM_USER
from pypsrp.serializer import TaggedValue

from hvlab.config import Settings
from hvlab.errors import ConfigError, HostError, TransportError
from hvlab.remote import Credential, Host, Record, wire_value
from hvlab.secrets import Secret
from hvsim import objects, registry

SEEN: dict[str, Any] = {}


def _once(name: str, params: list[str]) -> Any:
    def deco(fn: Any) -> Any:
        if registry.lookup(name) is None:
            registry.cmdlet(name, params=params)(fn)
        return fn

    return deco


# Test-only handlers under catalog cmdlets hvlab never sends.
@_once("Import-PfxCertificate", ["FilePath", "Password"])
def _import_pfx(ctx: Any, call: Any) -> list[str]:
    SEEN["password"] = call.get("Password")
    return ["ok"]


@_once("Connect-WSMan", ["ComputerName", "Credential"])
def _connect_wsman(ctx: Any, call: Any) -> list[str]:
    SEEN["credential"] = call.get("Credential")
    return ["ok"]


@_once("Get-Unique", ["AsString"])
def _slow(ctx: Any, call: Any) -> list[float]:
    ctx.work(250, "a slow modelled operation")  # 0.25 s real at timescale 0.001
    return [time.monotonic()]


def _settings(server: Any, auth: str, **kw: Any) -> Settings:
    base = Settings(
        host=server.url,
        user=SIM_USER,
        password=Secret(SIM_PASSWORD),
        auth=auth,
        cert_validation=False,
        allow_basic_over_http=True,
        operation_timeout=5,
        retries=2,
    )
    return dataclasses.replace(base, **kw)


# ------------------------------------------------------------------ settings


def test_settings_from_config_and_environment() -> None:
    config = {"hvlab": {"host": None, "user": "cfg-user", "auth": "negotiate", "retries": 5}}
    env = {
        "HVLAB_HOST": "https://hv01.example.com:5986/wsman",
        "HVLAB_USER": "LAB\\admin",
        "HVLAB_PASSWORD": "Very-Secret-1",
        "HVLAB_CERT_VALIDATION": "false",
    }
    s = Settings.load(config, env=env)
    assert (s.host, s.user, s.auth, s.retries, s.cert_validation) == (
        "https://hv01.example.com:5986/wsman",
        "LAB\\admin",
        "negotiate",
        5,
        False,
    )
    assert s.secret() == "Very-Secret-1"
    assert "Very-Secret-1" not in repr(s) and "Very-Secret-1" not in str(s)
    ep = s.endpoint()
    assert (ep.server, ep.port, ep.ssl, ep.path) == ("hv01.example.com", 5986, True, "wsman")


def test_settings_from_the_projects_invoke_yaml() -> None:
    from invoke import Config

    config = Config(runtime_path=str(Path(__file__).resolve().parent.parent / "invoke.yaml"))
    config.load_runtime()
    s = Settings.load(config, env={"HVLAB_PASSWORD": "From-Env-1"})
    assert (s.host, s.auth, s.cert_validation, s.allow_basic_over_http, s.retries) == (
        None,
        "negotiate",
        True,
        False,
        3,
    )
    assert s.operation_timeout == config.hvlab.operation_timeout
    assert "From-Env-1" not in repr(s)


def test_certificate_validation_is_on_by_default() -> None:
    s = Settings.load(None, env={"HVLAB_HOST": "hv01"})
    assert s.cert_validation is True
    assert s.endpoint().url == "https://hv01:5986/wsman"


def test_basic_over_http_is_refused_unless_allowed() -> None:
    env = {"HVLAB_HOST": "http://hv01:5985/wsman", "HVLAB_AUTH": "basic"}
    with pytest.raises(ConfigError, match="allow_basic_over_http: true"):
        Settings.load(None, env=env)
    s = Settings.load({"allow_basic_over_http": True}, env=env)
    assert s.endpoint().ssl is False


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"HVLAB_AUTH": "digest"}, "unknown authentication"),
        ({"HVLAB_HOST": "ftp://hv01/wsman"}, "must look like"),
        ({"HVLAB_HOST": "https://u:p@hv01:5986/wsman"}, "must not carry credentials"),
        ({"HVLAB_CERT_VALIDATION": "maybe"}, "true or false"),
    ],
)
def test_bad_settings_say_what_to_fix(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.load(None, env=env)


def test_wire_values_carry_explicit_types() -> None:
    assert wire_value("Count", 5) == 5
    big = wire_value("Anything", 2**40)
    assert isinstance(big, TaggedValue) and (big.tag, big.value) == ("I64", 2**40)
    size = wire_value("SizeBytes", 1024)
    assert isinstance(size, TaggedValue) and (size.tag, size.value) == ("U64", 1024)
    ss = wire_value("Password", Secret("pw-Value-1"))
    assert isinstance(ss, TaggedValue) and ss.tag == "SS"
    nested = wire_value("Parameters", {"Size": 10 * 2**30, "Name": "x"})
    assert isinstance(nested["Size"], TaggedValue) and nested["Name"] == "x"


# ------------------------------------------------------------------ against hvsim


@pytest.mark.parametrize(
    ("auth", "client_auth", "https"),
    [("ntlm", "ntlm", False), ("ntlm", "negotiate", False), ("basic", "basic", True)],
)
def test_typed_records(sim_server: Any, auth: str, client_auth: str, https: bool) -> None:
    server = sim_server(auth=auth, https=https, allow_unencrypted=auth == "basic")
    with Host.connect(_settings(server, client_auth)) as host:
        (vmhost,) = host.run("Get-VMHost")
    assert isinstance(vmhost, Record)
    assert vmhost.type_names[0] == "Microsoft.HyperV.PowerShell.VMHost"
    assert vmhost["computername"] == vmhost["ComputerName"] == server.world.host.name
    assert vmhost["MemoryCapacity"] > 2**31
    # An enum arrives as its member name.
    assert isinstance(vmhost["VirtualMachineMigrationPerformanceOption"], str)


def test_host_error_mapping_and_silent_checks(sim_server: Any) -> None:
    server = sim_server(auth="ntlm")
    with Host.connect(_settings(server, "ntlm")) as host:
        with pytest.raises(HostError) as info:
            host.run("Get-VM", Name="ghost")
        assert host.run("Get-VM", Name="ghost", ErrorAction="SilentlyContinue") == []
        with pytest.raises(HostError) as bad:
            host.run("Get-VM", Bogus=1)
    err = info.value
    assert err.cmdlet == "Get-VM"
    assert err.error_id == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert err.category == "InvalidArgument"
    assert err.target == "ghost"
    assert "ghost" in err.message
    assert bad.value.error_id.startswith("NamedParameterNotFound")


def test_big_sizes_go_as_64_bit(sim_server: Any) -> None:
    server = sim_server(auth="ntlm")
    size = 256 * 1024**3
    with Host.connect(_settings(server, "ntlm")) as host:
        (vhd,) = host.run("New-VHD", Path="C:\\data1.vhdx", SizeBytes=size, Dynamic=True)
    assert vhd["Size"] == size


def test_secret_and_credential_arrive_as_securestring_and_pscredential(sim_server: Any) -> None:
    server = sim_server(auth="ntlm")
    SEEN.clear()
    with Host.connect(_settings(server, "ntlm")) as host:
        host.run("Import-PfxCertificate", FilePath="C:\\a.pfx", Password=Secret("Local-Pass-9"))
        host.run(
            "Connect-WSMan",
            ComputerName="x",
            Credential=Credential("LAB\\joiner", Secret("Join-Pass-7")),
        )
    assert isinstance(SEEN["password"], objects.SecureString)
    assert SEEN["password"].reveal() == "Local-Pass-9"
    assert SEEN["credential"] == objects.Credential(
        "LAB\\joiner", objects.SecureString("Join-Pass-7")
    )


def test_trace_has_names_durations_outcomes_and_no_values(sim_server: Any, tmp_path: Path) -> None:
    server = sim_server(auth="ntlm")
    with Host.connect(_settings(server, "ntlm")) as host:
        host.run(
            "Import-PfxCertificate", FilePath="C:\\secret-file.pfx", Password=Secret("Trace-Pass-3")
        )
        with pytest.raises(HostError):
            host.run("Get-VM", Name="ghost")
        out = tmp_path / "trace" / "calls.jsonl"
        host.write_trace(out)
    text = out.read_text()
    assert "Trace-Pass-3" not in text and "secret-file" not in text and SIM_PASSWORD not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert [(e["cmdlet"], e["params"], e["outcome"]) for e in entries] == [
        ("connect", [], "ok"),
        ("Import-PfxCertificate", ["FilePath", "Password"], "ok"),
        ("Get-VM", ["Name"], "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"),
    ]
    assert all(e["duration_ms"] >= 0 for e in entries)


def test_parallel_map_over_several_connections(sim_server: Any) -> None:
    from hvsim.model.world import World

    server = sim_server(auth="ntlm", world=World.create(timescale=0.001))
    with Host.connect(_settings(server, "ntlm"), max_runspaces=4) as host:
        t0 = time.monotonic()
        results = host.map([("Get-Unique", {}) for _ in range(4)])
        took = time.monotonic() - t0
        single = host.map(
            [("Get-VM", {"Name": n, "ErrorAction": "SilentlyContinue"}) for n in "abc"]
        )
    assert len(results) == 4 and all(len(r) == 1 for r in results)
    # Four calls of 0.25 s each: run one after the other they would take 1 s.
    assert took < 0.8, took
    assert single == [[], [], []]


def test_map_raises_the_first_failure_after_all_ran(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    with Host.connect(_settings(server, "basic")) as host:
        with pytest.raises(HostError) as info:
            host.map([("Get-VMHost", {}), ("Get-VM", {"Name": "ghost"}), ("Get-VMHost", {})])
        assert len([e for e in host.trace if e["outcome"] == "ok"]) == 3  # connect + two calls
    assert info.value.target == "ghost"


def test_retry_after_a_dropped_connection(sim_server: Any) -> None:
    server = sim_server(auth="ntlm")
    with Host.connect(_settings(server, "ntlm")) as host:
        server.drop_connections(1)
        (vmhost,) = host.run("Get-VMHost")
        assert vmhost["ComputerName"] == server.world.host.name
        assert (host.trace[-1]["outcome"], host.trace[-1]["attempts"]) == ("ok", 2)
        server.drop_connections(100)
        with pytest.raises(TransportError) as info:
            host.run("Get-VMHost")
        server.drop_connections(-1000)  # let the server answer again
        assert host.run("Get-VMHost")
    text = str(info.value)
    assert "127.0.0.1" in text and "Get-VMHost" in text and "3 attempt" in text


def test_retry_after_an_injected_drop_inside_a_cmdlet(sim_server: Any) -> None:
    from hvsim.model.world import World

    server = sim_server(auth="ntlm", world=World.create(faults="drop:cmdlet=Get-VMHost,nth=1"))
    with Host.connect(_settings(server, "ntlm")) as host:
        assert host.run("Get-VMHost")
        assert host.trace[-1]["attempts"] == 2


def test_a_change_whose_answer_is_lost_is_not_sent_again(sim_server: Any) -> None:
    """R-92: New-VM ran, its answer was lost; a retry would make a second VM."""
    from hvlab.errors import ResponseLost
    from hvsim.model.world import World

    world = World.create(faults="lost:cmdlet=New-VM,nth=1;lost:cmdlet=Get-VM,nth=1")
    server = sim_server(auth="ntlm", world=world)
    with Host.connect(_settings(server, "ntlm")) as host:
        with pytest.raises(ResponseLost, match="may have run"):
            host.run("New-VM", Name="once", Generation=2, NoVHD=True)
        assert host.trace[-1]["attempts"] == 1 and host.trace[-1]["outcome"] == "lost"
        # A read is safe to repeat: the lost Get-VM answer is asked for again.
        assert [v["Name"] for v in host.run("Get-VM", Name="once")] == ["once"]
        assert host.trace[-1]["attempts"] == 2
    assert [vm.name for vm in world.host.hyperv.vms] == ["once"]


def test_reads_only_goes_by_the_verb() -> None:
    from hvlab.remote import reads_only

    assert reads_only("Get-VM") and reads_only("Test-Path")
    assert not reads_only("New-VM") and not reads_only("Restart-Computer")
    assert not reads_only("script 0123") and not reads_only("Set-ClusterNetworkRole.ps1")


def test_wrong_password_is_a_config_error(sim_server: Any) -> None:
    server = sim_server(auth="ntlm")
    with pytest.raises(ConfigError, match="refused the logon"):
        Host.connect(_settings(server, "ntlm", password=Secret("Wrong-Pass-1")))


def test_nobody_listening_is_a_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(
        host=f"http://127.0.0.1:{port}/wsman",
        user="u",
        password="p",
        auth="ntlm",
        retries=1,
        operation_timeout=2,
    )
    t0 = time.monotonic()
    with pytest.raises(TransportError, match=r"127\.0\.0\.1: connect failed after 2 attempt"):
        Host.connect(settings)
    assert time.monotonic() - t0 < 10


def test_an_unset_host_password_is_asked_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hvlab.config import Settings
    from hvlab.session import ask_password

    section = {"hvlab": {"host": "https://hv01:5986/wsman", "user": "HV01\\a"}}
    settings = Settings.load(section, env={})
    asked: list[str] = []
    answered = ask_password(settings, ask=lambda q: asked.append(q) or "S3cret-pw!")
    assert answered.secret() == "S3cret-pw!" and "S3cret-pw!" not in repr(answered)
    assert asked == ["Password for HV01\\a on https://hv01:5986/wsman: "]
    with pytest.raises(ConfigError, match="no password given"):
        ask_password(settings, ask=lambda q: "")
    # Not a terminal (CI): say what to set, never wait for an answer.
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(ConfigError, match="set HVLAB_PASSWORD"):
        ask_password(settings)
    # Already given: nothing is asked.
    given = Settings.load(section, env={"HVLAB_PASSWORD": "x"})
    assert ask_password(given, ask=lambda q: pytest.fail("asked")) is given
