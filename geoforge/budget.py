"""The wall-clock budget of a plugin's code for one positive (DESIGN.md, "Verification rules").

:class:`Budget` counts the time a plugin spends inside :meth:`Budget.running`, across its
``propose`` call and each ``next()``; in the main thread of a process where
:func:`signal.setitimer` exists it arms ``SIGALRM`` so that even a single call that never
returns is interrupted with :class:`PluginTimeout`; elsewhere the budget is checked when the
call returns. Used by :meth:`geoforge.plugins.PluginHost.candidates`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

#: After a plugin's budget runs out, SIGALRM repeats every this many seconds until the plugin
#: lets the timeout through (a plugin that catches it and carries on is interrupted again).
ALARM_REPEAT = 0.05


class PluginTimeout(BaseException):
    """Raised inside a plugin's code when its time budget for one positive runs out.

    A ``BaseException``, like ``KeyboardInterrupt``, so that a plugin's ``except Exception``
    does not swallow it; a plugin that catches it anyway is interrupted again every
    :data:`ALARM_REPEAT` seconds."""


#: True only while a plugin's code runs under an armed alarm; the SIGALRM handler does
#: nothing otherwise (an alarm that lands just after ``next()`` returned is ignored).
_inside_plugin = False


def _on_alarm(signum: int, frame: object) -> None:
    if _inside_plugin:
        raise PluginTimeout


def can_alarm() -> bool:
    """True where SIGALRM can interrupt a plugin: the main thread, ``setitimer`` available and
    a Python-level (restorable) SIGALRM handler installed."""
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) is not None
    )


class Budget:
    """What is left of one plugin's wall-clock ``budget`` (seconds; ``None``: unlimited) for one
    positive, spent only inside :meth:`running`."""

    def __init__(self, budget: float | None) -> None:
        self.budget = budget
        self.left = budget if budget is not None else float("inf")
        #: Seconds spent inside :meth:`running` so far, whatever the budget.
        self.spent = 0.0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Run plugin code; raise :class:`PluginTimeout` when it exceeds what is left (from a
        SIGALRM inside it where :func:`can_alarm`, else once it returns)."""
        global _inside_plugin
        if self.left <= 0:
            raise PluginTimeout
        if self.budget is None or not can_alarm() or _inside_plugin:
            start = time.monotonic()
            try:
                yield
            finally:
                spent = time.monotonic() - start
                self.left -= spent
                self.spent += spent
            if self.left <= 0:
                raise PluginTimeout
            return
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        start = time.monotonic()
        old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, self.left, ALARM_REPEAT)
        try:
            _inside_plugin = True
            yield
        finally:
            _inside_plugin = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            spent = time.monotonic() - start
            if old_delay > 0:  # someone else's timer: re-arm it with what is left of it
                signal.setitimer(signal.ITIMER_REAL, max(old_delay - spent, 1e-6), old_interval)
            self.left -= spent
            self.spent += spent
        if self.left <= 0:
            raise PluginTimeout
