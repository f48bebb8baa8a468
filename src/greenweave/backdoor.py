"""An interactive Python console over TCP, for inspecting a live process.

::

    BackdoorServer(("127.0.0.1", 5001), locals={"app": app}).start()

then ``nc 127.0.0.1 5001`` (or ``telnet``) gives a ``>>>`` prompt running in
the server process.  Each connection gets its own console (and its own copy
of ``locals``); ``quit()``, ``exit()``, ``sys.exit()`` or end-of-file close
that connection only.

Output: while a console's greenlet runs, ``sys.stdout``, ``sys.stderr`` and
``sys.stdin`` of *that greenlet* are the connection.  This is done with
proxies installed in ``sys`` while any console is open, which send each
operation to the current greenlet's stream: the rest of the program (other
greenlets, other threads) keeps printing where it did.  Greenlets that code
typed into the console spawns print to the process's normal output too.
Listen on loopback only, or protect the port: whoever connects runs code
with the process's rights.
"""

from __future__ import annotations

import code
import sys
from typing import Any

from greenlet import getcurrent

from .server import StreamServer

__all__ = ["BackdoorServer"]


class _StreamProxy:
    """Stands in for ``sys.stdout``/``stderr``/``stdin``: each operation goes to
    the current greenlet's console stream, or to the original stream."""

    def __init__(self, default: Any) -> None:
        self._default = default
        self._targets: dict = {}

    def _target(self) -> Any:
        return self._targets.get(getcurrent(), self._default)

    def write(self, data: str) -> Any:
        return self._target().write(data)

    def flush(self) -> Any:
        return self._target().flush()

    def readline(self, *args: Any) -> Any:
        return self._target().readline(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __repr__(self) -> str:
        return f"<backdoor stream proxy for {self._target()!r}>"


_STREAMS = ("stdin", "stdout", "stderr")


def _redirect(glet: Any, stream: Any) -> None:
    """Send ``glet``'s standard streams to ``stream`` (installing the proxies)."""
    for name in _STREAMS:
        current = getattr(sys, name)
        if not isinstance(current, _StreamProxy):
            current = _StreamProxy(current)
            setattr(sys, name, current)
        current._targets[glet] = stream


def _unredirect(glet: Any) -> None:
    """Undo :func:`_redirect`; the last console out restores the real streams."""
    for name in _STREAMS:
        current = getattr(sys, name)
        if isinstance(current, _StreamProxy):
            current._targets.pop(glet, None)
            if not current._targets:
                setattr(sys, name, current._default)


class _SocketFile:
    """Text I/O on the console's connection (telnet style: ``\\r\\n`` out)."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self.closed = False

    def write(self, data: str) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed console connection")
        if not isinstance(data, str):
            raise TypeError(f"write() argument must be str, not {type(data).__name__}")
        self._sock.sendall(data.replace("\n", "\r\n").encode("utf-8", "replace"))
        return len(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def readline(self, size: int = -1) -> str:
        if self.closed:
            return ""
        while b"\n" not in self._buf:
            try:
                data = self._sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                line, self._buf = self._buf, b""
                return line.decode("utf-8", "replace")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace") + "\n"

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        # quit()/exit() close sys.stdin: that is this connection, nothing else.
        self.closed = True


class _Console(code.InteractiveConsole):
    def __init__(self, stream: _SocketFile, locals: dict) -> None:
        code.InteractiveConsole.__init__(self, locals)
        self._stream = stream

    def raw_input(self, prompt: str = "") -> str:
        stream = self._stream
        if stream.closed:
            raise EOFError
        stream.write(prompt)
        line = stream.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    def write(self, data: str) -> None:
        self._stream.write(data)


class BackdoorServer(StreamServer):
    """A TCP server giving each connection an interactive Python console.

    ``locals``: names available in each console (copied per connection);
    ``banner``: greeting printed on connect (default: the Python version).
    Other keyword arguments go to :class:`~greenweave.server.StreamServer`
    (``spawn``, TLS settings...).
    """

    def __init__(self, listener: Any, locals: dict | None = None, banner: str | None = None,
                 **server_args: Any) -> None:
        StreamServer.__init__(self, listener, spawn=server_args.pop("spawn", "default"),
                              **server_args)
        namespace = {"__doc__": None, "__name__": "__console__"}
        if locals:
            namespace.update(locals)
        self.locals = namespace
        self.banner = banner

    def _create_interactive_locals(self) -> dict:
        """A fresh namespace for one console (the server's ``locals`` copied)."""
        namespace = dict(self.locals)
        namespace.setdefault("__builtins__", __builtins__)
        return namespace

    def _default_banner(self) -> str:
        return (f"Python {sys.version.split()[0]} on {sys.platform} "
                f"(greenweave backdoor; quit() or end-of-file closes this connection)")

    def handle(self, conn: Any, address: Any) -> None:
        """Run a console on ``conn`` until the client quits or disconnects."""
        stream = _SocketFile(conn)
        console = _Console(stream, self._create_interactive_locals())
        me = getcurrent()
        _redirect(me, stream)
        try:
            try:
                banner = self.banner if self.banner is not None else self._default_banner()
                console.interact(banner=banner, exitmsg="")
            except SystemExit:
                pass
            except OSError:
                pass  # the connection went away
        finally:
            _unredirect(me)
            try:
                conn.close()
            except OSError:
                pass
