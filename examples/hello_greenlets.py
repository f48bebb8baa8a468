"""Greenlets, the hub and cooperative waiting, in a dozen lines.

Three greenlets each "wait on the network" (here: sleep) for 0.2 s.  They run
concurrently in one thread: the whole program takes about 0.2 s, not 0.6 s,
because a greenlet that waits switches to the hub, and the hub runs whichever
greenlet is ready next.
"""

import time

import greenweave


def fetch(name: str, delay: float) -> str:
    print(f"{name}: start")
    greenweave.sleep(delay)  # a blocking call: this greenlet waits, the others run
    print(f"{name}: done")
    return name.upper()


started = time.perf_counter()
jobs = [greenweave.spawn(fetch, name, 0.2) for name in ("a", "b", "c")]
greenweave.joinall(jobs, raise_error=True)
elapsed = time.perf_counter() - started

print("results:", [job.value for job in jobs])
print(f"3 greenlets that each waited 0.2 s finished in {elapsed:.2f} s")

# expect: ^results: \['A', 'B', 'C'\]$
# expect: ^3 greenlets that each waited 0.2 s finished in 0\.[234]\d s$
