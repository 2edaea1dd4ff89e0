"""The executor (common parameters, lock, errors) and the CLIXML value mapping,
without a network: the seam between wire and model."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from psrpcore.types import PSCredential, PSInt64, PSScriptBlock, PSSecureString
from psrpcore.types._serializer import serialize

from hvsim import clixml, executor, objects, registry
from hvsim.errors import PSError
from hvsim.executor import Command, run_pipeline


class Sink:
    def __init__(self) -> None:
        self.errors: list[PSError] = []
        self.warnings: list[str] = []
        self.verbose_: list[str] = []
        self.info: list[Any] = []
        self.progress_: list[tuple[str, str, int]] = []

    def error(self, err: PSError) -> None:
        self.errors.append(err)

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def verbose(self, text: str) -> None:
        self.verbose_.append(text)

    def information(self, data: Any) -> None:
        self.info.append(data)

    def progress(self, activity: str, status: str, percent: int = -1) -> None:
        self.progress_.append((activity, status, percent))


def _nonterminating(ctx: Any, call: Any) -> list[str]:
    ctx.error(PSError("soft failure", fqid="Soft,Test", category="ObjectNotFound"))
    ctx.warning("w")
    return ["done"]


# Test-only handlers under catalog names hvlab never sends.
registry.cmdlet("Write-Host", params=["Object", "Separator"])(_nonterminating)


def _run(sink: Sink, name: str, world: Any = None, **params: Any) -> list[Any]:
    return run_pipeline(world, None, "hvadmin", [Command(name, list(params.items()))], sink)


@pytest.mark.parametrize(
    ("action", "errors", "output"),
    [
        (None, 1, ["done"]),
        ("Continue", 1, ["done"]),
        ("SilentlyContinue", 0, ["done"]),
        ("Ignore", 0, ["done"]),
        (0, 0, ["done"]),  # ActionPreference.SilentlyContinue as the enum's number
    ],
)
def test_error_action_on_non_terminating_errors(
    action: Any, errors: int, output: list[str]
) -> None:
    sink = Sink()
    params = {} if action is None else {"ErrorAction": action}
    assert _run(sink, "Write-Host", **params) == output
    assert len(sink.errors) == errors


def test_error_action_stop_makes_it_terminating() -> None:
    with pytest.raises(PSError) as info:
        _run(Sink(), "Write-Host", ErrorAction="Stop")
    assert info.value.fqid == "Soft,Test"


def test_warning_action() -> None:
    sink = Sink()
    _run(sink, "Write-Host", WarningAction="SilentlyContinue")
    assert sink.warnings == []
    sink = Sink()
    _run(sink, "Write-Host")
    assert sink.warnings == ["w"]


def _set_date(ctx: Any, call: Any) -> list[str]:
    return ["set"]


registry.cmdlet("Set-Date", params=["Date"])(_set_date)


def test_confirm_false_is_accepted_and_whatif_is_not_modelled() -> None:
    assert _run(Sink(), "Set-Date", Date="2026-01-01", Confirm=False) == ["set"]
    with pytest.raises(PSError) as info:
        _run(Sink(), "Set-Date", Date="2026-01-01", WhatIf=True)
    assert info.value.fqid == "NotModelled,hvsim" and "WhatIf" in info.value.message


def test_confirm_on_a_cmdlet_without_it_is_a_binding_error() -> None:
    with pytest.raises(PSError) as info:
        _run(Sink(), "Write-Host", Confirm=False)
    assert info.value.fqid.startswith("NamedParameterNotFound")


def test_parameter_the_model_does_not_honour_is_refused() -> None:
    with pytest.raises(PSError) as info:
        _run(Sink(), "Write-Host", NoNewline=True)
    assert info.value.fqid == "NotModelled,hvsim"
    assert "-NoNewline" in info.value.message


def test_unknown_script_is_not_modelled() -> None:
    with pytest.raises(PSError) as info:
        run_pipeline(
            None, None, "u", [Command("Remove-Item C:\\ -Recurse", [], is_script=True)], Sink()
        )
    assert info.value.fqid == "NotModelled,hvsim"


def test_handler_exception_becomes_internal_error() -> None:
    def boom(ctx: Any, call: Any) -> None:
        raise KeyError("oops")

    registry.cmdlet("Get-Verb", params=[])(boom)
    with pytest.raises(PSError) as info:
        _run(Sink(), "Get-Verb")
    assert info.value.fqid == "hvsim.InternalError"
    assert "KeyError" in info.value.message


class _World:
    def __init__(self, timescale: float) -> None:
        from hvsim.clock import Clock

        self.lock = threading.Lock()
        self.clock = Clock(timescale)
        self.faults = None


def test_work_releases_the_world_lock_and_takes_it_back() -> None:
    world = _World(timescale=0.001)
    seen: dict[str, bool] = {}

    def slow(ctx: Any, call: Any) -> list[int]:
        assert world.lock.locked()
        ctx.work(200, "waiting")  # 0.2 s real
        seen["relocked"] = world.lock.locked()
        return [1]

    registry.cmdlet("Get-UICulture", params=[])(slow)
    t = threading.Thread(target=lambda: _run(Sink(), "Get-UICulture", world=world))
    t.start()
    time.sleep(0.05)
    # While the handler's modelled time passes, another caller can take the lock.
    got = world.lock.acquire(timeout=1)
    assert got
    world.lock.release()
    t.join(5)
    assert seen == {"relocked": True}


def test_nested_pipeline_inside_a_handler_does_not_deadlock() -> None:
    world = _World(timescale=0)

    def outer(ctx: Any, call: Any) -> list[Any]:
        # PowerShell Direct: the guest wrapper runs cmdlets through the executor
        # again while this handler holds the world lock.
        inner = executor.run_in_machine(
            ctx.world, "guest", "LAB\\admin", [Command("Write-Host", [])], Sink()
        )
        return ["outer", *inner]

    registry.cmdlet("Get-Host", params=[])(outer)
    done: list[Any] = []
    t = threading.Thread(target=lambda: done.extend(_run(Sink(), "Get-Host", world=world)))
    t.start()
    t.join(5)
    assert done == ["outer", "done"]


def _xml(value: Any) -> str:
    return ET.tostring(serialize(clixml.to_ps(value), None)).decode()


def test_objects_keep_type_names_and_nested_objects_become_strings() -> None:
    inner = objects.PSObj(
        ["Microsoft.HyperV.PowerShell.VMNetworkAdapter"],
        {"Name": "nic"},
        "VMNetworkAdapter (Name = 'nic')",
    )
    vm = objects.PSObj(
        ["Microsoft.HyperV.PowerShell.VirtualMachine", "System.Object"],
        {
            "Name": "vm1",
            "MemoryStartup": objects.Int64(4 * 2**30),
            "ProcessorCount": 2,
            "State": objects.PSEnum("Microsoft.HyperV.PowerShell.VMState", "Running", 2),
            "NetworkAdapters": [inner],
            "Tags": ["a", "b"],
            "Id": uuid.UUID(int=1),
        },
        "VirtualMachine (Name = 'vm1')",
        {"PSComputerName": "HV01"},
    )
    xml = _xml(vm)
    assert "<T>Microsoft.HyperV.PowerShell.VirtualMachine</T>" in xml
    assert '<I64 N="MemoryStartup">4294967296</I64>' in xml
    assert '<I32 N="ProcessorCount">2</I32>' in xml
    # An enum keeps its type, name and number.
    assert "<T>Microsoft.HyperV.PowerShell.VMState</T><T>System.Enum</T>" in xml
    assert "<ToString>Running</ToString>" in xml
    # Depth 1: the adapter below the top level is its ToString.
    assert "<S>VMNetworkAdapter (Name = 'nic')</S>" in xml
    assert "<S>a</S><S>b</S>" in xml
    assert '<MS><S N="PSComputerName">HV01</S></MS>' in xml
    assert '<G N="Id">00000000-0000-0000-0000-000000000001</G>' in xml


def test_incoming_values_become_model_values() -> None:
    assert clixml.from_ps(PSInt64(5 * 2**30)) == objects.Int64(5 * 2**30)
    assert isinstance(clixml.from_ps(PSInt64(7)), objects.Int64)
    ss = clixml.from_ps(PSSecureString("pw"))
    assert isinstance(ss, objects.SecureString) and ss.reveal() == "pw"
    cred = clixml.from_ps(PSCredential(UserName="LAB\\u", Password=PSSecureString("p2")))
    assert cred == objects.Credential("LAB\\u", objects.SecureString("p2"))
    assert clixml.from_ps(PSScriptBlock("Get-Date")) == objects.ScriptBlock("Get-Date")
    assert clixml.from_ps({"a": [PSInt64(1)]}) == {"a": [objects.Int64(1)]}


def test_error_record_carries_category_fqid_and_target() -> None:
    err = PSError(
        'Hyper-V was unable to find a virtual machine with name "x".',
        fqid="InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM",
        category="InvalidArgument",
        exception="Microsoft.HyperV.PowerShell.VirtualizationException",
        target="x",
    )
    rec = clixml.error_record(err, "Get-VM")
    assert rec.FullyQualifiedErrorId == err.fqid
    assert rec.CategoryInfo.Category.name == "InvalidArgument"
    assert rec.CategoryInfo.Reason == "VirtualizationException"
    assert rec.CategoryInfo.Activity == "Get-VM"
    assert rec.TargetObject == "x"
    assert rec.Exception.Message == err.message
    assert (
        rec.Exception.PSObject.type_names[0]
        == "Microsoft.HyperV.PowerShell.VirtualizationException"
    )


def test_values_of_every_kind_serialize_with_their_net_type() -> None:
    import datetime

    xml = _xml(
        objects.PSObj(
            ["Hvsim.Test.Kinds"],
            {
                "When": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
                "Uptime": datetime.timedelta(hours=1, seconds=5),
                "Flag": True,
                "Ratio": 0.5,
                "Nothing": None,
                "Big": objects.UInt64(2**63),
                "Small": objects.UInt32(7),
                "Table": {"k": "v"},
                "Who": objects.Credential("LAB\\u", objects.SecureString("pw")),
            },
            "kinds",
        )
    )
    assert '<DT N="When">2026-01-02T03:04:05' in xml
    assert '<TS N="Uptime">PT1H5S</TS>' in xml
    assert '<B N="Flag">true</B>' in xml
    assert '<Db N="Ratio">0.5</Db>' in xml
    assert '<Nil N="Nothing" />' in xml
    assert '<U64 N="Big">9223372036854775808</U64>' in xml
    assert '<U32 N="Small">7</U32>' in xml
    # Complex values below the top level: their ToString (depth 1).
    assert '<S N="Table">System.Collections.Hashtable</S>' in xml
    assert '<S N="Who">System.Management.Automation.PSCredential</S>' in xml
    assert "pw" not in xml.replace("Props", "")
    top = _xml({"k": objects.Int64(1)})
    assert '<DCT><En><S N="Key">k</S><I64 N="Value">1</I64></En></DCT>' in top


def test_error_records_name_the_cmdlet_that_wrote_them() -> None:
    sink = Sink()
    cmds = [Command("Set-Date", [("Date", "2026-01-01")]), Command("Write-Host", [])]
    assert run_pipeline(None, None, "u", cmds, sink) == ["done"]
    assert [e.activity for e in sink.errors] == ["Write-Host"]
    with pytest.raises(PSError) as info:
        _run(Sink(), "Write-Host", ErrorAction="Stop")
    assert info.value.activity == "Write-Host"
