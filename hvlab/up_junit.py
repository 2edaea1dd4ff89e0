"""lab.up --junit FILE: the run as a JUnit XML report (hvlab.junit).

One suite holds the steps, a test case each with its time on the host's clock and,
when it failed, a failure carrying the step's error. When the run validated the
cluster, Test-Cluster's results are a suite of their own: a case per test of the
validation report, named by its category, a failed test a failure with its
description. Passwords of the lab never reach the file (masked like diagnostics).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hvlab import junit
from hvlab.diagnostics import scrub
from hvlab.steps.cluster import validation_results

# What Test-Cluster writes in a result cell, and what a JUnit reader makes of it.
_FAILED = ("failed", "failure")
_SKIPPED = ("not applicable", "canceled", "cancelled", "skipped", "not run")


def up_suites(
    spec: Any, session: Any, results: list[Any], validation: str | None
) -> list[junit.Suite]:
    """The steps' suite, and Test-Cluster's when `validation` (its report) is given."""
    clock = "real" if session.modelled_seconds() is None else "modelled"
    hostname = session.description.split(" (")[0]
    steps = junit.Suite(
        f"lab.up {spec.name}",
        properties={"lab": spec.name, "clock": clock},
        hostname=hostname,
    )
    for r in results:
        case = junit.step_case(r, f"hvlab.up.{spec.name}.{r.phase}", clock)
        if r.status == "failed":
            case.failure = r.error or "failed"
        elif r.status in ("skipped", "blocked", "pending"):
            case.skipped = "an earlier step failed" if r.status != "pending" else "not reached"
        steps.cases.append(case)
    suites = [steps]
    if validation is not None:
        tests = junit.Suite(
            f"Test-Cluster {spec.cluster.name}",
            properties={"lab": spec.name, "cluster": spec.cluster.name},
            hostname=hostname,
        )
        for category, name, result, description in validation_results(validation):
            case = junit.Case(
                name=name,
                classname=f"hvlab.test-cluster.{spec.name}.{category}",
                seconds=0.0,  # the report gives no time per test
                output=f"{result}: {description}" if description else result,
            )
            if result.lower() in _FAILED:
                case.failure = description or f"{name}: {result}"
            elif result.lower() in _SKIPPED:
                case.skipped = result
            tests.cases.append(case)
        suites.append(tests)
    return suites


def write_up_junit(
    path: str | Path,
    spec: Any,
    session: Any,
    results: list[Any],
    validation: str | None,
    secrets: Any,
) -> Path:
    suites = up_suites(spec, session, results, validation)
    for suite in suites:
        for case in suite.cases:
            case.failure, case.output = scrub([case.failure, case.output], secrets)
            case.skipped = scrub(case.skipped, secrets)
    return junit.write(path, suites, name=f"hvlab lab.up {spec.name}")
