"""greenweave's runtime: the loop, its backends, the hub and the parking primitive.

Nothing outside this package may depend on which backend runs the loop.

* :mod:`.backend_epoll` / :mod:`.backend_selectors`: I/O readiness mechanics.
* :mod:`.loop`: the loop's policy (callbacks, timers, watchers, run cycle).
* :mod:`.hub`: the per-thread hub greenlet, ``Waiter`` and ``sleep``.
* :mod:`.park`: :class:`ParkingLot`, on which every waiting object is built.
"""

from .hub import Hub, Waiter, get_hub, get_hub_if_exists, reinit, sleep
from .loop import Callback, Loop
from .park import ParkingLot

__all__ = [
    "Callback",
    "Hub",
    "Loop",
    "ParkingLot",
    "Waiter",
    "get_hub",
    "get_hub_if_exists",
    "reinit",
    "sleep",
]
