"""Run cmdlets against a World through the real executor (binding included), for
the host-model tests. Not a test module itself."""

from __future__ import annotations

import dataclasses
from typing import Any

from hvsim.errors import PSError
from hvsim.executor import Command, run_pipeline
from hvsim.objects import Int64, UInt64


@dataclasses.dataclass
class Streams:
    errors: list[PSError] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    verbose_: list[str] = dataclasses.field(default_factory=list)

    def error(self, err: PSError) -> None:
        self.errors.append(err)

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def verbose(self, text: str) -> None:
        self.verbose_.append(text)

    def information(self, data: Any) -> None:
        pass

    def progress(self, activity: str, status: str, percent: int = -1) -> None:
        pass


def cmd(name: str, *positional: Any, **params: Any) -> Command:
    args: list[tuple[str | None, Any]] = [(None, v) for v in positional]
    args += [(k, v) for k, v in params.items()]
    return Command(name, args)


def run(
    world: Any, name: str, *positional: Any, machine: Any = None, **params: Any
) -> tuple[list[Any], Streams]:
    """One cmdlet; returns (output, streams). A terminating error raises PSError."""
    streams = Streams()
    out = run_pipeline(
        world,
        machine or world.host,
        "HV01\\Administrator",
        [cmd(name, *positional, **params)],
        streams,
    )
    return out, streams


def out(world: Any, name: str, *positional: Any, machine: Any = None, **params: Any) -> list[Any]:
    """Output of a cmdlet that must not write errors."""
    result, streams = run(world, name, *positional, machine=machine, **params)
    assert not streams.errors, [e.message for e in streams.errors]
    return result


def pipe(world: Any, *commands: Command, machine: Any = None) -> tuple[list[Any], Streams]:
    streams = Streams()
    result = run_pipeline(
        world, machine or world.host, "HV01\\Administrator", list(commands), streams
    )
    return result, streams


GiB = 1024**3


def i64(n: int) -> Int64:
    return Int64(n)


def u64(n: int) -> UInt64:
    return UInt64(n)
