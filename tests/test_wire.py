"""hvsim over real WinRM on loopback, driven by unmodified pypsrp 0.9.1.

The model's own cmdlets (Get-VMHost, Get-VM, New-VHD) serve the end-to-end
calls; hvsim's utility cmdlets (Write-*) produce every stream. A few test-only
handlers are registered under catalog cmdlets hvlab never sends and hvsim does
not implement (Get-Random, Get-Credential, ConvertFrom-SecureString, Get-Culture,
Get-TimeZone),
for large outputs, secret parameters and a crashing handler.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import pytest
from conftest import pypsrp_wsman
from pypsrp.complex_objects import PSCredential
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue

from hvsim import objects, registry

SEEN: dict[str, Any] = {}


def _register(name: str, params: list[str]) -> Any:
    def deco(fn: Any) -> Any:
        entry = registry.lookup(name)
        if entry is None or entry.handler is fn:
            registry.cmdlet(name, params=params)(fn)
        return fn

    return deco


@_register("Get-Random", ["Count", "Maximum"])
def _bulk(ctx: Any, call: Any) -> list[Any]:
    # Test-only meaning: Count objects, each carrying Maximum bytes of text.
    size = int(call.get("Maximum"))
    return [
        objects.PSObj(
            ["Hvsim.Test.Blob", "System.Object"],
            {
                "Index": i,
                "Data": chr(65 + i % 26) * size,
                "Nested": objects.PSObj(["X"], {"A": 1}, "nested-to-string"),
            },
            f"blob {i}",
        )
        for i in range(int(call.get("Count")))
    ]


@_register("Get-Credential", ["Credential"])
def _credential(ctx: Any, call: Any) -> list[str]:
    SEEN["credential"] = call.get("Credential")
    return ["ok"]


@_register("ConvertFrom-SecureString", ["SecureString"])
def _secure(ctx: Any, call: Any) -> list[str]:
    SEEN["secure"] = call.get("SecureString")
    return ["ok"]


SPANS: list[tuple[float, float]] = []
_SPANS_LOCK = threading.Lock()


@_register("Get-Culture", [])
def _slow(ctx: Any, call: Any) -> list[int]:
    t0 = time.monotonic()
    ctx.work(300, "a slow modelled operation")  # 0.3 s real at timescale 0.001
    with _SPANS_LOCK:
        SPANS.append((t0, time.monotonic()))
    return [1]


def _invoke(pool: RunspacePool, name: str, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(name)
    for k, v in params.items():
        ps.add_parameter(k, v)
    ps.invoke()
    return ps


MODES = [
    pytest.param("basic", False, id="basic-http-noencryption"),
    pytest.param("basic", True, id="basic-https"),
    pytest.param("ntlm", False, id="ntlm-http-encrypted"),
    pytest.param("ntlm", True, id="ntlm-https"),
]


@pytest.mark.parametrize(("auth", "https"), MODES)
def test_typed_object_over_each_transport(sim_server: Any, auth: str, https: bool) -> None:
    server = sim_server(auth=auth, https=https, allow_unencrypted=auth == "basic")
    with RunspacePool(pypsrp_wsman(server, auth)) as pool:
        ps = _invoke(pool, "Get-VMHost")
    assert not ps.had_errors and ps.streams.error == []
    (host,) = ps.output
    assert host.types[0] == "Microsoft.HyperV.PowerShell.VMHost"
    props = host.adapted_properties
    assert props["ComputerName"] == server.world.host.name
    # MemoryCapacity is an Int64 on the wire: a Python int after deserialization,
    # beyond what Int32 holds.
    assert props["MemoryCapacity"] > 2**31


def test_error_record_fields_arrive(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        ps = _invoke(pool, "Get-VM", Name="no-such-vm")
    # Get-VM of a missing name is a non-terminating error; the pipeline completes.
    assert ps.had_errors is False
    (err,) = ps.streams.error
    assert err.fq_error == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert err.reason == "VirtualizationException"
    assert err.activity == "Get-VM"
    assert err.target_name == "no-such-vm"
    assert "no-such-vm" in str(err)
    assert err.message.startswith("InvalidArgument")


def test_error_action_stop_fails_the_pipeline(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        ps = _invoke(pool, "Get-VM", Name="no-such-vm", ErrorAction="Stop")
        quiet = _invoke(pool, "Get-VM", Name="no-such-vm", ErrorAction="SilentlyContinue")
    assert ps.had_errors is True
    assert ps.streams.error[0].fq_error.startswith("InvalidParameter,")
    assert quiet.had_errors is False and quiet.streams.error == []


def test_unknown_cmdlet_and_parameter_fail_as_powershell(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        nope = _invoke(pool, "Get-Nonexistent")
        badparam = _invoke(pool, "Get-VMHost", Bogus="x")
        # The connection is still good after both.
        ok = _invoke(pool, "Get-VMHost")
    assert nope.had_errors and "CommandNotFoundException" in nope.streams.error[0].fq_error
    assert badparam.had_errors and badparam.streams.error[0].fq_error.startswith(
        "NamedParameterNotFound"
    )
    assert ok.output and not ok.had_errors


def test_every_stream_reaches_the_client(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        w = _invoke(pool, "Write-Warning", Message="careful")
        v = _invoke(pool, "Write-Verbose", Message="chatty", Verbose=True)
        v_off = _invoke(pool, "Write-Verbose", Message="unheard")
        i = _invoke(pool, "Write-Information", MessageData="fyi")
        p = _invoke(pool, "Write-Progress", Activity="Copying", Status="half", PercentComplete=50)
        e = _invoke(
            pool, "Write-Error", Message="bad thing", ErrorId="Bad,Test", Category="InvalidData"
        )
    assert [str(x.message) for x in w.streams.warning] == ["careful"]
    assert [str(x.message) for x in v.streams.verbose] == ["chatty"]
    assert v_off.streams.verbose == []
    assert [x.message_data for x in i.streams.information] == ["fyi"]
    (prog,) = p.streams.progress
    assert (prog.activity, prog.description, prog.percent_complete) == ("Copying", "half", 50)
    (err,) = e.streams.error
    assert (err.fq_error, str(err)) == ("Bad,Test", "bad thing")
    assert err.message.startswith("InvalidData")
    # A non-terminating error: the pipeline completes (Write-Error writes no output).
    assert e.output == [] and not e.had_errors


def test_large_output_is_fragmented(sim_server: Any) -> None:
    server = sim_server(auth="ntlm")
    with RunspacePool(pypsrp_wsman(server, "ntlm")) as pool:
        many = _invoke(pool, "Get-Random", Count=2500, Maximum=2048)
        one = _invoke(pool, "Get-Random", Count=1, Maximum=5 * 1024 * 1024)
    assert len(many.output) == 2500
    assert [o.adapted_properties["Index"] for o in many.output] == list(range(2500))
    assert many.output[27].adapted_properties["Data"] == "B" * 2048
    # Depth 1: a nested object arrives as its ToString.
    assert many.output[0].adapted_properties["Nested"] == "nested-to-string"
    data = one.output[0].adapted_properties["Data"]
    assert len(data) == 5 * 1024 * 1024 and data == "A" * len(data)


def test_pipeline_of_two_commands_and_statements(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VMHost").add_statement()
        ps.add_cmdlet("Write-Warning").add_parameter("Message", "second statement")
        out = ps.invoke()
    assert len(out) == 1 and out[0].types[0] == "Microsoft.HyperV.PowerShell.VMHost"
    assert [str(w.message) for w in ps.streams.warning] == ["second statement"]


def test_parallel_pipelines_from_several_clients(sim_server: Any) -> None:
    server = sim_server(auth="ntlm")

    def client(n: int) -> list[str]:
        names = []
        with RunspacePool(pypsrp_wsman(server, "ntlm"), max_runspaces=3) as pool:
            shells = [PowerShell(pool) for _ in range(3)]
            for ps in shells:
                ps.add_cmdlet("Get-VMHost")
                ps.begin_invoke()
            for ps in shells:
                ps.end_invoke()
                assert not ps.had_errors
                names.append(ps.output[0].adapted_properties["ComputerName"])
        return names

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(client, range(4)))
    assert all(r == [server.world.host.name] * 3 for r in results)
    deadline = time.monotonic() + 5
    while server.shells and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.shells == 0, "every client closed its pool; no shell may remain"


def test_securestring_and_credential_reach_the_handler_decrypted(sim_server: Any) -> None:
    server = sim_server(auth="ntlm")
    SEEN.clear()
    with RunspacePool(pypsrp_wsman(server, "ntlm")) as pool:
        pool.exchange_keys()
        ss = _invoke(
            pool, "ConvertFrom-SecureString", SecureString=TaggedValue("SS", "S3cret-Value")
        )
        cred = PSCredential(username="LAB\\Administrator", password="Cred-Pass-1")
        cr = _invoke(pool, "Get-Credential", Credential=cred)
    assert not ss.had_errors and not cr.had_errors
    secure = SEEN["secure"]
    assert isinstance(secure, objects.SecureString) and secure.reveal() == "S3cret-Value"
    credential = SEEN["credential"]
    assert isinstance(credential, objects.Credential)
    assert credential.user == "LAB\\Administrator"
    assert credential.password.reveal() == "Cred-Pass-1"
    assert "Cred-Pass-1" not in repr(credential)


def test_int32_overflow_is_refused_and_64bit_forms_accepted(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    size = 4 * 1024**3
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        plain = _invoke(pool, "New-VHD", Path="C:\\a.vhdx", SizeBytes=size, Dynamic=True)
        tagged = _invoke(
            pool, "New-VHD", Path="C:\\b.vhdx", SizeBytes=TaggedValue("U64", size), Dynamic=True
        )
        text = _invoke(pool, "New-VHD", Path="C:\\c.vhdx", SizeBytes=str(size), Dynamic=True)
    assert plain.had_errors
    assert "too large or too small for an Int32" in str(plain.streams.error[0])
    assert not tagged.had_errors and tagged.output[0].adapted_properties["Size"] == size
    assert not text.had_errors and text.output[0].adapted_properties["Size"] == size


def test_handler_crash_becomes_an_error_record(sim_server: Any) -> None:
    @_register("Get-TimeZone", [])
    def _crash(ctx: Any, call: Any) -> None:
        raise ZeroDivisionError("model bug")

    server = sim_server(auth="basic", allow_unencrypted=True)
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        bad = _invoke(pool, "Get-TimeZone")
        ok = _invoke(pool, "Get-VMHost")
    assert bad.had_errors and bad.streams.error[0].fq_error == "hvsim.InternalError"
    assert ok.output and not ok.had_errors


def test_injected_drop_cuts_the_connection(sim_server: Any) -> None:
    from hvsim.model.world import World

    world = World.create(faults="drop:cmdlet=Get-VMHost,nth=1")
    server = sim_server(auth="basic", allow_unencrypted=True, world=world)
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        with pytest.raises(Exception) as info:
            _invoke(pool, "Get-VMHost")
        assert "Connection" in type(info.value).__name__ or "onnection" in str(info.value)
        again = _invoke(pool, "Get-VMHost")
    assert again.output and not again.had_errors


@pytest.mark.parametrize(("runspaces", "overlap"), [(2, True), (1, False)])
def test_work_releases_the_lock_and_max_runspaces_bounds_concurrency(
    sim_server: Any, runspaces: int, overlap: bool
) -> None:
    """ctx.work lets modelled time pass with the world lock released, so two
    pipelines of one pool overlap, unless the pool has a single runspace."""
    from hvsim.model.world import World

    SPANS.clear()
    server = sim_server(auth="basic", allow_unencrypted=True, world=World.create(timescale=0.001))
    with RunspacePool(pypsrp_wsman(server, "basic"), max_runspaces=runspaces) as pool:
        shells = [PowerShell(pool), PowerShell(pool)]
        for ps in shells:
            ps.add_cmdlet("Get-Culture")
            ps.begin_invoke()
        for ps in shells:
            ps.end_invoke()
            assert ps.output == [1]
    (_, e1), (s2, _) = sorted(SPANS)
    assert (s2 < e1) is overlap


def test_server_without_a_world_serves_test_handlers() -> None:
    """serve_in_thread(world=None): handlers get world None and the module lock."""
    from conftest import SIM_PASSWORD, SIM_USER

    from hvsim.server import serve_in_thread

    with serve_in_thread(
        None, auth="basic", user=SIM_USER, password=SIM_PASSWORD, allow_unencrypted=True
    ) as server:
        assert server.world is None and server.url.endswith("/wsman")
        with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
            ps = _invoke(pool, "Write-Warning", Message="no world here")
    assert [str(w.message) for w in ps.streams.warning] == ["no world here"]


def test_shells_of_vanished_clients_are_closed_after_idle_timeout(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    server._psrp.idle_timeout = 0.3
    gone = RunspacePool(pypsrp_wsman(server, "basic"))
    gone.open()  # never closed: the client vanished
    assert server.shells == 1
    time.sleep(0.5)
    with RunspacePool(pypsrp_wsman(server, "basic")) as pool:
        assert server.shells == 1  # only this one; the idle shell was closed
        assert _invoke(pool, "Get-VMHost").output


def test_stop_ends_a_running_pipeline_and_the_pool_goes_on(sim_server: Any) -> None:
    from hvsim.model.world import World

    server = sim_server(auth="basic", allow_unencrypted=True, world=World.create(timescale=0.01))
    with RunspacePool(pypsrp_wsman(server, "basic"), max_runspaces=2) as pool:
        slow = PowerShell(pool)
        slow.add_cmdlet("Get-Culture")  # ctx.work(300) = 3 s real at this timescale
        t0 = time.monotonic()
        slow.begin_invoke()
        slow.stop()
        ok = _invoke(pool, "Get-VMHost")
        assert ok.output and not ok.had_errors
        assert time.monotonic() - t0 < 2.5, "the stopped pipeline must not hold up the pool"


def test_min_max_runspaces_and_positional_arguments(sim_server: Any) -> None:
    server = sim_server(auth="basic", allow_unencrypted=True)
    with RunspacePool(pypsrp_wsman(server, "basic"), min_runspaces=1, max_runspaces=2) as pool:
        pool.max_runspaces = 6  # SET_MAX_RUNSPACES, answered by the server
        pool.min_runspaces = 2
        assert (pool.min_runspaces, pool.max_runspaces) == (2, 6)
        assert pool.get_available_runspaces() == 6
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-VM").add_argument("ghost")  # -Name is position 0
        ps.add_parameter("ErrorAction", "SilentlyContinue")
        ps.invoke()
    assert ps.output == [] and ps.streams.error == [] and not ps.had_errors
