"""Bounding concurrency with a Pool, and handing work over with a Queue.

Spawning a greenlet per task is cheap, but the things the tasks talk to
(a database, a remote API) are not unlimited.  A ``Pool(size)`` runs at most
``size`` greenlets at once, and ``pool.spawn()`` *waits* while the pool is
full: the code that produces work slows down to the pace of the workers.
That is back-pressure, and it keeps memory bounded however much work arrives.

A ``Queue(maxsize)`` does the same between a producer and consumers:
``put()`` waits while the queue is full, ``get()`` waits while it is empty.
"""

import time

import greenweave
from greenweave.pool import Pool
from greenweave.queue import JoinableQueue

# 1. A pool of 3: ten 0.1 s jobs run three at a time (4 rounds, about 0.4 s).
pool = Pool(3)
running = 0
most = 0


def job(n: int) -> int:
    global running, most
    running += 1
    most = max(most, running)
    greenweave.sleep(0.1)
    running -= 1
    return n * n


started = time.perf_counter()
for n in range(10):
    pool.spawn(job, n)  # waits here whenever 3 jobs are already running
pool.join()
print(f"1. 10 jobs through Pool(3): {time.perf_counter() - started:.1f} s, "
      f"at most {most} at once")

# 2. The parallel map: results in input order (imap_unordered: as they finish).
print("2. squares:", list(pool.imap(job, range(6))))

# 3. Producer and consumers over a bounded queue.
tasks = JoinableQueue(maxsize=2)
done: list = []


def consumer(name: str) -> None:
    while True:
        item = tasks.get()
        greenweave.sleep(0.01)  # "process" the item
        done.append((name, item))
        tasks.task_done()


workers = [greenweave.spawn(consumer, f"c{i}") for i in range(2)]
for item in range(8):
    tasks.put(item)  # waits while 2 items are already queued
tasks.join()  # every item processed (task_done called for each)
greenweave.killall(workers)
print(f"3. {len(done)} items processed by", sorted({name for name, _ in done}))

# expect: ^1\. 10 jobs through Pool\(3\): 0\.[45] s, at most 3 at once$
# expect: ^2\. squares: \[0, 1, 4, 9, 16, 25\]$
# expect: ^3\. 8 items processed by \['c0', 'c1'\]$
