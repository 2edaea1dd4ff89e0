"""The simulated host's state file: size, save and load time of a built 4-node lab,
JSON (schema 2) beside the pickle of schema 1, measured side by side in one run,
and what saving each change costs during the build (a benchmark, not a test).

Run: python bench/state_file.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORDS = {
    "HVLAB_ADMIN_PASSWORD": "Bench-Admin-Pa55!",
    "HVLAB_DSRM_PASSWORD": "Bench-Dsrm-Pa55!",
}


def legacy_pickle(world: Any) -> bytes:
    """What schema 1 wrote: a pickle of the world, its clock by value, no locks."""
    from hvsim.clock import Clock

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, Clock):
                return ("clock", obj.now(), obj.timescale)
            if isinstance(obj, (type(threading.Lock()), type(threading.RLock()))):
                return ("lock",)
            return None

    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(world)
    return buf.getvalue()


def legacy_unpickle(data: bytes) -> Any:
    from hvsim.clock import Clock

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            return Clock(0.0, start=pid[1]) if pid[0] == "clock" else threading.Lock()

    return _Unpickler(io.BytesIO(data)).load()


def timed(fn: Any, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    opts = parser.parse_args()
    os.environ.update(PASSWORDS, HVSIM_TIMESCALE="0")
    for key in ("HVLAB_HOST", "HVSIM_FAULTS"):
        os.environ.pop(key, None)
    from hvlab import lab as labs
    from hvsim import persist

    saves: list[float] = []
    real_save = persist.save

    def counting(world: Any, path: Any, **kw: Any) -> int:
        t = time.perf_counter()
        size = real_save(world, path, **kw)
        saves.append(time.perf_counter() - t)
        return size

    persist.save = counting  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            labs.up(None, lab=str(ROOT / "labs" / "s2d-4node.yaml"))
        build = time.perf_counter() - t
        world = persist.load(Path(tmp) / ".hvlab" / "sim" / "host.state")
    persist.save = real_save  # type: ignore[assignment]
    new = persist.dumps(world)
    old = legacy_pickle(world)
    rows = {
        "json_schema2": {
            "bytes": len(new),
            "save_ms": round(timed(lambda: persist.dumps(world), opts.repeat), 2),
            "load_ms": round(timed(lambda: persist.loads(new), opts.repeat), 2),
        },
        "pickle_schema1": {
            "bytes": len(old),
            "save_ms": round(timed(lambda: legacy_pickle(world), opts.repeat), 2),
            "load_ms": round(timed(lambda: legacy_unpickle(old), opts.repeat), 2),
        },
        "build_4node": {
            "wall_s": round(build, 2),
            "journal_saves": len(saves),
            "seconds_saving": round(sum(saves), 2),
            "share_of_build": round(sum(saves) / build, 3),
        },
    }
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
