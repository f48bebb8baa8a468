"""A gevent program, moved to greenweave by changing its import lines.

Before::

    import gevent
    from gevent import monkey
    monkey.patch_all()
    import time
    from gevent.event import Event
    from gevent.pool import Pool
    from gevent.queue import Queue

After: the same lines with ``greenweave`` (and ``import greenweave as gevent``
so that the body of the program keeps saying ``gevent.spawn``...).  Nothing
else changed below.
"""

import greenweave as gevent
from greenweave import monkey

monkey.patch_all()

import time  # noqa: E402

from greenweave.event import Event  # noqa: E402
from greenweave.pool import Pool  # noqa: E402
from greenweave.queue import Queue  # noqa: E402

results = Queue()
go = Event()


def worker(n):
    go.wait()
    time.sleep(0.05)  # patched: cooperative
    results.put(n * 10)


gevent.spawn_later(0.01, go.set)
pool = Pool(4)
for n in range(8):
    pool.spawn(worker, n)  # the fifth waits for a free slot
pool.join()
with gevent.Timeout(1):
    values = sorted(results.get() for _ in range(8))
print("results:", values)

# expect: ^results: \[0, 10, 20, 30, 40, 50, 60, 70\]$
