"""The cmdlet catalog: signatures of Windows PowerShell cmdlets, shipped inside the
package as hvsim/data/powershell-cmdlets.json (its README.md there says where the
data comes from and how it is laid out; NOTICE carries its CC BY 4.0 attribution).

The file is parsed once per process, lazily, and each cmdlet's lookup tables are
built the first time that cmdlet is asked for: a server that binds a few dozen
cmdlets should not pay for 4,000. `HVSIM_CATALOG` overrides the location.

What this module answers: is a name a cmdlet (case-insensitive, through cmdlet
aliases), which parameter sets it has, and for each parameter its type, aliases,
per-set [mandatory, position], pipeline input and accepted values. The common
parameters (about_CommonParameters, Windows PowerShell 5.1) are folded into
every cmdlet, valid in every set. Binding itself lives in hvsim.bind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from functools import cached_property
from importlib import resources
from json.decoder import scanstring
from pathlib import Path
from typing import Any

ENV_VAR = "HVSIM_CATALOG"
ALL_SETS = "__AllParameterSets"


class CatalogError(Exception):
    """The catalog file is missing or unreadable."""


CATALOG_FILE = "powershell-cmdlets.json"


def packaged_path() -> Path:
    """The catalog that ships inside the package (importlib.resources, never a path
    relative to a source tree): the same file in a checkout, an editable install and
    an installed wheel."""
    resource = resources.files("hvsim") / "data" / CATALOG_FILE
    # A package installed from a wheel or a checkout lives on the file system; only a
    # zipped install would not, and the catalog is opened and stat()ed by path.
    return Path(str(resource))


def default_path() -> Path:
    """The packaged catalog, or $HVSIM_CATALOG when set."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    return packaged_path()


@dataclasses.dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter of one cmdlet, with "*" already expanded to the cmdlet's sets."""

    name: str
    type: str
    aliases: tuple[str, ...]
    # set name -> (mandatory, position or None for Named)
    sets: dict[str, tuple[bool, int | None]]
    pipe: str | None = None
    values: tuple[str, ...] | None = None
    # A provider-specific dynamic parameter: its mandatory flag only holds on that
    # provider (README "Layout"), so binding never demands it.
    provider: str | None = None
    common: bool = False

    def is_type(self, suffix: str) -> bool:
        """Catalog types are short ('String[]') or full ('System.String[]'): compare by suffix."""
        t = self.type
        return t == suffix or t.endswith("." + suffix)

    @property
    def is_switch(self) -> bool:
        return self.is_type("SwitchParameter")

    def mandatory_in(self, set_name: str) -> bool:
        entry = self.sets.get(set_name)
        return bool(entry and entry[0]) and self.provider is None

    def position_in(self, set_name: str) -> int | None:
        entry = self.sets.get(set_name)
        return entry[1] if entry else None


# Windows PowerShell 5.1's CommonParameters class, in declaration order.
COMMON_ORDER = (
    "Verbose",
    "Debug",
    "ErrorAction",
    "WarningAction",
    "InformationAction",
    "ErrorVariable",
    "WarningVariable",
    "InformationVariable",
    "OutVariable",
    "OutBuffer",
    "PipelineVariable",
)
_SHOULD_PROCESS = ("WhatIf", "Confirm")


def _binder_order(p: Parameter) -> tuple[int, int]:
    if p.name in _SHOULD_PROCESS:
        return (2, _SHOULD_PROCESS.index(p.name))
    if p.common:
        return (1, COMMON_ORDER.index(p.name) if p.name in COMMON_ORDER else len(COMMON_ORDER))
    return (0, 0)  # sorted() is stable: catalog order within the cmdlet's own


@dataclasses.dataclass(eq=False)
class Cmdlet:
    """A cmdlet's signature and its name-resolution tables."""

    name: str
    module: str
    docset: str
    sets: tuple[str, ...]
    default_set: str | None
    aliases: tuple[str, ...]
    params: dict[str, Parameter]  # catalog spelling -> Parameter; common parameters included
    doc_issues: tuple[str, ...] = ()
    # Names as given on calls -> parameter, filled by hvsim.bind (prefix search is
    # the slow part of binding and calls repeat the same names).
    resolved: dict[str, Parameter] = dataclasses.field(default_factory=dict, repr=False)

    @cached_property
    def by_exact(self) -> dict[str, Parameter]:
        """Lower-cased parameter names and aliases -> parameter."""
        table: dict[str, Parameter] = {}
        for p in self.params.values():
            table.setdefault(p.name.lower(), p)
        for p in self.params.values():
            for a in p.aliases:
                table.setdefault(a.lower(), p)
        return table

    @cached_property
    def name_keys(self) -> list[tuple[str, Parameter]]:
        """(lower-cased name or alias, parameter) for prefix search, names before
        aliases, parameters in the order PowerShell meets them when it lists the
        candidates of an ambiguous name: the cmdlet's own (declaration order; the
        catalog only knows them alphabetically), then the common parameters, then
        WhatIf and Confirm."""
        ordered = sorted(self.params.values(), key=_binder_order)
        keys = [(p.name.lower(), p) for p in ordered]
        keys += [(a.lower(), p) for p in ordered for a in p.aliases]
        return keys

    @cached_property
    def mandatory(self) -> dict[str, tuple[Parameter, ...]]:
        """Set name -> its mandatory parameters, catalog order."""
        return {s: tuple(p for p in self.params.values() if p.mandatory_in(s)) for s in self.sets}

    @cached_property
    def mandatory_somewhere(self) -> frozenset[str]:
        """Names of the parameters that are mandatory in at least one set."""
        return frozenset(p.name for ps in self.mandatory.values() for p in ps)

    @property
    def verb(self) -> str:
        return self.name.split("-", 1)[0]

    @property
    def noun(self) -> str:
        return self.name.split("-", 1)[1] if "-" in self.name else ""


class Catalog:
    """The parsed catalog file."""

    def __init__(self, data: dict[str, Any], path: Path | None = None) -> None:
        self.path = path
        self.meta: dict[str, Any] = data.get("_meta", {})
        # Values are parsed entries, or (fast path, see _parse) the JSON text of one.
        self._raw: dict[str, Any] = data["cmdlets"]
        # Windows Server runs Windows PowerShell 5.1: ProgressAction (7.4+) does not exist there.
        self.common_parameters: dict[str, dict[str, Any]] = {
            name: spec
            for name, spec in data["common_parameters"].items()
            if spec.get("windows_powershell_5_1", True)
        }
        self.risk_mitigation_parameters: dict[str, dict[str, Any]] = data[
            "risk_mitigation_parameters"
        ]
        self._names: dict[str, str] = {n.lower(): n for n in self._raw}
        self._aliases: dict[str, str] = {}
        for alias, spec in data.get("cmdlet_aliases", {}).items():
            self._aliases[alias.lower()] = spec["target"]
        # The per-cmdlet `aliases` of the 5.1 pages are also in cmdlet_aliases
        # (README "Layout"; tests/test_bind.py checks it), so entries still in
        # text form need not be parsed for them.
        for name, entry in self._raw.items():
            if isinstance(entry, dict):
                for alias in entry.get("aliases", ()):
                    self._aliases.setdefault(alias.lower(), name)
        self._built: dict[str, Cmdlet] = {}
        self._lock = threading.Lock()
        self._common_params: tuple[Parameter, ...] | None = None

    def __len__(self) -> int:
        return len(self._raw)

    def names(self) -> list[str]:
        """Every cmdlet name, catalog spelling."""
        return list(self._raw)

    def resolve_name(self, name: str) -> str | None:
        """The catalog spelling of a cmdlet name or alias, or None."""
        key = name.lower()
        found = self._names.get(key)
        if found is not None:
            return found
        target = self._aliases.get(key)
        if target is not None:
            return self._names.get(target.lower())
        return None

    def get(self, name: str) -> Cmdlet | None:
        """The cmdlet for a name or alias (case-insensitive), or None."""
        canonical = self.resolve_name(name)
        if canonical is None:
            return None
        built = self._built.get(canonical)
        if built is None:
            with self._lock:
                built = self._built.get(canonical)
                if built is None:
                    built = self._build(canonical)
                    self._built[canonical] = built
        return built

    def __contains__(self, name: str) -> bool:
        return self.resolve_name(name) is not None

    def _common(self) -> tuple[Parameter, ...]:
        if self._common_params is None:
            self._common_params = tuple(
                Parameter(
                    name=name,
                    type=spec["type"],
                    aliases=(spec["alias"],) if spec.get("alias") else (),
                    sets={},  # valid in every set; see Cmdlet construction
                    common=True,
                )
                for name, spec in self.common_parameters.items()
            )
        return self._common_params

    def _build(self, name: str) -> Cmdlet:
        entry = self._raw[name]
        if isinstance(entry, str):
            entry = json.loads(entry)
        sets = tuple(entry["sets"])
        params: dict[str, Parameter] = {}
        for pname, spec in entry["params"].items():
            expanded: dict[str, tuple[bool, int | None]] = {}
            for set_name, (required, position) in spec["sets"].items():
                if set_name == "*":
                    for s in sets:
                        expanded.setdefault(s, (bool(required), position))
                else:
                    expanded[set_name] = (bool(required), position)
            # Where the page contradicts itself about a set (the SYNTAX block omits
            # the parameter, or draws it optional), binding does not demand it
            # there: Get-VMNetworkAdapter's PARAMETERS mark -All mandatory "(All)",
            # which would make every call without -All fail.
            doubtful = set(spec.get("params_only_sets", ()))
            doubtful |= {s for s, req in spec.get("syntax_req", {}).items() if not req}
            for set_name in doubtful & expanded.keys():
                expanded[set_name] = (False, expanded[set_name][1])
            values = spec.get("values")
            params[pname] = Parameter(
                name=pname,
                type=spec["type"],
                aliases=tuple(spec.get("aliases", ())),
                sets=expanded,
                pipe=spec.get("pipe"),
                values=tuple(values) if values else None,
                provider=spec.get("provider"),
            )
        every = {s: (False, None) for s in sets}
        for common in self._common():
            if common.name not in params:
                params[common.name] = dataclasses.replace(common, sets=dict(every))
        return Cmdlet(
            name=name,
            module=entry.get("module", ""),
            docset=entry.get("docset", ""),
            sets=sets,
            default_set=entry.get("default_set"),
            aliases=tuple(entry.get("aliases", ())),
            params=params,
            doc_issues=tuple(entry.get("doc_issues", ())),
        )


_catalog: Catalog | None = None
_catalog_key: tuple[str, int, int] | None = None
_checked: tuple[str | None, float] = (None, 0.0)  # (HVSIM_CATALOG, monotonic time)
_load_lock = threading.Lock()
_RECHECK_SECONDS = 1.0


def _parse(raw: bytes) -> dict[str, Any]:
    """The catalog's top level, with each cmdlet entry left as its JSON text.

    The file puts every top-level key, and every cmdlet inside "cmdlets", on a line
    of its own (README "Layout"). Decoding all 4,000 entries costs ~100 ms, most of
    a server's start, while a run binds a few dozen cmdlets; so entries are cut out
    by line here and decoded on first use. A file laid out any other way is
    decoded whole.
    """
    text = raw.decode("utf-8")
    lines = text.split("\n")
    try:
        if lines[0].strip() != "{":
            raise ValueError("layout")
        top: dict[str, Any] = {}
        cmdlets: dict[str, Any] = {}
        in_cmdlets = False
        for number, line in enumerate(lines[1:], start=2):
            line = line.rstrip("\r")
            if in_cmdlets:
                if line.startswith("}"):
                    in_cmdlets = False
                    if line.strip() == "}}":
                        break
                    continue
                name, end = scanstring(line, 1)
                if not line.startswith('"') or line[end] != ":":
                    raise ValueError(f"layout at line {number}")
                body = line[end + 1 :].rstrip().rstrip(",")
                if not (body.startswith("{") and body.endswith("}")):
                    raise ValueError(f"layout at line {number}")
                cmdlets[name] = body
            elif line.strip() == '"cmdlets":{':
                in_cmdlets = True
            elif line.strip() == "}":
                break
            elif line.strip():
                top.update(json.loads("{" + line.rstrip().rstrip(",") + "}"))
        top["cmdlets"] = cmdlets
        if not cmdlets or "common_parameters" not in top:
            raise ValueError("layout")
        return top
    except (ValueError, IndexError):
        return json.loads(text)


def _remedy() -> str:
    if os.environ.get(ENV_VAR):
        return f"Check the file {ENV_VAR} names, or unset {ENV_VAR} to use the packaged one."
    return "The installation is broken: reinstall it (pip install --force-reinstall hvlab)."


def load(path: Path | None = None) -> Catalog:
    """Parse a catalog file (no caching)."""
    target = path or default_path()
    try:
        with open(target, "rb") as fh:
            data = _parse(fh.read())
    except FileNotFoundError:
        raise CatalogError(
            f"cmdlet catalog not found at {target}: hvsim binds every call against it. {_remedy()}"
        ) from None
    except (OSError, ValueError) as err:
        raise CatalogError(f"cmdlet catalog {target} cannot be read ({err}). {_remedy()}") from None
    return Catalog(data, Path(target))


def catalog() -> Catalog:
    """The process-wide catalog, parsed on first use. Re-read when the file (path,
    size or mtime) changes, so a test that points HVSIM_CATALOG elsewhere gets it."""
    global _catalog, _catalog_key, _checked
    # bind() asks for the catalog on every call: look at the disk at most once a
    # second unless HVSIM_CATALOG changes.
    env = os.environ.get(ENV_VAR)
    now = time.monotonic()
    cached = _catalog
    if cached is not None and _checked[0] == env and now - _checked[1] < _RECHECK_SECONDS:
        return cached
    target = default_path()
    try:
        st = target.stat()
        key = (str(target), st.st_size, st.st_mtime_ns)
    except OSError:
        key = (str(target), -1, -1)
    if cached is not None and _catalog_key == key:
        _checked = (env, now)
        return cached
    with _load_lock:
        if _catalog is None or _catalog_key != key:
            _catalog = load(target)
            _catalog_key = key
        _checked = (env, now)
        return _catalog
