"""The simulator's clock: one background thread that runs timed actions.

Import completion, export completion, job status steps and webhook retries are all scheduled
here, so the HTTP request threads never sleep. Actions must be short, so slow work such as an
outbound HTTP call is handed to a worker instead.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

logger = logging.getLogger(__name__)


def utc_now_iso() -> str:
    """Return the current UTC time as Phrase writes dates in responses (offset without colon)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class ScheduledAction:
    """A handle to an action scheduled on the `Scheduler`, whose `cancel()` stops the action."""

    def __init__(self, due: float, action: Callable[[], None], name: str):
        self.due = due
        self.action = action
        self.name = name
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Run actions after a delay on one daemon thread, in due-time order."""

    def __init__(self, name: str = "phrase-sim-clock"):
        self._heap: list[tuple[float, int, ScheduledAction]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and drop the pending actions."""
        with self._condition:
            self._stopped = True
            self._heap.clear()
            self._condition.notify_all()

        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def call_later(self, delay: float, action: Callable[[], None],
                   name: str = "") -> ScheduledAction:
        """Schedule `action` to run `delay` seconds from now (a negative delay runs it at once)."""
        scheduled = ScheduledAction(time.monotonic() + max(0.0, delay), action, name)
        with self._condition:
            if not self._stopped:
                heapq.heappush(self._heap, (scheduled.due, next(self._counter), scheduled))
                self._condition.notify_all()
        return scheduled

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped:
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        break
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                _, _, scheduled = heapq.heappop(self._heap)

            if scheduled.cancelled:
                continue
            try:
                scheduled.action()
            except Exception:
                # One failing action must not stop the clock for every other job.
                logger.exception("scheduled action %s failed", scheduled.name or scheduled.action)
