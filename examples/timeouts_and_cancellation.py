"""Timeouts and cancellation: ``Timeout``, ``with_timeout`` and ``kill``.

A ``Timeout`` bounds how long a block of code may *wait*: when it expires,
the exception is raised in the greenlet that started it, at whatever blocking
call it is stuck in.  ``kill()`` does the same from outside: it raises
``GreenletExit`` (or an exception you choose) inside another greenlet.  In
both cases ``finally`` blocks and ``with`` statements run as usual, so
cleanup code works unchanged.
"""

import greenweave
from greenweave import Timeout, socket

# 1. A timeout around a block: the block is interrupted where it waits.
left, right = socket.socketpair()
try:
    with Timeout(0.1):
        left.recv(100)  # nothing will ever arrive
except Timeout as exc:
    print("1. recv gave up:", exc)

# 2. Timeout(seconds, False): leave the block quietly instead of raising.
with Timeout(0.1, False):
    greenweave.sleep(10)
    print("never printed")
print("2. left the block quietly")

# 3. with_timeout: call a function, return a default if it takes too long.
answer = greenweave.with_timeout(0.1, left.recv, 100, timeout_value=b"(no answer)")
print("3. with_timeout returned", answer)


# 4. Cancelling another greenlet: kill() raises GreenletExit inside it.
def worker(log: list) -> None:
    try:
        log.append("working")
        greenweave.sleep(10)
        log.append("finished")  # never reached
    finally:
        log.append("cleaned up")


log: list = []
job = greenweave.spawn(worker, log)
greenweave.sleep(0.05)
job.kill()  # waits (by default) until the greenlet has died
print("4. killed:", log, "dead:", job.dead, "successful:", job.successful())

# 5. Waiting for a result with a deadline, then giving up on the work.
slow = greenweave.spawn(greenweave.sleep, 10)
try:
    slow.get(timeout=0.1)
except Timeout:
    slow.kill()
    print("5. gave up waiting and cancelled the work:", slow.dead)

left.close()
right.close()

# expect: ^1\. recv gave up: 0\.1 seconds$
# expect: ^2\. left the block quietly$
# expect: ^3\. with_timeout returned b'\(no answer\)'$
# expect: ^4\. killed: \['working', 'cleaned up'\] dead: True successful: True$
# expect: ^5\. gave up waiting and cancelled the work: True$
