"""Modelled time.

Every operation in the model has a modelled duration (hvsim/timing.py holds the
table). The clock turns modelled seconds into real sleeps by a timescale:
real = modelled * timescale. Timescale 1 is real time, 0.01 is a hundred times
faster, and 0 is instant: then the clock is virtual and jumps forward by each
duration, so order and boot markers stay true while nothing waits.
"""

from __future__ import annotations

import threading
import time


class Clock:
    def __init__(self, timescale: float = 0.0, start: float = 0.0) -> None:
        if timescale < 0:
            raise ValueError("timescale must be >= 0")
        self.timescale = timescale
        self._base = start
        self._t0 = time.monotonic()
        self._virtual = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Modelled seconds since the world was created."""
        if self.timescale > 0:
            return self._base + (time.monotonic() - self._t0) / self.timescale
        with self._lock:
            return self._base + self._virtual

    def due(self, seconds: float) -> float:
        """The modelled time at which something that takes `seconds` from now is done.

        At timescale 0 the clock itself jumps forward, so it is done already.
        """
        if self.timescale > 0:
            return self.now() + seconds
        with self._lock:
            self._virtual += max(0.0, seconds)
            return self._base + self._virtual

    def advance_to(self, when: float) -> None:
        """Someone waits for a moment that is known in advance (a heartbeat timeout, a
        repair's end). At timescale 0 the clock jumps there, as it does for durations;
        at any other timescale real time brings it."""
        if self.timescale > 0:
            return
        with self._lock:
            now = self._base + self._virtual
            if when > now:
                self._virtual += when - now

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of modelled time pass (a real sleep scaled by the timescale)."""
        if self.timescale > 0:
            time.sleep(max(0.0, seconds) * self.timescale)
        else:
            self.due(seconds)

    def real(self, seconds: float) -> float:
        """Real seconds that `seconds` of modelled time take."""
        return max(0.0, seconds) * self.timescale
