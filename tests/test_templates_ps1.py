"""Every .ps1 under templates/ parses, and every Verb-Noun command in it names a
cmdlet of the catalog with parameters that cmdlet has, in a combination one of
its parameter sets accepts. Names resolve exactly as hvsim.bind resolves them
(case, unambiguous prefixes, aliases, common parameters), so a misspelt cmdlet or
parameter in a template fails here before it fails on a Windows host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from hvsim.bind import resolve_command, resolve_parameter, sets_accepting
from hvsim.catalog import Parameter
from hvsim.errors import PSError

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "templates").rglob("*.ps1"))
VERB_NOUN = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")

_PARSER = Parser(Language(tree_sitter_powershell.language()))


def _text(src: bytes, node: Node) -> str:
    return src[node.start_byte : node.end_byte].decode("utf-8")


def _walk(node: Node) -> list[Node]:
    out = [node]
    for child in node.children:
        out.extend(_walk(child))
    return out


def parse_errors(src: bytes) -> list[str]:
    """ERROR and MISSING nodes of the tree: where the parser gave up."""
    tree = _PARSER.parse(src)
    problems = []
    for node in _walk(tree.root_node):
        if node.type == "ERROR" or node.is_missing:
            row, col = node.start_point
            snippet = _text(src, node).splitlines()[0] if node.end_byte > node.start_byte else ""
            problems.append(f"line {row + 1}:{col + 1}: cannot parse {snippet!r}")
    return problems


# tree-sitter-powershell (0.26.4) does not parse an array of bare words in command
# mode (`Select-Object Name, Address`), which PowerShell reads as an array of
# strings. Quoting those words gives the same PowerShell, so a file whose only
# parse errors vanish once they are quoted is a grammar gap, not a script error.
_BARE_WORD_IN_LIST = re.compile(
    r"(?<=[\s,])([A-Za-z_][A-Za-z0-9_]*)(?=\s*,)|(?<=,)(\s*)([A-Za-z_][A-Za-z0-9_]*)(?=\s*(?:,|$|\||;|\)))",
    re.MULTILINE,
)


def _quote_bare_words(line: str) -> str:
    def quote(m: re.Match[str]) -> str:
        if m.group(1):
            return f"'{m.group(1)}'"
        return f"{m.group(2)}'{m.group(3)}'"

    return _BARE_WORD_IN_LIST.sub(quote, line)


def script_parse_errors(src: bytes) -> list[str]:
    """Parse errors that are the script's fault (grammar gaps above excused)."""
    problems = parse_errors(src)
    if not problems:
        return []
    tree = _PARSER.parse(src)
    bad_rows = {
        n.start_point[0] for n in _walk(tree.root_node) if n.type == "ERROR" or n.is_missing
    }
    lines = src.decode("utf-8").split("\n")
    for row in bad_rows:
        if not lines[row].lstrip().startswith("#"):
            lines[row] = _quote_bare_words(lines[row])
    if not parse_errors("\n".join(lines).encode("utf-8")):
        return []
    return problems


def _defined_functions(src: bytes, root: Node) -> set[str]:
    return {
        _text(src, child).lower()
        for node in _walk(root)
        if node.type == "function_statement"
        for child in node.children
        if child.type == "function_name"
    }


def check_commands(src: bytes) -> list[str]:
    """Problems with the Verb-Noun commands of a script, one line each."""
    tree = _PARSER.parse(src)
    own = _defined_functions(src, tree.root_node)
    problems = []
    for node in _walk(tree.root_node):
        if node.type != "command":
            continue
        kinds = [c.type for c in node.children]
        # `& $var`, `& { }`, `. .\x.ps1`: nothing the catalog can say about them.
        if "command_invokation_operator" in kinds or "command_name" not in kinds:
            continue
        name_node = next(c for c in node.children if c.type == "command_name")
        name = _text(src, name_node)
        if not VERB_NOUN.match(name) or name.lower() in own:
            continue
        where = f"line {name_node.start_point[0] + 1}: {name}"
        try:
            cmd = resolve_command(name)
        except PSError as err:
            problems.append(f"{where}: {err.message}")
            continue
        named: list[Parameter] = []
        for elements in (c for c in node.children if c.type == "command_elements"):
            for el in elements.children:
                if el.type != "command_parameter":
                    continue
                given = _text(src, el).lstrip("-").rstrip(":")
                try:
                    named.append(resolve_parameter(cmd, given))
                except PSError as err:
                    problems.append(f"{where}: {err.message}")
        if named and not sets_accepting(cmd, named):
            listed = " ".join(f"-{p.name}" for p in named)
            problems.append(f"{where}: no parameter set of {cmd.name} accepts {listed} together")
    return problems


def test_templates_exist() -> None:
    assert TEMPLATES, "templates/ holds no .ps1 files"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_template_parses(path: Path) -> None:
    assert script_parse_errors(path.read_bytes()) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_template_commands_match_catalog(path: Path) -> None:
    assert check_commands(path.read_bytes()) == []


def test_checker_reports_misspelt_cmdlet_and_parameter() -> None:
    bad = b"Get-VMM -Name x\nGet-VM -Nmae x\n"
    problems = check_commands(bad)
    assert len(problems) == 2
    assert problems[0].startswith("line 1: Get-VMM: The term 'Get-VMM' is not recognized")
    assert problems[1] == (
        "line 2: Get-VM: A parameter cannot be found that matches parameter name 'Nmae'."
    )


def test_checker_reports_ambiguous_prefix_and_impossible_combination() -> None:
    bad = (
        b"New-VHD -Path x.vhdx -ParentPath p.vhdx -Fixed\n"
        b"Get-VM -Name a | Stop-VM -e Stop\n"
        b"if ($true) { Get-ClusterNode -Nmae n1 }\n"
    )
    assert check_commands(bad) == [
        "line 1: New-VHD: no parameter set of New-VHD accepts -Path -ParentPath -Fixed together",
        "line 2: Stop-VM: Parameter cannot be processed because the parameter name 'e' is "
        "ambiguous. Possible matches include: -ErrorAction -ErrorVariable.",
        "line 3: Get-ClusterNode: A parameter cannot be found that matches parameter name 'Nmae'.",
    ]


def test_checker_accepts_prefixes_aliases_and_skips_what_it_cannot_know() -> None:
    good = (
        b"function Get-LabThing { param([string] $Name)\n    $Name\n}\n"
        b"Get-LabThing -Name x\n"
        b"icm -VMName n1 -Credential $c -ScriptBlock { hostname }\n"
        b"Get-VM -VMName n1 -ea SilentlyContinue | Stop-VM -TurnOff -Force -Confirm:$false\n"
        b"New-VM -Name n1 -MemoryStartup 4GB -Gen 2\n"
        b"& $Command @Parameters\n"
        b"Enable-ClusterS2D -CacheState Disabled\n"
    )
    assert check_commands(good) == []


def test_parse_errors_are_reported() -> None:
    assert script_parse_errors(b"Get-VM -Name (x\n") != []
    assert script_parse_errors(b"Get-VM -Name x\n") == []


def test_bare_word_arrays_are_a_grammar_gap_not_an_error() -> None:
    src = b"Get-ClusterNetwork | Select-Object Name, Address, @{ n = 'Role'; e = { 1 } }\n"
    assert parse_errors(src) != []  # the grammar's gap, still present
    assert script_parse_errors(src) == []
