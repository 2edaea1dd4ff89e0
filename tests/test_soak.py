"""Twenty lab.up / lab.down cycles on the embedded host end where they began: the state
file is the size it started, the base image keeps no reference to deleted disks, and
no trace of the lab (its encoded administrator password included) stays behind."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hvlab import lab as labs
from hvlab import teardown
from hvlab.render import encode_admin_password
from hvlab.session import sim_state_path

ADMIN = "Adm1n-Xyzzy-7731!"
CYCLES = 20
# The state's size moves by a few bytes with the digits of the modelled clock and of
# the random generator's state, never with what a lab left behind (7 KB a cycle once).
SLACK = 128


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_twenty_up_down_cycles_leave_the_state_as_it_began(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hvsim import persist
    from hvsim.model.world import World

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HVSIM_TIMESCALE", "0")
    for key in ("HVLAB_HOST", "HVLAB_USER", "HVLAB_PASSWORD", "HVSIM_FAULTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HVLAB_ADMIN_PASSWORD", ADMIN)
    monkeypatch.setenv("HVLAB_DSRM_PASSWORD", "Dsrm-Plugh-4417!")
    path = sim_state_path(tmp_path / ".hvlab")
    start = persist.save(World.create(), path)
    fresh = World.create().snapshot()
    sizes = []
    for _ in range(CYCLES):
        labs.up(None)
        teardown.down(None, yes=True)
        capsys.readouterr()
        sizes.append(path.stat().st_size)
    print(f"state size: start {start} bytes, after each cycle {sizes}")
    assert max(abs(s - start) for s in sizes) <= SLACK, (start, sizes)
    world = persist.load(path)
    assert world.snapshot() == fresh
    images = [f.content for _, f in world.host.fs.files("C:\\hvlab\\images")]
    assert images and all(image.children == [] for image in images)
    blob = path.read_bytes()
    encoded = encode_admin_password(ADMIN).encode()
    assert encoded not in blob and ADMIN.encode() not in blob
    # The answer file is stored in the image's partitions as text; base64 of it too.
    assert base64.b64encode(encoded) not in blob
