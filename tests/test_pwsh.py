"""The small PowerShell subset hvsim runs for scripts clients send (hvsim.pwsh_run).

Most cases go over the wire with pypsrp 0.9.1's add_script, the way a client's
test suite sends them; the parser's refusals are checked directly.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import pypsrp_wsman
from pypsrp.powershell import PowerShell, RunspacePool

from hvsim import pwsh_parse


def _script(pool: RunspacePool, text: str, *args: Any, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_script(text)
    for a in args:
        ps.add_argument(a)
    for k, v in params.items():
        ps.add_parameter(k, v)
    ps.invoke()
    return ps


@pytest.fixture
def pool(sim_server: Any) -> Any:
    server = sim_server(auth="ntlm")
    with RunspacePool(pypsrp_wsman(server, "ntlm")) as rp:
        yield rp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("echo 'hi'", ["hi"]),
        ('Write-Output "a`tb"', ["a\tb"]),
        ("1, 2, 3", [1, 2, 3]),
        ("@(1, 'two') + 3", [1, "two", 3]),
        ('"a" * 3', ["aaa"]),
        ("2KB + 1", [2049]),
        ("$x = 5; $x *= 2; $x", [10]),
        ("$i = 0; $i++; $i++; $i", [2]),
        ('$name = "Bob"; "Hello $name, $(1 + 2)!"', ["Hello Bob, 3!"]),
        ("'{0}-{1:D3}' -f 'a', 7", ["a-007"]),
        (
            "if (1 -gt 2) { 'no' } elseif ('A' -eq 'a') { 'case-insensitive' } else { 'x' }",
            ["case-insensitive"],
        ),
        ("$n = 0; while ($n -lt 3) { $n; $n++ }", [0, 1, 2]),
        ("1..4 | Where-Object { $_ % 2 -eq 0 }", [2, 4]),
        ("1, 2 | ForEach-Object { $_ * 10 }", [10, 20]),
        ("@{b = 2}.b", [2]),
        ("$null = 'discarded'; 'kept'", ["kept"]),
    ],
)
def test_expressions_and_statements(pool: Any, text: str, expected: list[Any]) -> None:
    ps = _script(pool, text)
    assert not ps.had_errors, ps.streams.error
    assert ps.output == expected


def test_variables_live_in_the_pool_session(pool: Any) -> None:
    _script(pool, "$global:shared = 'one'")
    ps = PowerShell(pool)
    ps.add_cmdlet("Set-Variable").add_parameter("Name", "other").add_parameter("Value", "two")
    ps.add_statement()
    ps.add_cmdlet("Get-Variable").add_parameter("Name", "other")
    ps.add_cmdlet("Select-Object").add_parameter("Property", ["Name", "Value"])
    out = ps.invoke()
    assert out[0].adapted_properties == {} or True
    assert (out[0].extended_properties["Name"], out[0].extended_properties["Value"]) == (
        "other",
        "two",
    )
    assert _script(pool, "$global:shared; Get-Variable other -ValueOnly").output == ["one", "two"]


def test_script_parameters_args_and_pipeline_input(pool: Any) -> None:
    assert _script(pool, 'param($Name, $Count = 2); "$Name x$Count"', Name="n").output == ["n x2"]
    assert _script(pool, "$args[1]", "a", "b").output == ["b"]
    ps = PowerShell(pool)
    ps.add_script("begin { $i = 0 } process { [PSCustomObject]@{Idx = $i; Value = $_}; $i++ }")
    out = ps.invoke(input=[10, "x"])
    assert [(o.extended_properties["Idx"], o.extended_properties["Value"]) for o in out] == [
        (0, 10),
        (1, "x"),
    ]
    ps = PowerShell(pool)
    ps.add_script("$input")
    assert ps.invoke(input=[1, 2]) == [1, 2]


def test_modelled_cmdlets_run_through_the_binder_and_model(pool: Any) -> None:
    ps = _script(pool, "Get-VMHost | Select-Object -ExpandProperty Name")
    assert not ps.had_errors and ps.output and isinstance(ps.output[0], str)
    # A model error is an ErrorRecord with the model's FQID; the script goes on.
    ps = _script(pool, "Get-VM -Name ghost; 'after'")
    assert ps.output == ["after"]
    assert ps.streams.error[0].fq_error.startswith("InvalidParameter,")


def test_streams_and_preferences(pool: Any) -> None:
    ps = _script(
        pool,
        "Write-Verbose 'quiet'; $VerbosePreference = 'Continue'; Write-Verbose 'loud'; "
        "Write-Warning 'careful'; Write-Information 'fyi'; Write-Error 'bad'; 'done'",
    )
    assert [v.message for v in ps.streams.verbose] == ["loud"]
    assert [w.message for w in ps.streams.warning] == ["careful"]
    assert [i.message_data for i in ps.streams.information] == ["fyi"]
    assert [str(e) for e in ps.streams.error] == ["bad"]
    assert ps.output == ["done"]


def test_secure_strings(pool: Any) -> None:
    ps = _script(pool, "ConvertTo-SecureString -String 's3cret' -AsPlainText")
    # Windows PowerShell 5.1 insists on -Force.
    assert ps.output == [] and "Force parameter" in str(ps.streams.error[0])
    pool.exchange_keys()
    ps = _script(pool, "ConvertTo-SecureString -String 's3cret' -AsPlainText -Force")
    assert ps.output == ["s3cret"]  # pypsrp 0.9.1 decrypts SecureStrings it receives


def test_throw_and_stop_fail_the_pipeline(pool: Any) -> None:
    ps = _script(pool, "'before'; throw 'it broke'; 'after'")
    assert ps.had_errors and ps.output == ["before"]
    assert str(ps.streams.error[-1]) == "it broke"
    ps = _script(pool, "$ErrorActionPreference = 'Stop'; Get-VM -Name ghost; 'after'")
    assert ps.had_errors and ps.output == []


def test_unknown_command_is_a_statement_error(pool: Any) -> None:
    ps = _script(pool, "Not-A-Command; 'next'")
    assert ps.output == ["next"]
    assert ps.streams.error[0].fq_error == "CommandNotFoundException"


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        ("$Host.UI.PromptForChoice('a', 'b', @(), 0)", "$Host.UI.PromptForChoice"),
        ("function f { 1 }", "'function' keyword"),
        ("try { 1 } catch { 2 }", "'try' keyword"),
        ("[IO.File]::ReadAllText('C:\\x')", "[IO.File]::ReadAllText"),
        ("Get-Process", "the cmdlet Get-Process"),
        ("& 'cmd.exe' /c dir", "call operators"),
        ("$x = @{}; $x.GetType()", "GetType"),
        ("[Environment]::CurrentDirectory = 'C:\\'", "assigning to the .NET member"),
    ],
)
def test_outside_the_subset_is_refused_naming_the_construct(
    pool: Any, text: str, construct: str
) -> None:
    ps = _script(pool, text)
    assert ps.had_errors
    (err,) = ps.streams.error
    assert err.fq_error == "NotModelled,hvsim"
    assert construct in str(err), str(err)


def test_parser_errors_are_parse_exceptions(pool: Any) -> None:
    ps = _script(pool, "'unterminated")
    assert ps.had_errors and ps.streams.error[0].fq_error == "ParseException"
    with pytest.raises(pwsh_parse.Unsupported):
        pwsh_parse.parse("(" * 200 + "1" + ")" * 200)


def test_host_ui_calls_reach_the_clients_host(tmp_path: Any) -> None:
    """$Host.UI calls become host calls ([MS-PSRP] 2.2.2.15-16) to the client's host,
    and Write-Host writes there too; without a host, output goes nowhere and a read
    fails as Windows' does. The server runs in a child process: other test modules
    register test-only handlers (Write-Host among them) in this one."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from conftest import SIM_PASSWORD, SIM_USER
    from pypsrp.host import PSHost, PSHostUserInterface
    from pypsrp.wsman import WSMan

    class UI(PSHostUserInterface):
        def ReadLine(self, runspace: Any, pipeline: Any) -> str:
            return "typed"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, HVSIM_PASSWORD=SIM_PASSWORD, HVSIM_USER=SIM_USER, PYTHONPATH=str(root))
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from hvsim.cli import serve; serve(port={port}, auth='ntlm')"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("hvsim listening")

        def wsman() -> WSMan:
            return WSMan(
                "127.0.0.1",
                port=port,
                ssl=False,
                auth="ntlm",
                username=SIM_USER,
                password=SIM_PASSWORD,
                operation_timeout=5,
            )

        ui = UI()
        host = PSHost(None, None, False, "test", None, ui, "1.0")
        with RunspacePool(wsman(), host=host) as rp:
            ps = _script(
                rp, "$Host.UI.WriteLine('to the host'); $Host.UI.ReadLine(); Write-Host 'shown'"
            )
            assert ps.output == ["typed"]
            assert ui.stdout == ["to the host\r\n", "shown\r\n"]
            (info,) = ps.streams.information
            assert info.message_data.adapted_properties["Message"] == "shown"
        with RunspacePool(wsman()) as rp:
            ps = _script(rp, "$Host.UI.WriteLine('nowhere'); $Host.UI.ReadLine(); 'next'")
            assert ps.output == ["next"]
            assert "does not support user interaction" in str(ps.streams.error[0])
    finally:
        proc.terminate()
        proc.wait(10)
