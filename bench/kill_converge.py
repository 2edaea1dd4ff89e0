"""Runs killed at random points converge on the next run (a benchmark of robustness,
not a test: it takes minutes).

Run: python bench/kill_converge.py [--runs 20] [--mode embedded|serve|both] [--seed 1]

Each trial starts `invoke lab.up` (three in four) or `invoke lab.down --yes` on a
built lab, and stops it at a random moment with SIGKILL or SIGINT. Against
`invoke sim.serve --state FILE` every other trial kills the server too (SIGKILL) and
starts it again from its state file. Then the same task runs again, unhindered: the
trial converges when that run succeeds (exit 0) and leaves the host as the task
promises (a complete lab: a further lab.up changes nothing; after down: no lab VM).

Prints one line per trial and a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INVOKE = [sys.executable, "-m", "invoke", "-r", str(ROOT)]
PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Kill-Admin-Pa55!",
    "HVLAB_DSRM_PASSWORD": "Kill-Dsrm-Pa55!",
}
TIMESCALE = "0.002"
UP_WINDOW = float(os.environ.get("KILL_UP_WINDOW", "8"))  # seconds within which an up is stopped
SIM_USER, SIM_PASSWORD = "hvadmin", "Kill-Host-Pa55!"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HVLAB_", "HVSIM_"))}
    env.update(PASSWORDS)
    env["HVSIM_TIMESCALE"] = TIMESCALE
    return env


def _signals_as_usual() -> None:
    """A child started from a background job inherits SIGINT ignored; Ctrl-C must act."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def task(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> Any:
    return subprocess.run(
        [*INVOKE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_signals_as_usual,
    )


def killed(args: list[str], cwd: Path, env: dict[str, str], delay: float, sig: int) -> int:
    proc = subprocess.Popen(
        [*INVOKE, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_signals_as_usual,
    )
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
    return proc.wait(timeout=120)


class Server:
    def __init__(self, folder: Path) -> None:
        self.state = folder / "served.state"
        self.log = folder / "served.log"
        self.stuck = False
        self.proc: subprocess.Popen[str] | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def start(self) -> None:
        env = base_env()
        env["HVSIM_PASSWORD"] = SIM_PASSWORD
        self.proc = subprocess.Popen(
            [
                *INVOKE,
                "sim.serve",
                "--port",
                str(self.port),
                "--user",
                SIM_USER,
                "--state",
                str(self.state),
                "--timescale",
                TIMESCALE,
            ],
            env=env,
            stdout=subprocess.PIPE,
            # Into a file: a pipe nobody reads would block the server once it is full.
            stderr=self.log.open("a"),
            text=True,
            preexec_fn=_signals_as_usual,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"sim.serve did not start: {line} {self.log.read_text()[-500:]}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.stuck = True  # reported with the trial
                self.proc.kill()
                self.proc.wait(timeout=30)
            self.proc = None

    def env(self) -> dict[str, str]:
        env = base_env()
        env.update(
            HVLAB_HOST=f"http://127.0.0.1:{self.port}/wsman",
            HVLAB_USER=SIM_USER,
            HVLAB_PASSWORD=SIM_PASSWORD,
            HVLAB_AUTH="ntlm",
            HVLAB_TIME_FACTOR=TIMESCALE,
        )
        return env


def trial(mode: str, n: int, rng: random.Random, folder: Path) -> dict[str, Any]:
    work = folder / f"{mode}-{n}"
    work.mkdir()
    server = Server(work) if mode == "serve" else None
    if server is not None:
        server.start()
    env = server.env() if server is not None else base_env()
    verb = "down" if rng.random() < 0.25 else "up"
    args = ["lab.up", "--yes"] if verb == "up" else ["lab.down", "--yes"]
    try:
        if verb == "down":
            built = task(["lab.up", "--yes"], work, env)
            if built.returncode != 0:
                return {"trial": n, "mode": mode, "verb": verb, "ok": False, "why": "setup"}
        started = time.monotonic()
        whole = UP_WINDOW if verb == "up" else 1.5
        delay = rng.uniform(0.1, whole)
        sig = rng.choice([signal.SIGKILL, signal.SIGINT])
        code = killed(args, work, env, delay, sig)
        server_killed = server is not None and n % 2 == 1
        if server_killed:
            server.kill()
            server.start()
        again = task(args, work, env)
        ok = again.returncode == 0
        why = "" if ok else (again.stdout + again.stderr)[-600:]
        if ok and verb == "up":
            check = task(["lab.up", "--yes", "--json"], work, env)
            report = json.loads(check.stdout) if check.returncode == 0 else {}
            ok = report.get("changed") == 0
            why = "" if ok else f"a third run changed {report.get('changed')}"
        if ok and verb == "down":
            status = task(["lab.status", "--json"], work, env)
            vms = json.loads(status.stdout)["vms"] if status.returncode == 0 else None
            ok = vms is not None and all(v["state"] == "Missing" for v in vms)
            why = "" if ok else f"after down: {vms}"
        return {
            "trial": n,
            "mode": mode,
            "verb": verb,
            "killed_after_s": round(delay, 2),
            "signal": signal.Signals(sig).name,
            "exit_of_killed_run": code,
            "server_killed": server_killed,
            "ok": ok,
            "why": why,
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        if server is not None:
            server.stop()
            if server.stuck:
                print(json.dumps({"trial": n, "note": "sim.serve ignored SIGINT for 60 s"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="trials per mode")
    parser.add_argument("--mode", choices=["embedded", "serve", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    modes = ["embedded", "serve"] if opts.mode == "both" else [opts.mode]
    results = []
    with tempfile.TemporaryDirectory(prefix="hvlab-kill-") as tmp:
        for mode in modes:
            for n in range(opts.runs):
                result = trial(mode, n, rng, Path(tmp))
                results.append(result)
                print(json.dumps(result), flush=True)
    summary = {
        mode: {
            "runs": sum(1 for r in results if r["mode"] == mode),
            "converged": sum(1 for r in results if r["mode"] == mode and r["ok"]),
        }
        for mode in modes
    }
    print(json.dumps({"summary": summary}, indent=2))
    if any(not r["ok"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
