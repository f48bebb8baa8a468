"""Exceptions raised by greenweave itself."""

from __future__ import annotations

from typing import Any

from greenlet import GreenletExit
from greenlet import error as _greenlet_error

__all__ = [
    "LoopExit",
    "BlockingSwitchOutError",
    "InvalidSwitchError",
    "ConcurrentObjectUseError",
    "HubDestroyed",
    "InvalidThreadUseError",
    "GreenletExit",
]


class LoopExit(Exception):
    """The loop ran out of work while a greenlet was still waiting.

    Nothing could ever wake the waiter (for example, the main greenlet waits on
    an ``Event`` that no other greenlet or watcher can set), so instead of
    hanging forever the wait raises this.
    """

    @property
    def hub(self) -> Any:
        return self.args[1] if len(self.args) > 1 else None

    def __str__(self) -> str:
        if len(self.args) > 1 and self.args[1] is not None:
            return f"{self.args[0]}\n\tHub: {self.args[1]!r}"
        return super().__str__()


class BlockingSwitchOutError(AssertionError):
    """Code running in the hub greenlet (a loop callback) tried to block."""


class InvalidSwitchError(AssertionError):
    """A greenlet was switched to by something other than what it waits for."""


class ConcurrentObjectUseError(AssertionError):
    """Two greenlets tried to wait on the same object the same way at once
    (for example, both reading one socket)."""


class HubDestroyed(GreenletExit):
    """Thrown into the hub greenlet by :meth:`greenweave.hub.Hub.destroy` to stop it."""


class InvalidThreadUseError(RuntimeError):
    """An object bound to one native thread's hub was used from another."""


# Exposed for code that catches greenlet's own error.
GreenletError = _greenlet_error
