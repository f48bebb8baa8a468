"""When greenweave uses native threads: the hub's thread pool.

Some work cannot wait cooperatively: a C library call that blocks (here the
unpatched ``time.sleep`` stands in for one), the system's name resolver
(``getaddrinfo``), reads from regular files.  Run in a greenlet, it would
stop every greenlet of the thread.  Run in ``get_hub().threadpool``, it
occupies a native worker thread while only the calling greenlet waits.

That is also why a greenweave process can show several OS threads (``top
-H``, ``/proc/PID/task``): they are the pool's workers, started on demand, at
most ``GREENWEAVE_THREADPOOL_SIZE`` of them (default 10) per hub, and idle
ones stay for the next task.
"""

import os
import time

import greenweave
from greenweave import socket


def os_threads() -> str:
    try:
        return str(len(os.listdir("/proc/self/task")))  # Linux
    except OSError:
        return "n/a"


hub = greenweave.get_hub()
print("pool size limit:", hub.threadpool.maxsize, "(GREENWEAVE_THREADPOOL_SIZE)")
print("OS threads at start:", os_threads())

ticks = []


def tick() -> None:
    for _ in range(10):
        greenweave.sleep(0.02)
        ticks.append(time.perf_counter())


ticker = greenweave.spawn(tick)

started = time.perf_counter()
results = [hub.threadpool.spawn(time.sleep, 0.2) for _ in range(4)]  # 4 blocking calls at once
for result in results:
    result.get()  # blocks only this greenlet
ticker.join()
print(f"4 blocking calls of 0.2 s in the pool: {time.perf_counter() - started:.2f} s; "
      f"meanwhile another greenlet ticked {len(ticks)} times")
print("OS threads now:", os_threads())

# Name resolution uses the same pool (the default "thread" resolver).
print("localhost resolves to", sorted({ai[4][0] for ai in socket.getaddrinfo("localhost", 80)}))

# expect: ^pool size limit: \d+ \(GREENWEAVE_THREADPOOL_SIZE\)$
# expect: ^4 blocking calls of 0\.2 s in the pool: 0\.[2-4]\d s; meanwhile .* ticked 10 times$
# expect: ^localhost resolves to \[
