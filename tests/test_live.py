"""The end-to-end run against a real Hyper-V host, opt-in.

Set HVLAB_LIVE_HOST (a WinRM URL such as https://hv01.example.com:5986/wsman),
HVLAB_USER, HVLAB_PASSWORD and the lab passwords (HVLAB_ADMIN_PASSWORD,
HVLAB_DSRM_PASSWORD), and optionally HVLAB_LIVE_LAB (default labs/s2d-2node.yaml).
The test builds the lab, checks it with lab.status, runs lab.up again expecting no
change, and removes it. It takes as long as a real lab build (30-60 minutes).
"""

from __future__ import annotations

import json
import os

import pytest
from project import LABS

from hvlab import lab as labs
from hvlab import status as lab_status
from hvlab import teardown

LIVE = os.environ.get("HVLAB_LIVE_HOST")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not LIVE, reason="HVLAB_LIVE_HOST is not set: no real Hyper-V host to test on"
    ),
]


def test_live_lab_up_status_again_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HVLAB_HOST", LIVE or "")
    lab_file = os.environ.get("HVLAB_LIVE_LAB", str(LABS / "s2d-2node.yaml"))
    report = labs.up(None, lab=lab_file, yes=True, as_json=True)
    assert report["result"] == "ok"
    capsys.readouterr()
    lab_status.status(None, lab=lab_file, as_json=True)
    status = json.loads(capsys.readouterr().out)
    assert all(n["state"] == "Up" for n in status["cluster"]["nodes"])
    assert status["s2d"]["pool"]["health"] == "Healthy"
    assert all(h["state"] == "Online" for h in status["ha_vms"])
    assert labs.up(None, lab=lab_file, yes=True, as_json=True)["changed"] == 0
    teardown.down(None, lab=lab_file, yes=True)
