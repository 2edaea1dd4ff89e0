"""The Python API (hvlab.Lab) against the embedded simulated host: objects back,
hvlab's exceptions out, nothing printed unless asked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from project import LABS

import hvlab
from hvlab.errors import ConfigError, HostError, HvlabError, SpecError

PASSWORDS = {"HVLAB_ADMIN_PASSWORD": "Api-Adm1n-Pw!x", "HVLAB_DSRM_PASSWORD": "Api-Dsrm-Pw!x9"}


def test_load_by_path_by_name_and_bad_input(workdir: Path) -> None:
    by_path = hvlab.Lab.load(LABS / "s2d-4node.yaml")
    by_name = hvlab.Lab.load("s2d-4node")
    assert by_path.name == by_name.name == "s2d-4node"
    assert "shipped with hvlab" in by_name.source
    assert by_path.state_dir == workdir / ".hvlab" / "sim" / "s2d-4node"  # the embedded host
    bad = workdir / "bad.yaml"
    bad.write_text((LABS / "s2d-2node.yaml").read_text().replace("cpus: 4,", "cpus: 0,"))
    with pytest.raises(SpecError) as info:
        hvlab.Lab.load(bad)
    assert info.value.exit_code == 2
    with pytest.raises(ConfigError, match="ships no lab of that name"):
        hvlab.Lab.load("s2d-99node")


@pytest.mark.slow
def test_the_lifecycle_returns_objects_and_prints_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = hvlab.Lab.load("s2d-2node", home=workdir / "state")
    assert lab.status().present is False
    plan = lab.plan()
    assert plan["changes"] > 0
    result = lab.up()
    assert result.ok and result.changed > 0 and not result.no_change
    assert result.endpoints["cluster"]["name"] == "hvcluster"
    again = lab.up()
    assert again.no_change
    status = lab.status()
    assert status.healthy and status.present
    assert status.vms == {"dc01": "Running", "hvhost01": "Running", "hvhost02": "Running"}
    assert "C:\\ClusterStorage\\Volume01" in status.csv_paths  # beside the performance history
    assert (status.owner_of("havm01") or "").lower() in ("hvhost01", "hvhost02")
    assert status.pool_health == "Healthy"
    # Inside a VM through PowerShell Direct: cluster cmdlets as the domain account.
    nodes = lab.run("hvhost01", "Get-ClusterNode")
    assert sorted(str(n["Name"]).lower() for n in nodes) == ["hvhost01", "hvhost02"]
    with pytest.raises(HostError) as info:
        lab.run("hvhost01", "Get-ClusterGroup", Name="no-such-group")
    assert info.value.error_id
    with pytest.raises(ConfigError, match="not a VM of lab s2d-2node"):
        lab.run("elsewhere", "Get-Date")
    removed = lab.down()
    assert removed["problems"] == [] and removed["removed"]
    assert lab.status().present is False
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # a library prints nothing unless asked
    assert (lab.state_dir / "run.log").is_file()


@pytest.mark.slow
def test_output_shows_progress_and_failures_carry_the_report(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    lab = hvlab.Lab.load(LABS / "s2d-2node.yaml", output=stream)
    monkeypatch.setenv("HVSIM_FAULTS", "transient:cmdlet=Test-Cluster,rate=1")
    with pytest.raises(HvlabError) as info:
        lab.up()
    report = info.value.report  # type: ignore[attr-defined]
    assert report["result"] == "failed"
    assert any(s["status"] == "failed" for s in report["steps"])
    text = stream.getvalue()
    assert text.startswith("hvlab lab.up s2d-2node from ")
    assert "[preflight] ok" in text


@pytest.mark.slow
def test_one_connected_session_serves_many_calls(workdir: Path) -> None:
    lab = hvlab.Lab.load("s2d-2node")
    lab.up()
    with lab.connected() as same:
        assert same is lab and lab.session is not None
        host = lab.session.host
        before = len(host.trace)
        lab.status()
        lab.run("dc01", "Get-ADDomainController")
        assert len(host.trace) > before  # the calls went over the one session
    assert lab.session is None
