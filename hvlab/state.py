"""The lab's record under .hvlab/<host>/<lab>/: state.json, artifacts, trace, diagnostics.

All writes are atomic (temp file, fsync, rename). Nothing secret is ever written:
callers pass reports, facts and step results, which hold no passwords; a final
scan in the tests proves it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data if isinstance(data, bytes) else data.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# A temporary file younger than this may belong to a write in progress.
LEFTOVER_AGE_S = 60.0


def remove_leftovers(folder: Path) -> list[Path]:
    """Temporary files a killed write left (.<name>.<random>), once they are old enough
    that no write in progress can own them."""
    removed = []
    now = time.time()
    for path in folder.glob(".*.*"):
        if not path.is_file():
            continue
        try:
            if now - path.stat().st_mtime > LEFTOVER_AGE_S:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


class LabState:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = folder / "state.json"
        self._lock = threading.Lock()
        if folder.is_dir():
            remove_leftovers(folder)
        try:
            self.data: dict[str, Any] = json.loads(self.file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            self.data = {}
        self.data.setdefault("facts", {})
        self.data.setdefault("steps", {})

    def save(self) -> None:
        with self._lock:
            self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            atomic_write(self.file, json.dumps(self.data, indent=2, sort_keys=True, default=str))

    def get_fact(self, scope: str, key: str) -> Any:
        return self.data["facts"].get(scope, {}).get(key)

    def set_fact(self, scope: str, key: str, value: Any) -> None:
        with self._lock:
            facts = self.data["facts"].setdefault(scope, {})
            if value is None:
                facts.pop(key, None)
            else:
                facts[key] = value
        self.save()

    def record_step(self, result: Any) -> None:
        with self._lock:
            self.data["steps"][result.name] = result.to_json()
        self.save()

    def write_artifact(self, name: str, content: str | bytes) -> Path:
        path = self.folder / name
        atomic_write(path, content)
        return path

    def read_json(self, name: str) -> Any:
        """An artifact written by write_json, or None when it is missing or unreadable."""
        try:
            return json.loads((self.folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write_json(self, name: str, payload: Any) -> Path:
        return self.write_artifact(name, json.dumps(payload, indent=2, sort_keys=True, default=str))
