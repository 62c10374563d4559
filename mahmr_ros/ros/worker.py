"""Latest-frame worker: one slot, one thread; a slow model drops stale frames instead of queueing
them.

Callbacks ``submit`` the newest frame; if the previous one has not started yet it is replaced and
counted as dropped, so memory and latency stay bounded whatever the input rate. The worker calls
``process(item)`` for the frame it picks up and ``on_error(item, exc)`` when that raises (the
thread keeps running).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LatestFrameWorker:
    """Runs ``process`` on the newest submitted item, off the caller's thread.

    Args:
        process: called with each item the worker picks up (on the worker thread).
        on_error: called with (item, exception) when ``process`` raises (default: only counted in
            ``failed``).
        name: thread name (shows in debuggers and ``py-spy``).
    """

    def __init__(
        self,
        process: Callable[[Any], None],
        on_error: Callable[[Any, BaseException], None] | None = None,
        name: str = "mahmr_worker",
    ):
        self._process = process
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: Any = None
        self._has_pending = False
        self._busy = False
        self._stopping = False
        self._then: Callable[[], None] | None = None
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> bool:
        """Hand over the newest frame; returns True when it replaced a stale, unprocessed one."""
        with self._cond:
            replaced = self._has_pending
            if replaced:
                self.dropped += 1
            self._pending, self._has_pending = item, True
            self.submitted += 1
            self._cond.notify_all()
        return replaced

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until nothing is pending or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._has_pending and not self._busy, timeout_s)

    def stop(self, timeout_s: float | None = 5.0, then: Callable[[], None] | None = None) -> bool:
        """Drop any pending frame, let the running one finish, and join the thread.

        Args:
            timeout_s: how long to wait for a running frame; None = as long as it takes.
            then: called on the worker thread after its last frame (e.g. to free the model), also
                when the join timed out and the frame is still running.

        Returns:
            True when the thread has ended; False when a frame was still running after
            ``timeout_s`` (``then`` runs when it ends).
        """
        with self._cond:
            self._stopping = True
            self._then = then
            if self._has_pending:
                self._pending, self._has_pending = None, False
            self._cond.notify_all()
        if self._thread is threading.current_thread():
            return False
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self._then is not None:
                self._then()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._has_pending or self._stopping)
                if self._stopping:
                    return
                item, self._pending, self._has_pending = self._pending, None, False
                self._busy = True
            try:
                self._process(item)
                self.processed += 1
            except Exception as exc:  # noqa: BLE001 - a bad frame must never kill the worker
                self.failed += 1
                if self._on_error is not None:
                    self._on_error(item, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
