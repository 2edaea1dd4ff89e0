"""hvlab.facts: a reading of the host or a guest stands only while the run changes
nothing (the engine's generation); guest facts parse by name and answer narrower
questions from a wider reading."""

from __future__ import annotations

from typing import Any

import pytest
from test_engine import run

from hvlab.engine import Step
from hvlab.facts import FactStore, GuestFacts, HostFacts
from hvlab.remote import Record


def fact(name: str) -> Record:
    return Record({"Fact": name}, ["Deserialized.hvlab.GuestFact"])


def obj(**props: Any) -> Record:
    return Record(props, ["Deserialized.Some.Type"])


def test_a_reading_ages_with_every_change_and_never_in_plan() -> None:
    seen: dict[str, list[int]] = {"apply": [], "plan": []}

    def step(mode: str) -> Any:
        def fn(ctx: Any) -> None:
            seen[mode].append(ctx.run.generation)
            ctx.change("one", lambda: seen[mode].append(ctx.run.generation))
            seen[mode].append(ctx.run.generation)

        return fn

    run([Step("a", "lab", "x", step("apply"))])
    # Before the change, while it is made (a reading then may miss it), after it.
    assert seen["apply"] == [0, 1, 2]
    run([Step("a", "lab", "x", step("plan"))], planning=True)
    assert seen["plan"] == [0]  # the plan stops at the change and never makes it


def test_the_store_answers_only_for_the_generation_it_was_read_at() -> None:
    store = FactStore()
    facts = HostFacts(vms={}, switches=[], addresses={}, nats=[], marker=["lab"])
    assert store.current(0) is None
    store.keep(3, facts)
    assert store.current(3) is facts
    assert store.current(4) is None
    older = HostFacts(vms={}, switches=[], addresses={}, nats=[], marker=[])
    store.keep(2, older)  # a slower, older reading does not replace a newer one
    assert store.current(3) is facts


def test_guest_facts_by_name() -> None:
    out = [fact("ComputerSystem"), obj(Name="dc01"), fact("Path"), True, False, fact("Feature")]
    facts = GuestFacts.parse(out, ["ComputerSystem", "Path", "Feature"])
    assert facts.one("ComputerSystem")["Name"] == "dc01"
    assert facts["Path"] == [True, False] and facts["Feature"] == []
    assert facts.one("Feature") is None
    with pytest.raises(ValueError, match="before naming a fact"):
        GuestFacts.parse([obj(Name="x"), fact("Path")], [])
    with pytest.raises(ValueError, match="did not answer Feature"):
        GuestFacts.parse([fact("Path"), True], ["Path", "Feature"])


def test_a_wider_reading_answers_a_narrower_question() -> None:
    asked = {
        "OperatingSystem": True,
        "Path": ["C:\\a", "C:\\b", "C:\\c"],
        "Feature": ["Hyper-V", "AD-Domain-Services"],
        "DnsClient": ["Storage1", "Management"],
        "RegistryPath": "HKLM:\\X",
    }
    out = [
        fact("OperatingSystem"),
        obj(LastBootUpTime="t"),
        fact("Path"),
        True,
        False,
        True,
        fact("Feature"),
        obj(Name="Hyper-V"),
        obj(Name="AD-Domain-Services"),
        fact("DnsClient"),
        obj(InterfaceAlias="Storage1"),
        obj(InterfaceAlias="Management"),
        fact("Registry"),
    ]
    wide = GuestFacts.parse(out, ["OperatingSystem", "Path", "Feature", "DnsClient"], asked)
    narrow = {
        "Path": ["C:\\c", "C:\\b"],
        "Feature": ["ad-domain-services"],
        "OperatingSystem": True,
    }
    assert wide.covers(narrow)
    answer = wide.narrow(narrow)
    assert answer["Path"] == [True, False]  # in the order asked
    assert [f["Name"] for f in answer["Feature"]] == ["AD-Domain-Services"]
    assert [c["InterfaceAlias"] for c in wide.narrow({"DnsClient": ["Storage1"]})["DnsClient"]] == [
        "Storage1"
    ]
    assert not wide.covers({"Path": ["C:\\d"]})
    assert not wide.covers({"ComputerSystem": True})
    assert not wide.covers({"RegistryPath": "HKLM:\\Y"})


def test_the_store_keeps_guest_readings_per_script_and_vm() -> None:
    store = FactStore()
    reading = GuestFacts.parse(
        [fact("ComputerSystem"), obj(Name="n1")], ["ComputerSystem"], {"ComputerSystem": True}
    )
    store.keep_guest("Get-GuestFacts.ps1 @n1", 5, reading)
    assert store.guest("Get-GuestFacts.ps1 @n1", 5, {"ComputerSystem": True}) is not None
    assert store.guest("Get-GuestFacts.ps1 @n1", 6, {"ComputerSystem": True}) is None
    assert store.guest("Get-GuestFacts.ps1 @n2", 5, {"ComputerSystem": True}) is None
    assert store.guest("Get-GuestFacts.ps1 @n1", 5, {"OperatingSystem": True}) is None
