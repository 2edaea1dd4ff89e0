"""The embedded host's state file is refused, with a way out, when the model changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvsim import persist
from hvsim.model.world import World


def test_round_trip_keeps_the_world(tmp_path: Path) -> None:
    world = World.create()
    path = tmp_path / "host.state"
    persist.save(world, path)
    assert persist.load(path).snapshot() == world.snapshot()


def test_state_of_another_model_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "host.state"
    persist.save(World.create(), path)
    data = path.read_bytes()
    header, _, body = data.partition(b"\n")
    magic, version, _fingerprint = header.split(b" ")
    path.write_bytes(b" ".join([magic, version, b"0123456789abcdef"]) + b"\n" + body)
    with pytest.raises(
        persist.StateFileError, match=r"another version of hvsim's model.*Delete the file"
    ):
        persist.load(path)


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
