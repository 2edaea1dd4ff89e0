"""lab.up --junit FILE over the wire against the embedded hvsim: each step a test case
with its time, Test-Cluster's results a suite of their own, a failed step a failure
with the step's error; the file validates against tests/junit.xsd and never holds a
password."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from project import LABS
from test_lab_e2e import PASSWORDS

from hvlab.api import Lab
from hvlab.steps.cluster import validation_results

XSD = Path(__file__).with_name("junit.xsd")
LAB = LABS / "s2d-2node.yaml"


def suites(path: Path) -> dict[str, ET.Element]:
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    root = ET.parse(path).getroot()
    return {s.get("name", ""): s for s in root.findall("testsuite")}


def test_a_build_writes_steps_and_test_cluster_results_as_cases(workdir: Path) -> None:
    report_file = workdir / "out" / "up.xml"
    result = Lab.load(str(LAB)).up(junit=report_file)
    assert result.ok and result.report["junit"] == str(report_file)

    found = suites(report_file)
    steps = found["lab.up s2d-2node"]
    cases = steps.findall("testcase")
    assert [c.get("name") for c in cases] == [s["step"] for s in result.steps]
    assert steps.get("tests") == str(len(result.steps)) and steps.get("failures") == "0"
    by_name = {c.get("name"): c for c in cases}
    for step in result.steps:
        assert float(by_name[step["step"]].get("time", "-1")) == pytest.approx(
            step["host_seconds"], abs=0.001
        )
    assert sum(float(c.get("time", "0")) for c in cases) > 0, "steps take modelled time"

    # Test-Cluster's report, as the run kept it, case for case.
    kept = (workdir / ".hvlab" / "sim" / "s2d-2node" / "test-cluster.htm").read_text()
    tests = validation_results(kept)
    assert len(tests) >= 10
    validation = found["Test-Cluster hvcluster"]
    vcases = validation.findall("testcase")
    assert validation.get("tests") == str(len(tests)) and validation.get("failures") == "0"
    assert [(c.get("classname"), c.get("name")) for c in vcases] == [
        (f"hvlab.test-cluster.s2d-2node.{category}", name) for category, name, _, _ in tests
    ]
    warned = [c for c in vcases if (c.findtext("system-out") or "").startswith("Warning")]
    assert len(warned) == sum(1 for t in tests if t[2] == "Warning")

    # A re-run validates nothing: its file has the steps alone.
    again = workdir / "again.xml"
    rerun = Lab.load(str(LAB)).up(junit=again)
    assert rerun.changed == 0
    assert list(suites(again)) == ["lab.up s2d-2node"]


def test_a_failed_build_writes_the_failure_and_exits_1(workdir: Path) -> None:
    report_file = workdir / "failed.xml"
    env = {
        **os.environ,
        "HVSIM_FAULTS": "boot_hang:vm=hvhost02",
        "HVLAB_MIN_WAIT": "2",
    }
    run = subprocess.run(
        [sys.executable, "-m", "hvlab", "lab.up", "--lab", str(LAB), "--junit", str(report_file)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    text = report_file.read_text()
    for password in PASSWORDS.values():
        assert password not in text
    steps = suites(report_file)["lab.up s2d-2node"]
    failed = [c for c in steps.findall("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["boot:hvhost02"]
    failure = failed[0].find("failure")
    assert failure is not None
    assert "gave up waiting for hvhost02" in (failure.text or "")
    assert steps.get("failures") == "1"
    skipped = [c.get("name") for c in steps.findall("testcase") if c.find("skipped") is not None]
    assert "cluster" in skipped, "the steps after the failure are there, not run"
    assert "Test-Cluster hvcluster" not in suites(report_file)
