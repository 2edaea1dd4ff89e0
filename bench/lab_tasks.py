"""The cost of lab tasks over a link: one child process of bench/lab.py --link.

    python bench/lab_tasks.py --lab labs/s2d-2node.yaml --latency 50

Builds the lab on the embedded simulated host at timescale 0 (modelled waits take
no real time), then runs a no-op lab.up, lab.status and lab.plan on the complete
lab, every HTTP exchange delayed by --latency milliseconds (hvsim's link latency).
Prints one JSON line: per task its wall time (seconds, the whole task from loading
the lab to closing the connections), its host calls (round trips in hvlab's trace)
and its HTTP exchanges (counted by the server).

It imports hvlab from wherever Python finds it, so bench/lab.py can run it with an
earlier hvlab (--before) against this tree's hvsim: the latency is given to the
embedded server here, whether or not that hvlab's session passes it on.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Bench-Admin-Pa55!",
    "HVLAB_DSRM_PASSWORD": "Bench-Dsrm-Pa55!",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    os.environ.update(PASSWORDS, HVSIM_TIMESCALE="0", HVSIM_LATENCY_MS=str(args.latency))
    for key in ("HVLAB_HOST", "HVLAB_USER", "HVLAB_PASSWORD", "HVSIM_FAULTS"):
        os.environ.pop(key, None)

    from hvlab import lab as labs
    from hvlab import status as lab_status
    from hvlab.remote import Host
    from hvsim import server as sim_server

    servers: list[Any] = []
    serve = sim_server.serve_in_thread

    @contextlib.contextmanager
    def serve_with_latency(*a: Any, **kw: Any) -> Any:
        kw["latency_ms"] = args.latency
        with serve(*a, **kw) as running:
            servers.append(running)
            yield running

    # The session imports serve_in_thread when it opens: patch where it is looked up.
    sim_server.serve_in_thread = serve_with_latency  # type: ignore[assignment]
    calls: list[int] = []
    close = Host.close

    def keep(self: Host) -> None:
        calls.append(len(self.trace))
        close(self)

    Host.close = keep  # type: ignore[method-assign]
    home = Path(tempfile.mkdtemp(prefix="hvlab-bench-"))
    tasks = {
        "build": functools.partial(labs.up, None, lab=args.lab, as_json=True, state_base=home),
        "noop": functools.partial(labs.up, None, lab=args.lab, as_json=True, state_base=home),
        "status": functools.partial(
            lab_status.status, None, lab=args.lab, as_json=True, state_base=home
        ),
        "plan": functools.partial(labs.plan, None, lab=args.lab, as_json=True, state_base=home),
    }
    out: dict[str, Any] = {"lab": Path(args.lab).stem, "latency_ms": args.latency}
    for name, task in tasks.items():
        t0 = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = task()
        wall = time.monotonic() - t0
        server = servers[-1]
        if server.latency_ms != args.latency:
            raise SystemExit(
                f"the embedded host ran with {server.latency_ms} ms, not {args.latency}"
            )
        out[name] = {
            "wall_s": round(wall, 3),
            "host_calls": calls[-1],
            "exchanges": server.exchanges,
        }
        if name in ("build", "noop"):
            out[name]["changed"] = result["changed"]
            out[name]["result"] = result["result"]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
