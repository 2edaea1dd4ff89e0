"""Every rule number the code or a message cites has an entry in hvlab/rules.md.

The collector reads the shipped code and docs (hvlab/, hvsim/, templates/,
unattend/, labs/, tasks.py, README.md, docs/*.md) for `R-NN` and ranges such as
`R-54..R-56`; each number must have an entry with its four fields, so a user who
reads `(R-38)` in a message can run `hvlab rule R-38`. Planted files prove the
checks catch a citation without an entry and an entry without a field.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from project import ROOT

from hvlab import rules

SCANNED = ("hvlab", "hvsim", "templates", "unattend", "labs", "tasks.py", "README.md", "docs")
TEXT_SUFFIXES = {".py", ".ps1", ".j2", ".yaml", ".yml", ".md", ".json", ".txt", ".toml", ".cfg"}
CITATION = re.compile(r"\bR-(\d{2,})\b(?:\.\.R-(\d{2,})\b)?")
FIELDS = ("Windows", "Source", "hvlab", "hvsim")
FIRST, LAST = 1, 94  # the rulebook's R-01..R-94; later numbers are appended after these


def text_files(root: Path, names: Iterable[str]) -> list[Path]:
    """The text files under `names` (docs: its top-level *.md only), without the
    reference itself: its headings would count as citations of themselves."""
    files = []
    for name in names:
        path = root / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            pattern = "*.md" if name == "docs" else "*"
            candidates = path.glob(pattern) if name == "docs" else path.rglob(pattern)
            files += [
                p
                for p in candidates
                if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts
            ]
    reference = root / "hvlab" / rules.RESOURCE
    return sorted(f for f in files if f != reference)


def cited(root: Path, names: Iterable[str] = SCANNED) -> dict[int, list[str]]:
    """Rule numbers cited under `root`, each with the places (file:line) that cite it.
    A range `R-54..R-56` cites every number in it."""
    found: dict[int, list[str]] = {}
    for path in text_files(root, names):
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for match in CITATION.finditer(line):
                low = int(match.group(1))
                high = int(match.group(2) or low)
                for n in range(low, max(low, high) + 1):
                    found.setdefault(n, []).append(f"{path.relative_to(root)}:{number}")
    return found


def missing(citations: dict[int, list[str]], known: Iterable[int]) -> list[str]:
    """One line per cited number without an entry, with where it is cited."""
    have = set(known)
    return [
        f"{rules.label(n)} (cited at {', '.join(places[:3])}{' ...' if len(places) > 3 else ''})"
        for n, places in sorted(citations.items())
        if n not in have
    ]


def entry_problems(text: str) -> list[str]:
    """What is wrong with the entries of a rules.md text: order, duplicates, fields."""
    problems = []
    headings = [int(m.group(1)) for m in rules.HEADING.finditer(text)]
    if headings != sorted(set(headings)):
        problems.append(f"headings are not unique and in rule order: {headings}")
    for number, entry in rules.parse(text).items():
        labels = re.findall(r"^- \*\*([^*:]+):\*\* \S", entry, re.MULTILINE)
        if labels != list(FIELDS):
            problems.append(f"{rules.label(number)} has fields {labels}, wants {list(FIELDS)}")
        title = entry.splitlines()[0][len(f"### {rules.label(number)}") :].strip()
        if not title:
            problems.append(f"{rules.label(number)} has no title")
    return problems


def dangling(text: str) -> list[str]:
    """Rules an entry's fields cite that have no entry in the same text."""
    entries = rules.parse(text)
    found = []
    for number, entry in entries.items():
        body = entry.split("\n", 1)[1] if "\n" in entry else ""
        for match in CITATION.finditer(body):
            low = int(match.group(1))
            for n in range(low, max(low, int(match.group(2) or low)) + 1):
                if n not in entries:
                    found.append(f"{rules.label(number)} cites {rules.label(n)}")
    return found


def reference_text() -> str:
    return (importlib.resources.files("hvlab") / rules.RESOURCE).read_text(encoding="utf-8")


# -- the shipped tree -------------------------------------------------------------------


def test_every_cited_rule_has_an_entry() -> None:
    citations = cited(ROOT)
    assert len(citations) > 50, "the collector found almost nothing: is it reading the tree?"
    assert missing(citations, rules.numbers()) == []


def test_every_entry_has_its_four_fields_in_order() -> None:
    assert entry_problems(reference_text()) == []


def test_cross_references_between_entries_resolve() -> None:
    """An entry that points to another rule ("see R-37") points to one that exists."""
    assert dangling(reference_text()) == []


def test_the_rulebook_numbers_are_all_there() -> None:
    assert set(range(FIRST, LAST + 1)) <= rules.numbers()


def test_lookup_of_a_known_rule() -> None:
    entry = rules.lookup("R-38")
    assert entry.startswith("### R-38 ")
    assert entry == rules.lookup(38) == rules.lookup("r38") == rules.lookup(" 38 ")
    for field in FIELDS:
        assert f"- **{field}:** " in entry
    assert "### R-39" not in entry and "### R-37" not in entry
    assert rules.lookup(5).startswith("### R-05 ")


@pytest.mark.parametrize("reference", [9999, "R-9999", "R-00"])
def test_lookup_of_an_unknown_rule(reference: int | str) -> None:
    with pytest.raises(rules.UnknownRule, match=r"no rule R-\d+ in the reference \(it has R-01 to"):
        rules.lookup(reference)


@pytest.mark.parametrize("reference", ["R-x", "rule 38", "", True])
def test_lookup_of_something_that_is_no_rule(reference: object) -> None:
    with pytest.raises(rules.UnknownRule, match="is not a rule number"):
        rules.lookup(reference)  # type: ignore[arg-type]


def test_unknown_rule_is_bad_input() -> None:
    assert rules.UnknownRule("x").exit_code == 2


# -- the checks can fail ----------------------------------------------------------------


def test_collector_finds_planted_citations(tmp_path: Path) -> None:
    (tmp_path / "hvlab").mkdir()
    (tmp_path / "hvlab" / "step.py").write_text('raise StepError("x", "too big (R-999)")\n')
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "Do.ps1").write_text("# see R-996..R-998 and R-38\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("R-995 only in docs\n")
    (tmp_path / "hvlab" / "image.bin").write_bytes(b"R-994")  # not a text file
    found = cited(tmp_path)
    assert sorted(found) == [38, 995, 996, 997, 998, 999]
    assert found[999] == ["hvlab/step.py:1"]
    assert found[997] == ["templates/Do.ps1:1"]
    problems = missing(found, rules.numbers())
    assert [p.split()[0] for p in problems] == ["R-995", "R-996", "R-997", "R-998", "R-999"]
    assert "hvlab/step.py:1" in problems[-1]


def test_collector_ignores_lookalikes(tmp_path: Path) -> None:
    (tmp_path / "hvsim").mkdir()
    (tmp_path / "hvsim" / "x.py").write_text("CLR-20 RR-21 R-1 R-12a xR-13\n")
    assert cited(tmp_path) == {}


def test_entry_checker_catches_a_broken_entry() -> None:
    good = rules.lookup(1)
    no_hvsim = "\n".join(
        line for line in rules.lookup(2).splitlines() if not line.startswith("- **hvsim:**")
    )
    text = f"# Rules\n\n{good}\n{no_hvsim}\n\n{good}\n### R-07\n"
    problems = entry_problems(text)
    assert any("not unique" in p for p in problems)
    assert any(p.startswith("R-02 has fields") for p in problems)
    assert any(p == "R-07 has no title" for p in problems)
    assert any(p.startswith("R-07 has fields []") for p in problems)


def test_dangling_cross_reference_is_caught() -> None:
    text = "### R-01 One\n- **Windows:** see R-02 and R-03..R-04\n### R-03 Three\n- x\n"
    assert dangling(text) == ["R-01 cites R-02", "R-01 cites R-04"]


def test_parse_splits_entries_at_headings() -> None:
    text = "# head\n\n### R-01 One\n- a\n\n### R-02 Two\n- b\n"
    assert rules.parse(text) == {1: "### R-01 One\n- a\n", 2: "### R-02 Two\n- b\n"}
