"""The :mod:`time` module with a cooperative ``sleep`` (gevent's ``gevent.time``).

``sleep`` is :func:`greenweave.sleep`: it blocks only the calling greenlet.
Everything else is the standard module's own object, re-exported, so
``from greenweave import time`` is a drop-in for ``import time``.

(Unlike :func:`time.sleep`, a negative duration counts as 0 rather than
raising, as in gevent.)
"""

from __future__ import annotations

import time as __time__

from ._core.hub import sleep

#: Names of :mod:`time` this module replaces (what ``patch_time`` patches).
__implements__ = ["sleep"]
#: Names re-exported unchanged from :mod:`time`.
__imports__ = [n for n in dir(__time__) if not n.startswith("__") and n != "sleep"]
__extensions__: list[str] = []
__all__ = ["sleep"]

for _name in __imports__:
    globals()[_name] = getattr(__time__, _name)
del _name
