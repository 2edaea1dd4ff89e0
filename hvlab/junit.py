"""JUnit XML reports: test suites of test cases with their times, failures with the
error, system-out with what was seen. CI servers read this format; lab.drill writes
one test case per phase, and lab.up can write one per step.

The layout follows the common JUnit XML report (testsuites > testsuite > testcase >
failure / error / skipped / system-out); tests/junit.xsd describes what hvlab writes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# XML 1.0 allows only these control characters; anything else is replaced.
_ALLOWED = {0x9, 0xA, 0xD}


def _clean(value: str) -> str:
    return "".join(ch if ord(ch) >= 0x20 or ord(ch) in _ALLOWED else "?" for ch in value)


@dataclasses.dataclass
class Case:
    name: str
    classname: str
    seconds: float
    failure: str | None = None  # the assertion that did not hold
    error: str | None = None  # something broke before the check
    skipped: str | None = None
    output: str = ""


def step_case(result: Any, classname: str, clock: str) -> Case:
    """An engine step's result as a case: its changes and reasons as output, with its
    wall and host times; the caller judges failure, error and skip."""
    lines = [*result.changes, *result.reasons]
    lines.append(f"wall {result.wall_s:.3f} s, host {result.host_s:.3f} s ({clock} clock)")
    return Case(
        name=result.name, classname=classname, seconds=result.host_s, output="\n".join(lines)
    )


@dataclasses.dataclass
class Suite:
    name: str
    cases: list[Case] = dataclasses.field(default_factory=list)
    timestamp: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.UTC))
    hostname: str = "localhost"
    properties: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.cases)


def to_xml(suites: list[Suite], name: str = "hvlab") -> bytes:
    root = ET.Element(
        "testsuites",
        {
            "name": _clean(name),
            "tests": str(sum(len(s.cases) for s in suites)),
            "failures": str(sum(1 for s in suites for c in s.cases if c.failure is not None)),
            "errors": str(sum(1 for s in suites for c in s.cases if c.error is not None)),
            "time": f"{sum(s.seconds for s in suites):.3f}",
        },
    )
    for index, suite in enumerate(suites):
        el = ET.SubElement(
            root,
            "testsuite",
            {
                "name": _clean(suite.name),
                "id": str(index),
                "tests": str(len(suite.cases)),
                "failures": str(sum(1 for c in suite.cases if c.failure is not None)),
                "errors": str(sum(1 for c in suite.cases if c.error is not None)),
                "skipped": str(sum(1 for c in suite.cases if c.skipped is not None)),
                "time": f"{suite.seconds:.3f}",
                "timestamp": suite.timestamp.strftime("%Y-%m-%dT%H:%M:%S"),
                "hostname": _clean(suite.hostname),
            },
        )
        if suite.properties:
            props = ET.SubElement(el, "properties")
            for key, value in suite.properties.items():
                ET.SubElement(props, "property", {"name": _clean(key), "value": _clean(value)})
        for case in suite.cases:
            c = ET.SubElement(
                el,
                "testcase",
                {
                    "name": _clean(case.name),
                    "classname": _clean(case.classname),
                    "time": f"{max(0.0, case.seconds):.3f}",
                },
            )
            if case.skipped is not None:
                ET.SubElement(c, "skipped", {"message": _clean(case.skipped)})
            elif case.error is not None:
                e = ET.SubElement(c, "error", {"message": _clean(case.error.splitlines()[0][:500])})
                e.text = _clean(case.error)
            elif case.failure is not None:
                f = ET.SubElement(
                    c, "failure", {"message": _clean(case.failure.splitlines()[0][:500])}
                )
                f.text = _clean(case.failure)
            if case.output:
                out = ET.SubElement(c, "system-out")
                out.text = _clean(case.output)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write(path: Path | str, suites: list[Suite], name: str = "hvlab") -> Path:
    """Write the report atomically (a temporary file renamed into place)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(to_xml(suites, name))
    tmp.replace(target)
    return target
