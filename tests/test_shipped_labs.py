"""Every lab that ships with hvlab builds on the embedded simulated host, and the
simulated host can be given the volumes a lab wants."""

from __future__ import annotations

from pathlib import Path

import pytest
from project import LABS

from hvlab import lab as labs
from hvlab.errors import ConfigError, PreflightError

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Shipped-Adm1n-Pw!",
    "HVLAB_DSRM_PASSWORD": "Shipped-Dsrm-Pw1!",
}


@pytest.mark.slow
def test_example_full_builds_on_the_embedded_host(workdir: Path) -> None:
    payload = labs.up(None, lab=str(LABS / "example-full.yaml"), yes=True)
    assert payload["result"] == "ok"
    assert payload["endpoints"]["cluster"]["name"]
    assert all(s["status"] in ("changed", "ok") for s in payload["steps"])


def test_the_simulated_host_takes_more_volumes(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hvsim.model.world import TiB, parse_volumes

    lab = workdir / "on-e.yaml"
    lab.write_text((LABS / "s2d-2node.yaml").read_text().replace("root: C:", "root: E:"))
    with pytest.raises(PreflightError, match=r"no volume E:"):
        labs.plan(None, lab=str(lab))
    (workdir / ".hvlab").rename(workdir / "old")  # a new host: volumes are set when it is made
    monkeypatch.setenv("HVSIM_VOLUMES", "E=ReFS:2TiB")
    payload = labs.plan(None, lab=str(lab))
    assert payload["changes"] > 0
    assert [(v.letter, v.file_system, v.size) for v in parse_volumes("D=4TiB, e=refs:1TiB")] == [
        ("D", "NTFS", 4 * TiB),
        ("E", "ReFS", 1 * TiB),
    ]
    for bad in ("C=1TiB", "D=4", "D=xfs:1TiB", "DD=1TiB", "D=-1TiB"):
        with pytest.raises(ValueError, match="write LETTER=SIZE"):
            parse_volumes(bad)
    (workdir / ".hvlab").rename(workdir / "older")
    monkeypatch.setenv("HVSIM_VOLUMES", "E=lots")
    with pytest.raises(ConfigError, match="HVSIM_VOLUMES: volume 'E=lots'"):
        labs.plan(None, lab=str(lab))
