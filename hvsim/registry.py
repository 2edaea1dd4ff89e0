"""The one place cmdlet implementations plug in.

A handler is a plain function `handler(ctx, call)` that returns an iterable of
output objects (or None). It is registered under the catalog's spelling of the
cmdlet name:

    @cmdlet("Get-VM")
    def get_vm(ctx: Context, call: Call) -> Iterable[PSObj]:
        ...

Binding (hvsim.bind) has already run: `call.params` holds canonical parameter
names (catalog spelling) with values converted to the parameter's type. Switches
are True/False. Terminating errors are raised as PSError; non-terminating ones go
to ctx.error(). The executor holds the world lock while a handler runs;
ctx.work() releases it while modelled time passes.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hvsim.errors import PSError


@dataclasses.dataclass
class Call:
    """A cmdlet call after binding."""

    name: str
    parameter_set: str
    params: dict[str, Any]

    def __contains__(self, key: str) -> bool:
        return key in self.params

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    def switch(self, key: str) -> bool:
        return bool(self.params.get(key, False))


class Streams(Protocol):
    """Where a running command writes besides its output."""

    def error(self, err: PSError) -> None: ...
    def warning(self, text: str) -> None: ...
    def verbose(self, text: str) -> None: ...
    def information(self, data: Any) -> None: ...
    def progress(self, activity: str, status: str, percent: int = -1) -> None: ...


class Context(Protocol):
    """What a handler sees: the world, the machine it runs on, who runs it, its input."""

    world: Any  # hvsim.model.world.World
    machine: Any  # hvsim.model.machine.Machine: the host, or a guest OS via PowerShell Direct
    user: str  # the authenticated account, as given (HOST\\user, DOMAIN\\user, .\\user)
    input: list[Any]  # objects piped in from the previous command of the pipeline

    def error(self, err: PSError) -> None: ...
    def warning(self, text: str) -> None: ...
    def verbose(self, text: str) -> None: ...
    def information(self, data: Any) -> None: ...
    def progress(self, activity: str, status: str, percent: int = -1) -> None: ...
    def work(self, seconds: float, what: str) -> None:
        """Let `seconds` of modelled time pass for `what` (timescaled real sleep, lock released)."""


Handler = Callable[[Context, Call], Iterable[Any] | None]


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    handler: Handler
    # Parameters the model honours. A bound parameter outside this set (and outside
    # the common parameters the executor handles) fails as "not modelled" rather
    # than being ignored silently. None = the handler reads everything it is given.
    params: frozenset[str] | None


_HANDLERS: dict[str, Entry] = {}


def cmdlet(*names: str, params: Iterable[str] | None = None) -> Callable[[Handler], Handler]:
    """Register a handler under one or more cmdlet names (catalog spelling)."""

    def register(fn: Handler) -> Handler:
        for name in names:
            key = name.lower()
            if key in _HANDLERS and _HANDLERS[key].handler is not fn:
                raise ValueError(f"cmdlet {name} is registered twice")
            _HANDLERS[key] = Entry(name, fn, frozenset(params) if params is not None else None)
        return fn

    return register


def lookup(name: str) -> Entry | None:
    """The entry for a canonical cmdlet name, or None when the model lacks it."""
    _load()
    return _HANDLERS.get(name.lower())


def implemented() -> list[Entry]:
    """Every cmdlet the model implements."""
    _load()
    return sorted(_HANDLERS.values(), key=lambda e: e.name)


_loaded = False
_load_lock = threading.Lock()


def _load() -> None:
    # Importing hvsim.cmdlets registers every family module it lists. Several
    # pipelines may arrive at once: the first one imports, the others wait for it.
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if not _loaded:
            import hvsim.cmdlets  # noqa: F401

            _loaded = True
