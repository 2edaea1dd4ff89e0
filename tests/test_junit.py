"""hvlab.junit writes reports the JUnit schema in tests/junit.xsd accepts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from hvlab import junit

XSD = Path(__file__).with_name("junit.xsd")


def test_every_outcome_validates_and_counts(tmp_path: Path) -> None:
    suite = junit.Suite("lab.drill network s2d-2node", properties={"clock": "modelled"})
    suite.cases = [
        junit.Case("healthy before", "hvlab.drill", 0.5, output="ok"),
        junit.Case("loss noticed", "hvlab.drill", 10.0, failure="expected x: y\nmore"),
        junit.Case("reconnect", "hvlab.drill", 0.0, error="Get-VM: broke \x01 here"),
        junit.Case("lab healthy", "hvlab.drill", 0.0, skipped="an earlier phase failed"),
    ]
    path = junit.write(tmp_path / "out" / "r.xml", [suite])
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    root = ET.parse(path).getroot()
    s = root.find("testsuite")
    assert (s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped")) == (
        "4",
        "1",
        "1",
        "1",
    )
    assert float(s.get("time")) == pytest.approx(10.5)
    cases = s.findall("testcase")
    assert cases[1].find("failure").get("message") == "expected x: y"
    assert "\x01" not in cases[2].find("error").text  # XML 1.0 has no such character
    assert cases[0].find("system-out").text == "ok"
    assert not list(tmp_path.glob("out/*.tmp"))


def test_the_schema_rejects_what_ci_servers_would_not_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text('<testsuites><testsuite name="x"><testcase name="a"/></testsuite></testsuites>')
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        xmlschema.XMLSchema(str(XSD)).validate(str(bad))
