"""The simulated host's state file: JSON with its own schema version, loaded without
running code, holding no faults, refused with a way out when it cannot be used."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from hvsim import persist
from hvsim.model.world import World


def test_round_trip_keeps_the_world(tmp_path: Path) -> None:
    world = World.create()
    path = tmp_path / "host.state"
    persist.save(world, path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "hvsim-state" and doc["schema"] == persist.SCHEMA
    assert persist.load(path).snapshot() == world.snapshot()


class _Payload:
    """What a hostile pickle does on load: here, create a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_an_old_pickle_is_refused_unread(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "host.state"
    path.write_bytes(b"HVSIM-STATE 1 0123456789abcdef\n" + pickle.dumps(_Payload(marker)))
    with pytest.raises(persist.StateFileError, match=r"never loads pickles.*Delete the file"):
        persist.load(path)
    assert not marker.exists(), "loading a state file must never run code"


def test_a_json_state_naming_a_foreign_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "host.state"
    persist.save(World.create(), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["objects"][0][0] = "subprocess.Popen"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(persist.StateFileError, match=r"unknown class 'subprocess\.Popen'"):
        persist.load(path)


def test_a_field_missing_from_an_older_file_gets_its_default(tmp_path: Path) -> None:
    world = World.create()
    path = tmp_path / "host.state"
    persist.save(world, path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    dropped = 0
    for name, fields in doc["objects"]:
        if name == "hvsim.model.machine.Hardware":
            del fields["slat"]  # as if the field were added after the file was written
            dropped += 1
    assert dropped
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert persist.load(path).host.hardware.slat is True


def test_faults_are_never_saved(tmp_path: Path) -> None:
    world = World.create(faults="boot_hang:vm=hvhost02;disk_full:after_bytes=1000")
    assert world.host.fs.drives["C"].write_budget == 1000
    path = tmp_path / "host.state"
    persist.save(world, path)
    text = path.read_text(encoding="utf-8")
    assert "boot_hang" not in text and "write_budget" not in text
    loaded = persist.load(path)
    assert loaded.faults.faults == []
    assert loaded.host.fs.drives["C"].write_budget is None
    assert loaded.dropped_faults == []


def test_faults_an_older_file_carried_are_dropped_and_named(tmp_path: Path) -> None:
    path = tmp_path / "host.state"
    persist.save(World.create(), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    for name, fields in doc["objects"]:
        if name == "hvsim.model.fs.Volume":
            fields["write_budget"] = 5
    path.write_text(json.dumps(doc), encoding="utf-8")
    loaded = persist.load(path)
    assert loaded.dropped_faults == ["Volume.write_budget"]
    assert loaded.host.fs.drives["C"].write_budget is None


def test_a_legacy_pickle_with_faults_says_so(tmp_path: Path) -> None:
    from hvsim.faults import Faults

    path = tmp_path / "host.state"
    path.write_bytes(
        b"HVSIM-STATE 1 0123456789abcdef\n" + pickle.dumps(Faults.parse("boot_hang:vm=x"))
    )
    with pytest.raises(persist.StateFileError, match=r"carries injected faults \(boot_hang\)"):
        persist.load(path)


def test_leftover_temporary_files_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "host.state"
    persist.save(World.create(), path)
    leftover = tmp_path / "host.state.abc123.tmp"
    leftover.write_bytes(b"half")
    assert persist.remove_leftovers(path) == [leftover]
    assert path.exists() and not leftover.exists()


def test_embedded_session_turns_it_into_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hvlab.errors import ConfigError
    from hvlab.session import open_session, sim_state_path

    monkeypatch.delenv("HVLAB_HOST", raising=False)
    path = sim_state_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"HVSIM-STATE 1 feedfacefeedface\n\x80\x05N.")
    with (
        pytest.raises(ConfigError, match="nothing real is lost"),
        open_session(None, state_base=tmp_path),
    ):
        pass
