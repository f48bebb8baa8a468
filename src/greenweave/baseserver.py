"""The server life cycle shared by :mod:`greenweave.server` and :mod:`greenweave.pywsgi`.

A :class:`BaseServer` owns a listening socket and an *accept loop*: a read
I/O watcher on that socket whose callback (running in the hub) accepts up to
:attr:`~BaseServer.max_accept` connections per wake-up and hands each to
``handle``, in a new greenlet (``spawn='default'``), through a pool
(``spawn=Pool(...)`` or ``spawn=N``), or inline (``spawn=None``: the accept
loop then runs in a greenlet of its own, so ``handle`` may block; the next
connection is accepted once it returns).

Why a watcher and not an ``accept()`` loop in a greenlet: a wake-up costs no
greenlet switch, and a burst of connections is drained in one callback.

Failures in the accept loop never stop the server: ``EMFILE``/``ENFILE``
(out of descriptors) and other transient errors are logged, the loop backs
off for :attr:`~BaseServer.min_delay` seconds (doubling up to
:attr:`~BaseServer.max_delay`) and resumes by itself; only errors meaning the
listener itself is gone (:attr:`~BaseServer.fatal_errors`) close the server.
An exception escaping a handler is reported by the hub and ends that
connection's greenlet only.
"""

from __future__ import annotations

import _socket
import errno
import sys
from typing import Any, Callable

from greenlet import GreenletExit, getcurrent

from ._core.hub import get_hub
from ._core.park import ParkingLot
from .greenlet import Greenlet, joinall, killall

__all__ = ["BaseServer"]

_ss_accept = _socket.socket._accept

# Accept errors that only mean "this one connection went away before we got it".
_IGNORED_ACCEPT_ERRORS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EAGAIN,
                                    errno.EWOULDBLOCK, errno.EINTR})


def _parse_address(address: Any) -> tuple[int, Any]:
    """``(family, sockaddr)`` for a tuple, ``'host:port'``, ``':port'``,
    ``'[v6]:port'``, a bare port string or an int."""
    if isinstance(address, tuple):
        if not address:
            raise ValueError("Failed to parse address (): empty tuple")
        host = address[0]
        if isinstance(host, str) and ":" in host or len(address) == 4:
            return _socket.AF_INET6, address
        return _socket.AF_INET, address
    if isinstance(address, bytes):
        address = address.decode("ascii")
    if isinstance(address, int) and not isinstance(address, bool):
        return _socket.AF_INET, ("", address)
    if not isinstance(address, str):
        raise TypeError(f"Expected tuple or string, got {type(address).__name__} ({address!r})")
    try:
        if ":" in address:
            host, port_text = address.rsplit(":", 1)
        else:
            host, port_text = "", address
        family = _socket.AF_INET
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
            family = _socket.AF_INET6
        elif ":" in host:
            family = _socket.AF_INET6
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0-65535, got {port}")
    except ValueError as exc:
        raise ValueError(f"Failed to parse address {address!r}: {exc}") from None
    return family, (host, port)


class _TrackedGreenlet(Greenlet):
    """A handler greenlet that leaves its server's set of running handlers
    when it ends (cheaper than a link, and its repr names the handler)."""

    _server_handlers: set

    def run(self) -> None:
        try:
            Greenlet.run(self)
        finally:
            self._server_handlers.discard(self)


class BaseServer:
    """A server: a listener, a handle function, and how to run each handle.

    ``listener`` is an address (``('host', port)``, ``'host:port'``,
    ``':port'``, ``'[::1]:port'``) or an already bound socket. ``handle`` is
    called with what :meth:`do_read` produced (for TCP ``(socket, address)``);
    a subclass may define a ``handle`` method instead.  ``spawn`` decides
    where it runs: ``'default'`` (a new :class:`~greenweave.Greenlet` per
    connection), a pool object with ``spawn()`` (``full()`` is honoured: the
    server stops accepting while the pool is full), an int (a
    :class:`~greenweave.pool.Pool` of that size), ``None`` (inline in the
    accept loop) or any callable ``spawn(handle, *args)``.
    """

    #: Back-off after a failed accept: first delay, and its cap (seconds).
    min_delay = 0.01
    max_delay = 1
    #: Connections accepted per wake-up of the accept loop (at most).
    max_accept = 100
    #: Seconds :meth:`stop` waits for handlers by default.
    stop_timeout = 1
    #: ``errno`` values of accept errors that mean the listener is unusable:
    #: the server closes itself instead of retrying.
    fatal_errors: tuple = (errno.EBADF, errno.EINVAL, errno.ENOTSOCK)
    #: Errors that mean "out of descriptors/memory": accepting pauses and resumes.
    resource_errors: tuple = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

    _spawn: Any = None
    socket: Any = None
    family: int = _socket.AF_INET
    ssl_enabled = False

    def __init__(self, listener: Any, handle: Callable[..., Any] | None = None,
                 spawn: Any = "default") -> None:
        self._stopped = True  # not started yet (or stopped)
        self._closed = False
        self._stop_lot = ParkingLot()
        self._watcher: Any = None
        self._accepting = False
        self._start_accepting_timer: Any = None
        self._pool_waiter: Any = None
        self._acceptor: Any = None
        self._handlers: set = set()
        self.pool: Any = None
        self.delay = self.min_delay
        self.loop = get_hub().loop
        try:
            self.set_listener(listener)
            self.set_spawn(spawn)
            self.set_handle(handle)
        except BaseException:
            self.close()
            raise

    # -- configuration -------------------------------------------------
    def set_listener(self, listener: Any) -> None:
        """Use ``listener``: a bound socket, or an address to bind at :meth:`start`."""
        if hasattr(listener, "accept") or hasattr(listener, "recvfrom"):
            if hasattr(listener, "do_handshake"):
                raise TypeError(f"Expected a regular socket, not SSLSocket: {listener!r}")
            self.family = listener.family
            self.address = listener.getsockname()
            self.socket = listener
        else:
            self.family, self.address = _parse_address(listener)

    def set_spawn(self, spawn: Any) -> None:
        """Choose how handlers run (see the class docstring)."""
        if isinstance(spawn, str):
            if spawn != "default":
                raise TypeError(f"spawn must be 'default', a pool, an int, None or a "
                                f"callable; got {spawn!r}")
            self.pool = None
            self._spawn = self._spawn_tracked
        elif spawn is None:
            self.pool = None
            self._spawn = None
        elif hasattr(spawn, "spawn"):
            self.pool = spawn
            self._spawn = spawn.spawn
        elif isinstance(spawn, int) and not isinstance(spawn, bool):
            if spawn < 1:
                raise ValueError(f"pool size must be at least 1, got {spawn}")
            from .pool import Pool

            self.pool = Pool(spawn)
            self._spawn = self.pool.spawn
        elif callable(spawn):
            self.pool = None
            self._spawn = spawn
        else:
            raise TypeError(f"spawn must be 'default', a pool, an int, None or a callable; "
                            f"got {spawn!r}")

    def set_handle(self, handle: Callable[..., Any] | None) -> None:
        """Use ``handle`` (or, if None, this class's ``handle`` method)."""
        if handle is not None:
            if not callable(handle):
                raise TypeError(f"'handle' must be callable, not {handle!r}")
            self.handle = handle
        if not callable(getattr(self, "handle", None)):
            raise TypeError("'handle' must be provided")
        self._handle = self.handle

    # -- state ---------------------------------------------------------
    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`stop`/:meth:`close`."""
        return not self._stopped

    @property
    def closed(self) -> bool:
        """True when there is no open listening socket (before start with an
        address listener, and after :meth:`close`)."""
        return self.socket is None

    @property
    def server_host(self) -> Any:
        address = self.address
        return address[0] if isinstance(address, tuple) else None

    @property
    def server_port(self) -> Any:
        address = self.address
        return address[1] if isinstance(address, tuple) else None

    def full(self) -> bool:
        """True while the pool (if any) has no free slot."""
        pool = self.pool
        return pool is not None and pool.full()

    # -- life cycle ----------------------------------------------------
    def init_socket(self) -> None:
        """Create the listening socket if the listener was an address (subclasses)."""

    def start(self) -> None:
        """Open the listener (if needed) and start accepting; returns at once."""
        if not self._stopped:
            raise AssertionError(f"{type(self).__name__} already started")
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed and cannot be started again")
        self.init_socket()
        self._stopped = False
        try:
            self.start_accepting()
        except BaseException:
            self.close()
            raise

    def serve_forever(self, stop_timeout: float | None = None) -> None:
        """Start (if needed) and block until the server is stopped; then :meth:`stop`
        it with ``stop_timeout`` (also when this greenlet is killed)."""
        if self._stopped:
            self.start()
        try:
            while not self._stopped:
                self._stop_lot.park()
        finally:
            Greenlet.spawn(self.stop, timeout=stop_timeout).join()

    def close(self) -> None:
        """Stop accepting and close the listening socket; handlers keep running."""
        self._closed = True
        self._stopped = True
        try:
            self.stop_accepting()
        finally:
            watcher, self._watcher = self._watcher, None
            if watcher is not None:
                watcher.close()
            waiter, self._pool_waiter = self._pool_waiter, None
            if waiter is not None and waiter is not getcurrent():
                waiter.kill(block=False)
            sock, self.socket = self.socket, None
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
            self._stop_lot.unpark_all()

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, wait up to ``timeout`` (default :attr:`stop_timeout`)
        for the running handlers to finish, then kill those still running."""
        self.close()
        if timeout is None:
            timeout = self.stop_timeout
        pool = self.pool
        if pool is not None:
            pool.join(timeout=timeout)
            pool.kill(block=True, timeout=1)
            return
        handlers = [g for g in self._handlers if getcurrent() is not g]
        if handlers:
            joinall(handlers, timeout=timeout)
            alive = [g for g in handlers if not g.dead]
            if alive:
                killall(alive, block=True, timeout=1)

    def __enter__(self) -> BaseServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- the accept loop -------------------------------------------------
    def start_accepting(self) -> None:
        """Watch the listener for incoming connections."""
        if self._accepting:
            return
        self._accepting = True
        watcher = self._watcher
        if watcher is None:
            # The accept loop calls the C accept directly from the hub: the
            # descriptor must be non-blocking whatever kind of socket it is.
            _socket.socket.setblocking(self.socket, False)
            watcher = self._watcher = self.loop.io(self.socket.fileno(), 1)
        if self._spawn is None:
            # Inline handling may block: run the loop in a greenlet of its own.
            if self._acceptor is None or self._acceptor.dead:
                self._acceptor = Greenlet.spawn(self._accept_inline)
        else:
            watcher.start(self._do_read)

    def stop_accepting(self) -> None:
        """Stop watching the listener (pending connections wait in the backlog)."""
        self._accepting = False
        if self._watcher is not None:
            self._watcher.stop()
        timer, self._start_accepting_timer = self._start_accepting_timer, None
        if timer is not None:
            timer.close()
        acceptor = self._acceptor
        if acceptor is not None and getcurrent() is not acceptor \
                and acceptor not in self._handlers:
            # Waiting for a connection: stop it.  (Busy running a handler
            # inline: it leaves its loop by itself; stop() waits for it.)
            self._acceptor = None
            acceptor.kill(block=False)

    def _start_accepting_if_started(self, *_args: Any) -> None:
        if self.started and not self._closed:
            self.start_accepting()

    def _accept_inline(self) -> None:
        hub = get_hub()
        while self._accepting and self._watcher is not None:
            hub.wait(self._watcher)
            self._do_read()

    def _do_read(self) -> None:
        """Accept up to :attr:`max_accept` connections and hand each to its handler."""
        for _ in range(self.max_accept):
            if self.full():
                self.stop_accepting()
                self._wait_for_pool()
                return
            try:
                args = self.do_read()
                self.delay = self.min_delay
                if not args:
                    return
            except BaseException as exc:
                if not self._accept_failed(exc):
                    raise
                return
            try:
                self.do_handle(*args)
            except BaseException as exc:
                if isinstance(exc, (GreenletExit, KeyboardInterrupt, SystemExit)) \
                        and self._spawn is None:
                    self.do_close(*args)
                    raise
                self.loop.handle_error((args[1:], self), *sys.exc_info())
                self.do_close(*args)
                if self._spawn is not None:
                    self._back_off()
                    return
            if not self._accepting:
                return

    def _accept_failed(self, exc: BaseException) -> bool:
        """Deal with an exception from :meth:`do_read`; False: not ours to handle."""
        if not isinstance(exc, Exception):
            return False
        err = getattr(exc, "errno", None)
        if err in _IGNORED_ACCEPT_ERRORS:
            return True
        self.loop.handle_error(self, type(exc), exc, exc.__traceback__)
        if self.is_fatal_error(exc):
            self.close()
            sys.stderr.write(f"ERROR: {self} failed with {type(exc).__name__}\n")
            return True
        self._back_off()
        return True

    def _back_off(self) -> None:
        """Pause accepting for ``delay`` seconds (doubling each time, up to max_delay)."""
        if self.delay < 0:
            return
        self.stop_accepting()
        timer = self._start_accepting_timer = self.loop.timer(self.delay)
        timer.start(self._start_accepting_if_started)
        self.delay = min(self.max_delay, self.delay * 2)

    def _wait_for_pool(self) -> None:
        if self._pool_waiter is not None and not self._pool_waiter.dead:
            return
        self._pool_waiter = Greenlet.spawn(self._resume_when_pool_available)

    def _resume_when_pool_available(self) -> None:
        pool = self.pool
        while pool is not None and not self._closed:
            pool.wait_available()
            if not pool.full():
                self._pool_waiter = None
                self._start_accepting_if_started()
                return

    def is_fatal_error(self, ex: BaseException) -> bool:
        """True if ``ex`` (from accepting) means the listener is unusable."""
        return isinstance(ex, OSError) and ex.errno in self.fatal_errors

    def do_read(self) -> Any:
        """Accept one connection; return the handler's arguments, or None if there
        was nothing to accept.  Subclasses implement it."""
        raise NotImplementedError

    def do_handle(self, *args: Any) -> None:
        """Run the handler for one accepted connection (as ``spawn`` says)."""
        spawn = self._spawn
        if spawn is None:
            cur = getcurrent()
            self._handlers.add(cur)
            try:
                self._handle(*args)
            except (GreenletExit, KeyboardInterrupt, SystemExit):
                raise
            except Exception:
                self.loop.handle_error((args[1:], self), *sys.exc_info())
            finally:
                self._handlers.discard(cur)
        else:
            spawn(self._handle, *args)

    def do_close(self, *args: Any) -> None:
        """Release what :meth:`do_read` produced when it could not be handled."""

    def _spawn_tracked(self, handle: Callable[..., Any], *args: Any) -> Greenlet:
        """``spawn='default'``: one Greenlet per connection, remembered until it
        ends so that :meth:`stop` can wait for it."""
        g = _TrackedGreenlet(handle, *args)
        handlers = g._server_handlers = self._handlers
        handlers.add(g)
        g.start()
        return g

    # -- display -------------------------------------------------------
    def _formatinfo(self) -> str:
        parts = []
        sock = self.socket
        if sock is not None:
            try:
                parts.append(f"fileno={sock.fileno()}")
            except Exception:
                pass
        address = self.address
        if isinstance(address, tuple) and len(address) >= 2:
            host = address[0]
            if isinstance(host, str) and ":" in host:
                host = f"[{host}]"
            parts.append(f"address={host}:{address[1]}")
        else:
            parts.append(f"address={address!r}")
        handle = getattr(self, "handle", None)
        if handle is not None and getattr(handle, "__func__", None) is None:
            parts.append(f"handle={handle!r}")
        if self.pool is not None:
            parts.append(f"pool={self.pool!r}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self._formatinfo()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._formatinfo()}>"
