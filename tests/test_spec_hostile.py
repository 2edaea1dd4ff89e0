"""Hostile and broken lab files: each gives a clear SpecError (exit 2), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hvlab.errors import SpecError
from hvlab.spec import load_lab, parse_lab

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LAB = ROOT / "labs" / "s2d-2node.yaml"


def base_text() -> str:
    return DEFAULT_LAB.read_text(encoding="utf-8")


def spec_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_lab(text, display="bad.yaml")
    return info.value


HOSTILE_NAMES = [
    "x'; Remove-VM *",
    "$(Stop-Computer)",
    "dc\u201801",  # a unicode left single quote
    "dc01\x1b[2J",  # an escape sequence that would clear a terminal
    "dc01\nnode",
    "`whoami`",
    "dc01;rm",
    "\u0434\u04301",  # Cyrillic look-alikes of "da1"
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_vm_name_is_refused_and_shown_safely(name: str) -> None:
    data = yaml.safe_load(base_text())
    data["vms"][1]["name"] = name
    err = spec_error(yaml.safe_dump(data))
    line = next(p for p in err.problems if p.startswith("vms[1].name"))
    assert "(R-24)" in line
    # the message is printable ASCII: no control characters, no raw unicode quotes
    assert line.isascii() and line.isprintable(), repr(line)


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        (("switches", 0, "name"), "switches[0].name"),
        (("vms", 1, "nics", 0, "name"), "vms[1].nics[0].name"),
        (("volumes", 0, "name"), "volumes[0].name"),
        (("cluster", "name"), "cluster.name"),
        (("ha_vms", 0, "name"), "ha_vms[0].name"),
        (("name",), "name"),
        (("host", "root"), "host.root"),
        (("cluster", "management_switch"), "cluster.management_switch"),
    ],
)
@pytest.mark.parametrize("hostile", ["x'; Remove-VM *", "$(Stop-Computer)", "a\u2019b", "a\x07b"])
def test_hostile_strings_refused_everywhere(
    place: tuple[str | int, ...], expected: str, hostile: str
) -> None:
    data = yaml.safe_load(base_text())
    node = data
    for part in place[:-1]:
        node = node[part]
    node[place[-1]] = hostile
    err = spec_error(yaml.safe_dump(data))
    mine = [
        p for p in err.problems if p.startswith(expected + " (line") or p.startswith(expected + ":")
    ]
    assert mine, err.problems
    assert all(p.isascii() and p.isprintable() for p in err.problems)


def test_hostile_key_is_shown_safely() -> None:
    text = base_text() + '"evil\\e[31mkey": 1\n'
    err = spec_error(text)
    assert len(err.problems) == 1
    assert err.problems[0].startswith("'evil\\x1b[31mkey' (line ")
    assert "unknown key" in err.problems[0]
    assert err.problems[0].isprintable()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: [unclosed\n",
            "line 2, column 1: YAML syntax error: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "a: 1\n b: 2\n",
            "line 2, column 3: YAML syntax error: mapping values are not allowed here",
        ),
        ("key: 'unterminated\n", "YAML syntax error: found unexpected end of stream"),
        ("", "the file is empty; a lab file is a YAML mapping"),
        ("- a\n- b\n", "line 1: the top level must be a mapping of keys to values"),
        ("just text\n", "line 1: the top level must be a mapping of keys to values"),
        ("a: 1\na: 2\n", "a (line 2): duplicate key (first at line 1)"),
        ("? [a]\n: 1\n", "(top level) (line 1): keys must be plain words"),
        (
            "x: !!python/object/apply:os.system ['echo pwned']\n",
            "x (line 1): YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed",
        ),
        ("x: !!binary aGVsbG8=\n", "x (line 1): YAML tag tag:yaml.org,2002:binary is not allowed"),
        ("x: !custom 1\n", "x (line 1): YAML tag !custom is not allowed"),
        (
            "base: &b {a: 1}\nother: *b\n",
            "line 2: YAML aliases (*b) are not allowed in lab files; write the value out, or put shared values under `defaults`",
        ),
        (
            "base: {a: 1}\nother:\n  <<: {b: 2}\n",
            "other (line 3): YAML merge keys (<<) are not allowed; put shared values under `defaults`",
        ),
        (
            "a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
            "nesting deeper than 32 levels",
        ),
        ("a: \x00\n", "line 1: character U+0000 is not allowed in YAML"),
        ("a: 1\nb: \x1b[2J\n", "line 2: character U+001B is not allowed in YAML"),
    ],
)
def test_malformed_yaml(text: str, expected: str) -> None:
    err = spec_error(text)
    assert any(expected in p for p in err.problems), err.problems


def test_flood_of_problems_is_capped() -> None:
    data = yaml.safe_load(base_text())
    data["vms"] = [{"name": f"bad name {i}", "role": "node", "nics": [{}]} for i in range(2000)]
    err = spec_error(yaml.safe_dump(data))
    assert len(err.problems) == 51
    assert err.problems[-1].startswith("... and ") and err.problems[-1].endswith(" more problems")


def test_several_documents_are_refused() -> None:
    err = spec_error(base_text() + "---\nname: second\n")
    assert "YAML syntax error: expected a single document in the stream" in err.problems[0]


def test_alias_bomb_is_refused_quickly() -> None:
    # "billion laughs": nine levels of ten aliases each
    lines = ['a0: &a0 "lol"']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    err = spec_error("\n".join(lines) + "\n")
    assert err.problems == [
        "line 2: YAML aliases (*a0) are not allowed in lab files; write the value out, or put "
        "shared values under `defaults`"
    ]


def test_deep_nesting_does_not_crash() -> None:
    err = spec_error("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert err.problems[0].endswith("nesting deeper than 32 levels")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_lab(tmp_path / "nope.yaml")
    assert info.value.problems == ["no such file"]
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: 1 problem\n  - no such file"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_lab(tmp_path)
    assert info.value.problems == ["is a directory, not a lab file"]


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "lab.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError) as info:
        load_lab(fifo)
    assert info.value.problems == ["is not a regular file"]


def test_fifty_megabyte_file(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: the size is what counts
    with pytest.raises(SpecError) as info:
        load_lab(big)
    assert info.value.problems == ["is 52428800 bytes; lab files are limited to 1 MiB"]


def test_file_just_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "over.yaml"
    path.write_bytes(b"a: " + b"x" * (1024 * 1024) + b"\n")
    with pytest.raises(SpecError) as info:
        load_lab(path)
    assert info.value.problems == [f"is {1024 * 1024 + 4} bytes; lab files are limited to 1 MiB"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: lab\ndescription: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load_lab(path)
    assert info.value.problems == ["line 2: not valid UTF-8 (byte 0xe9); save the file as UTF-8"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + DEFAULT_LAB.read_bytes())
    assert load_lab(path).name == "s2d-2node"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    with pytest.raises(SpecError) as info:
        load_lab(path)
    assert info.value.problems == ["cannot be read: permission denied"]


def test_wrong_types_everywhere() -> None:
    text = """
name: 12
host: C:\\hvlab
switches: lab
domain: {fqdn: [a, b]}
vms: [1, 2]
cluster: {name: c, address: 10.0.0.1, witness: yes}
volumes: [{name: v, size: 1.5}]
"""
    err = spec_error(text)
    joined = "\n".join(err.problems)
    for expected in [
        "name (line 2): must be text",
        "host (line 3): must be a mapping of keys to values",
        "switches (line 4): must be a list",
        "domain.fqdn (line 5): must be text",
        "vms[0] (line 6): must be a mapping of keys to values",
        "cluster.witness (line 7): must be a mapping of keys to values",
        "volumes[0].size (line 8): a size must be a whole number of bytes or carry a unit, such as 1.5GB",
    ]:
        assert expected in joined, joined


def _invoke(
    *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HVLAB_")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_validate_task_exits_2_with_every_problem(tmp_path: Path) -> None:
    data = yaml.safe_load(base_text())
    data["vms"][1]["name"] = "x'; Remove-VM *"
    data["vms"][2]["nics"][0]["ip"] = "10.10.9.9"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = _invoke("lab.validate", "--lab", str(bad))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert f"{bad}: 2 problems" in result.stderr
    assert "vms[1].name (line" in result.stderr
    assert (
        "vms[2].nics[0].ip (line" in result.stderr
        and "is not inside subnet 10.10.0.0/24" in result.stderr
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a: &x [1]\nb: *x\n", "YAML aliases (*x) are not allowed"),
        (b"\xff\xfe\x00", "not valid UTF-8"),
    ],
)
def test_validate_task_hostile_files_exit_2(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    result = _invoke("lab.validate", "--lab", str(path))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_task_missing_file_exits_2() -> None:
    result = _invoke("lab.validate", "--lab", "labs/does-not-exist.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == "labs/does-not-exist.yaml: 1 problem\n  - no such file"
