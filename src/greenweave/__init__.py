"""greenweave: coroutine-based networking on greenlets, a drop-in for gevent.

``import greenweave as gevent`` and carry on: spawn greenlets, sleep, wait,
time out, and (after ``greenweave.monkey.patch_all()``) use the standard
library's blocking APIs cooperatively.
"""

from __future__ import annotations

import sys as _sys

from greenlet import GreenletExit, getcurrent

from ._config import config
from ._core.hub import get_hub, reinit, sleep
from ._wait import iwait, wait
from .greenlet import Greenlet, joinall, killall
from .hub import idle, kill, spawn_raw
from .hub import signal as signal_handler
from .timeout import Timeout, with_timeout

__version__ = "0.1.0.dev0"
version_info = (0, 1, 0, "dev", 0)

__all__ = [
    "Greenlet",
    "GreenletExit",
    "Timeout",
    "config",
    "fork",
    "get_hub",
    "getcurrent",
    "getswitchinterval",
    "idle",
    "iwait",
    "joinall",
    "kill",
    "killall",
    "reinit",
    "setswitchinterval",
    "signal_handler",
    "sleep",
    "spawn",
    "spawn_later",
    "spawn_raw",
    "wait",
    "with_timeout",
]

spawn = Greenlet.spawn
spawn_later = Greenlet.spawn_later

getswitchinterval = _sys.getswitchinterval
setswitchinterval = _sys.setswitchinterval


def fork(*args, **kwargs) -> int:
    """Fork the process; the child gets a working hub and the parent watches
    the child (see :func:`greenweave.os.fork`)."""
    from .os import fork as _fork

    return _fork(*args, **kwargs)
