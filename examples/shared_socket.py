"""Sharing one socket between greenlets: one reader and one writer at a time.

A socket may be used by several greenlets, but at any moment at most one of
them may be *waiting to read* it and at most one *waiting to write* it.  A
second greenlet that tries to wait for the same direction gets
``ConcurrentObjectUseError`` at once: two readers would each get an
unpredictable part of the stream, so greenweave refuses instead of guessing.

The usual shapes:

* one greenlet reads (and dispatches what it reads), any number write;
* writers take turns with a lock, so messages are never interleaved.
"""

import greenweave
from greenweave import socket
from greenweave.exceptions import ConcurrentObjectUseError
from greenweave.lock import Semaphore

left, right = socket.socketpair()


def read_once(sock: socket.socket) -> bytes | str:
    try:
        return sock.recv(100)
    except ConcurrentObjectUseError as exc:
        return f"refused ({type(exc).__name__})"


# 1. Two greenlets reading the same socket at once: the second one is refused.
first = greenweave.spawn(read_once, left)
second = greenweave.spawn(read_once, left)
greenweave.sleep(0.01)  # both started; the first is waiting for data
print("second reader:", second.value)
right.sendall(b"ping")
print("first reader got:", first.get())

# 2. One reader plus several writers that take turns with a lock.
write_lock = Semaphore()
received = bytearray()


SIZE = 256 * 1024  # bigger than the socket buffers: sendall has to wait


def reader() -> None:
    while len(received) < 3 * SIZE:
        received.extend(left.recv(65536))


def writer(tag: bytes) -> None:
    message = tag * SIZE
    with write_lock:  # one writer at a time: each message arrives in one piece
        right.sendall(message)


greenweave.joinall([greenweave.spawn(reader)] +
                   [greenweave.spawn(writer, tag) for tag in (b"a", b"b", b"c")],
                   raise_error=True)
pieces = bytes(received)
runs = [pieces[i:i + SIZE] for i in range(0, len(pieces), SIZE)]
print("messages arrived whole:", all(len(set(run)) == 1 for run in runs))
left.close()
right.close()

# expect: ^second reader: refused \(ConcurrentObjectUseError\)$
# expect: ^first reader got: b'ping'$
# expect: ^messages arrived whole: True$
