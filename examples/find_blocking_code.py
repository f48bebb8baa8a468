"""What blocks the whole thread, and how to find it.

A greenlet only gives the others a turn when it blocks on something
greenweave knows about (a socket, a sleep, a lock, a queue...).  Code that
computes for a long time without such a call holds the thread: every other
greenlet, and the hub itself, waits.

This program runs a "heartbeat" greenlet that wants to tick every 10 ms and
measures the longest gap between ticks, then:

1. runs 0.3 s of pure computation in another greenlet: the heartbeat stalls;
2. catches the same code with ``greenweave.util.assert_switches``, which
   fails a block that runs too long without switching;
3. fixes it by yielding (``greenweave.sleep(0)``) between chunks of work.
"""

import time

import greenweave
from greenweave.util import assert_switches


def heartbeat(gaps: list) -> None:
    last = time.perf_counter()
    while True:
        greenweave.sleep(0.01)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


def crunch(seconds: float, yield_every: float | None = None) -> None:
    """Busy computation for ``seconds``; optionally let others run now and then."""
    end = time.perf_counter() + seconds
    next_yield = time.perf_counter() + (yield_every or seconds)
    while time.perf_counter() < end:
        sum(range(1000))
        if yield_every and time.perf_counter() >= next_yield:
            greenweave.sleep(0)  # a switch point: the hub runs the other greenlets
            next_yield = time.perf_counter() + yield_every


def longest_stall(work) -> float:
    gaps: list = []
    beat = greenweave.spawn(heartbeat, gaps)
    greenweave.sleep(0.05)
    greenweave.spawn(work).join()
    greenweave.sleep(0.05)
    beat.kill()
    return max(gaps)


stall = longest_stall(lambda: crunch(0.3))
print(f"1. busy greenlet: heartbeat stalled for {stall:.2f} s")

try:
    with assert_switches(max_blocking_time=0.05):
        crunch(0.3)
except AssertionError as exc:
    print("2. assert_switches caught it:", str(exc).splitlines()[0])

stall = longest_stall(lambda: crunch(0.3, yield_every=0.005))
print(f"3. yielding every 5 ms: longest heartbeat gap {stall:.3f} s")

# expect: ^1\. busy greenlet: heartbeat stalled for 0\.[2-9]\d s$
# expect: ^2\. assert_switches caught it: The block ran 0\.\d+ seconds without switching
# expect: ^3\. yielding every 5 ms: longest heartbeat gap 0\.0\d\d s$
