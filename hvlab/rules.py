"""The rule reference: one entry of the packaged hvlab/rules.md by number.

    lookup("R-38") == lookup(38)   # the entry's text, heading included
    numbers()                      # every rule number that has an entry

Messages cite rules as `(R-38)`; rules.md says for each what Windows does, where
that is documented, and what hvlab and hvsim do about it. The file is read from
the installed package (importlib.resources), so this works wherever hvlab is
installed, without the source tree.
"""

from __future__ import annotations

import functools
import importlib.resources
import re

from hvlab.errors import EXIT_BAD_INPUT, HvlabError

RESOURCE = "rules.md"
HEADING = re.compile(r"^### R-(\d+)\b.*$", re.MULTILINE)
_REFERENCE = re.compile(r"(?:R-?)?(\d+)", re.IGNORECASE)


class UnknownRule(HvlabError, LookupError):
    """A rule number the reference has no entry for, or text that is not one."""

    exit_code = EXIT_BAD_INPUT


class MissingReference(HvlabError):
    """The packaged rules.md is absent or unreadable: a broken install."""

    exit_code = EXIT_BAD_INPUT


def label(number: int) -> str:
    """38 -> 'R-38', 5 -> 'R-05': the spelling messages use."""
    return f"R-{number:02d}"


def parse(text: str) -> dict[int, str]:
    """Entries of a rules.md text by number: each from its `### R-NN` heading up to
    the next heading (or the end), without trailing blank lines."""
    matches = list(HEADING.finditer(text))
    entries: dict[int, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        entries[int(match.group(1))] = text[match.start() : end].rstrip() + "\n"
    return entries


@functools.cache
def _entries() -> dict[int, str]:
    resource = importlib.resources.files("hvlab") / RESOURCE
    try:
        text = resource.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MissingReference(
            f"the rule reference hvlab/{RESOURCE} is missing or unreadable in this "
            f"installation ({type(err).__name__}); reinstall hvlab "
            "(pip install --force-reinstall hvlab)"
        ) from None
    return parse(text)


def numbers() -> frozenset[int]:
    """Every rule number that has an entry."""
    return frozenset(_entries())


def number_of(reference: int | str) -> int:
    """38, '38', 'R-38', 'r38' -> 38. Anything else raises UnknownRule."""
    if isinstance(reference, bool):
        raise UnknownRule(f"{reference!r} is not a rule number; rules look like R-38")
    if isinstance(reference, int):
        return reference
    match = _REFERENCE.fullmatch(reference.strip())
    if match is None:
        raise UnknownRule(f"{reference!r} is not a rule number; rules look like R-38")
    return int(match.group(1))


def lookup(reference: int | str) -> str:
    """The entry of one rule, as rules.md has it (heading and its four fields)."""
    number = number_of(reference)
    entries = _entries()
    if number not in entries:
        known = sorted(entries)
        span = f"{label(known[0])} to {label(known[-1])}" if known else "none"
        raise UnknownRule(f"no rule {label(number)} in the reference (it has {span})")
    return entries[number]
