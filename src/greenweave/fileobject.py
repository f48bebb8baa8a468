"""File objects that block only the calling greenlet.

Three implementations share one constructor and one shape (an ``io`` object
wrapped with ``open()``-like semantics):

* :class:`FileObjectThread` runs every blocking operation of an ordinary
  ``io`` object in the hub's native thread pool.  Works for anything,
  including regular files on slow disks.  The default :data:`FileObject`
  (``GREENWEAVE_FILEOBJECT`` / ``config.fileobject`` chooses another).
* :class:`FileObjectPosix` puts the descriptor in non-blocking mode and waits
  for readiness with the loop's I/O watchers: for pipes, ttys and sockets.
  It is a standard ``io`` stack (``BufferedReader`` / ``BufferedWriter`` /
  ``TextIOWrapper``) over :class:`CooperativeFileIO`, a raw file whose
  ``readinto``/``write`` park the greenlet instead of returning ``None``.
  (Regular files are always "ready"; they are read and written directly.)
* :class:`FileObjectBlock` wraps the file and adds nothing: plain blocking I/O.

Constructor (all three): ``(fobj, mode=None, bufsize=None, close=None,
encoding=None, errors=None, newline=None, buffering=None, closefd=None)``.
``fobj`` is a descriptor, a path or a file object.  ``mode`` defaults to the
file object's own mode, else ``'r'``.  ``bufsize``/``close`` are the older
spellings of ``buffering``/``closefd``.  ``closefd=False`` leaves the
descriptor (or the wrapped file object) open on ``close()``.  Closing twice
is fine; any other operation on a closed file object raises
:class:`FileObjectClosed`, which is both a ``ValueError`` (as for ``open()``)
and an ``OSError`` with ``errno.EBADF`` (as gevent raises).
"""

from __future__ import annotations

import io
import os
from errno import EBADF, ESPIPE
from stat import S_ISBLK, S_ISDIR, S_ISREG
from typing import Any, Callable

from greenlet import getcurrent
from greenlet import greenlet as _RawGreenlet

from ._config import config
from ._core.hub import get_hub, get_hub_if_exists
from ._core.park import ParkingLot
from .exceptions import BlockingSwitchOutError, ConcurrentObjectUseError

__all__ = [
    "FileObject",
    "FileObjectBlock",
    "FileObjectClosed",
    "FileObjectPosix",
    "FileObjectThread",
    "CooperativeFileIO",
]

_READ = 1
_WRITE = 2
_switch = _RawGreenlet.switch
_CHUNK = 65536


class FileObjectClosed(OSError, ValueError):
    """An operation on a closed file object (a ``ValueError`` and an ``EBADF`` OSError)."""

    def __init__(self, message: str = "I/O operation on closed file") -> None:
        OSError.__init__(self, EBADF, message)


# ---------------------------------------------------------------------------
# Argument handling shared by the three classes


class _Mode:
    """A parsed ``open()`` mode string."""

    __slots__ = ("text", "reading", "writing", "binary", "plus")

    def __init__(self, mode: str) -> None:
        if not isinstance(mode, str):
            raise TypeError(f"mode must be a str, not {type(mode).__name__}")
        chars = set(mode)
        if not chars <= set("rwxabt+") or len(mode) != len(chars):
            raise ValueError(f"invalid mode: {mode!r}")
        kinds = sum(c in chars for c in "rwxa")
        if kinds != 1 or ("b" in chars and "t" in chars):
            raise ValueError(f"invalid mode: {mode!r}")
        self.text = mode
        self.plus = "+" in chars
        self.reading = "r" in chars or self.plus
        self.writing = bool(chars & set("wxa")) or self.plus
        self.binary = "b" in chars

    @property
    def raw_mode(self) -> str:
        """The same mode for a binary, unbuffered ``FileIO``."""
        kind = next(c for c in self.text if c in "rwxa")
        return kind + "b" + ("+" if self.plus else "")


def _raise_closed(*args: Any, **kwargs: Any) -> Any:
    raise FileObjectClosed()


def _merge(primary: Any, legacy: Any, default: Any, names: str) -> Any:
    if primary is None:
        return default if legacy is None else legacy
    if legacy is not None and legacy != primary:
        raise ValueError(f"give only one of {names}")
    return primary


def _check_text_args(mode: _Mode, buffering: int, encoding: Any, errors: Any,
                     newline: Any) -> None:
    if mode.binary:
        if encoding is not None:
            raise ValueError("binary mode doesn't take an encoding argument")
        if errors is not None:
            raise ValueError("binary mode doesn't take an errors argument")
        if newline is not None:
            raise ValueError("binary mode doesn't take a newline argument")
    elif buffering == 0:
        raise ValueError("can't have unbuffered text I/O")


def _is_path(fobj: Any) -> bool:
    return isinstance(fobj, (str, bytes, os.PathLike))


class FileObjectBase:
    """What the three file objects share: the wrapped ``io`` object, ``close``
    semantics, iteration, the context manager and attribute delegation.

    Attributes not defined here (``encoding``, ``newlines``, ``peek``,
    ``read1`` ...) come from the wrapped ``io`` object.
    """

    #: Methods looked up once on the ``io`` object and cached on the instance.
    _io: Any = None
    _closed = False
    _closefd = True

    def __init__(self, fileobj: Any, mode: str, closefd: bool) -> None:
        self._io = fileobj
        self._mode = mode
        self._closefd = closefd

    @property
    def io(self) -> Any:
        """The wrapped ``io`` object."""
        return self._io

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def name(self) -> Any:
        return getattr(self._io, "name", None)

    def fileno(self) -> int:
        if self._closed:
            raise FileObjectClosed()
        return self._io.fileno()

    def isatty(self) -> bool:
        if self._closed:
            raise FileObjectClosed()
        return self._io.isatty()

    def readable(self) -> bool:
        if self._closed:
            raise FileObjectClosed()
        return self._io.readable()

    def writable(self) -> bool:
        if self._closed:
            raise FileObjectClosed()
        return self._io.writable()

    def seekable(self) -> bool:
        if self._closed:
            raise FileObjectClosed()
        return self._io.seekable()

    def close(self) -> None:
        """Flush and close; the descriptor too unless ``closefd=False``.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._do_close(self._io, self._closefd)

    def _do_close(self, fobj: Any, closefd: bool) -> None:
        if closefd:
            fobj.close()
        else:
            fobj.flush()

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found normally.  ``_io`` is a class
        # attribute, so this cannot recurse during __init__.
        if name.startswith("__"):
            raise AttributeError(name)
        if self._closed and name in self._delegated_methods:
            # The io object may still be open (closefd=False): refuse anyway.
            return _raise_closed
        return getattr(self._io, name)

    _delegated_methods = frozenset((
        "read", "read1", "readinto", "readinto1", "readline", "readlines", "readall",
        "write", "writelines", "flush", "seek", "tell", "truncate", "peek", "detach",
    ))

    def __iter__(self) -> FileObjectBase:
        return self

    def __next__(self) -> Any:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    next = __next__

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} at {id(self):#x}{state} io={self._io!r}>"


def _open_plain(cls_name: str, fobj: Any, mode: str | None, buffering: int, encoding: Any,
                errors: Any, newline: Any, closefd: bool) -> tuple[Any, str, bool]:
    """Open/adopt ``fobj`` as an ordinary io object: returns (io, mode, closefd)."""
    if isinstance(fobj, int) or _is_path(fobj):
        mode = "r" if mode is None else mode
        parsed = _Mode(mode)
        _check_text_args(parsed, buffering, encoding, errors, newline)
        if isinstance(fobj, bool):
            raise TypeError(f"{cls_name} needs a descriptor, path or file object, not a bool")
        return io.open(fobj, mode, buffering, encoding, errors, newline, closefd), mode, True
    if not hasattr(fobj, "read") and not hasattr(fobj, "write"):
        raise TypeError(f"{cls_name} needs a descriptor, path or file object, not {fobj!r}")
    own_mode = getattr(fobj, "mode", None)
    if mode is None:
        mode = own_mode if isinstance(own_mode, str) else "r"
        return fobj, mode, closefd
    parsed = _Mode(mode)
    if not parsed.binary and not isinstance(fobj, io.TextIOBase) and \
            not hasattr(fobj, "encoding"):
        # A binary file object opened in text mode: decode on top of it.
        fobj = io.TextIOWrapper(fobj, encoding=io.text_encoding(encoding), errors=errors,
                                newline=newline, line_buffering=(buffering == 1))
    return fobj, mode, closefd


# ---------------------------------------------------------------------------
# FileObjectBlock


class FileObjectBlock(FileObjectBase):
    """A plain, blocking file object with the common constructor (no cooperation)."""

    def __init__(self, fobj: Any, mode: str | None = None, bufsize: int | None = None,
                 close: bool | None = None, encoding: str | None = None,
                 errors: str | None = None, newline: str | None = None,
                 buffering: int | None = None, closefd: bool | None = None,
                 atomic_write: bool = False) -> None:
        buffering = _merge(buffering, bufsize, -1, "buffering and bufsize")
        closefd = _merge(closefd, close, True, "closefd and close")
        fileobj, mode, closefd = _open_plain(type(self).__name__, fobj, mode, buffering,
                                            encoding, errors, newline, closefd)
        FileObjectBase.__init__(self, fileobj, mode, closefd)


# ---------------------------------------------------------------------------
# FileObjectThread


class _Mutex:
    """Serialises one FileObjectThread's operations (a thin layer over ParkingLot)."""

    __slots__ = ("_locked", "_lot")

    def __init__(self) -> None:
        self._locked = False
        self._lot = ParkingLot()

    def __enter__(self) -> None:
        while self._locked:
            self._lot.park()
        self._locked = True

    def __exit__(self, *exc: Any) -> None:
        self._locked = False
        if self._lot:
            self._lot.unpark()


class _NoLock:
    __slots__ = ()

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        pass


def _next_line(fobj: Any) -> Any:
    return fobj.readline()


class FileObjectThread(FileObjectBase):
    """Runs the wrapped file's blocking operations in the hub's thread pool.

    Only the calling greenlet waits.  Operations on one object are serialised
    (``lock=False`` turns that off, ``lock`` may also be any context manager).
    ``threadpool`` defaults to the creating thread's ``get_hub().threadpool``.
    """

    def __init__(self, fobj: Any, mode: str | None = None, bufsize: int | None = None,
                 close: bool | None = None, encoding: str | None = None,
                 errors: str | None = None, newline: str | None = None,
                 buffering: int | None = None, closefd: bool | None = None,
                 atomic_write: bool = False, *, threadpool: Any = None,
                 lock: Any = True) -> None:
        buffering = _merge(buffering, bufsize, -1, "buffering and bufsize")
        closefd = _merge(closefd, close, True, "closefd and close")
        fileobj, mode, closefd = _open_plain(type(self).__name__, fobj, mode, buffering,
                                            encoding, errors, newline, closefd)
        FileObjectBase.__init__(self, fileobj, mode, closefd)
        self.threadpool = threadpool
        if lock is True:
            lock = _Mutex()
        elif not lock:
            lock = _NoLock()
        self.lock = lock

    def _apply(self, fn: Callable[..., Any], args: tuple = ()) -> Any:
        if self._closed:
            raise FileObjectClosed()
        pool = self.threadpool
        if pool is None:
            pool = self.threadpool = get_hub().threadpool
        if getcurrent() is get_hub_if_exists():
            # A loop callback (the hub printing an error to a patched
            # sys.stderr, say) cannot wait: run it right here.
            return fn(*args)
        with self.lock:
            return pool.apply(fn, args)

    def read(self, size: int = -1) -> Any:
        return self._apply(self._io.read, (size,))

    def read1(self, size: int = -1) -> Any:
        return self._apply(self._io.read1, (size,))

    def readinto(self, buffer: Any) -> int:
        return self._apply(self._io.readinto, (buffer,))

    def readline(self, size: int = -1) -> Any:
        return self._apply(self._io.readline, (size,))

    def readlines(self, hint: int = -1) -> list:
        return self._apply(self._io.readlines, (hint,))

    def readall(self) -> bytes:
        return self._apply(self._io.readall)

    def write(self, data: Any) -> int:
        return self._apply(self._io.write, (data,))

    def writelines(self, lines: Any) -> None:
        # Materialise a generator here: it may not be safe to run in a thread.
        return self._apply(self._io.writelines, (list(lines),))

    def flush(self) -> None:
        return self._apply(self._io.flush)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._apply(self._io.seek, (offset, whence))

    def tell(self) -> int:
        return self._apply(self._io.tell)

    def truncate(self, size: int | None = None) -> int:
        return self._apply(self._io.truncate, (size,))

    def __next__(self) -> Any:
        line = self._apply(_next_line, (self._io,))
        if not line:
            raise StopIteration
        return line

    next = __next__

    def close(self) -> None:
        """Flush and close in the thread pool (waits for it).  Idempotent."""
        if self._closed:
            return
        fobj, closefd = self._io, self._closefd
        try:
            pool = self.threadpool
            if pool is None:
                pool = self.threadpool = get_hub().threadpool
            if getcurrent() is get_hub_if_exists():
                self._closed = True
                self._do_close(fobj, closefd)
                return
            with self.lock:
                self._closed = True
                pool.apply(self._do_close, (fobj, closefd))
        finally:
            self._closed = True


# ---------------------------------------------------------------------------
# FileObjectPosix


class CooperativeFileIO(io.RawIOBase):
    """A raw, unbuffered file over a descriptor that parks the greenlet on EAGAIN.

    The descriptor is switched to non-blocking mode (unless it is a regular
    file or block device, which epoll cannot watch and which never return
    EAGAIN anyway) and switched back on close if it stays open.  ``write``
    writes everything it is given, as a blocking pipe would.  One greenlet
    may wait to read and one to write at a time; a second concurrent waiter
    gets :class:`~greenweave.exceptions.ConcurrentObjectUseError`.  Closing
    wakes a waiting greenlet with ``FileObjectClosed`` (``EBADF``).
    """

    def __init__(self, fd: int, mode: str = "r", closefd: bool = True, owner: Any = None,
                 name: Any = None) -> None:
        io.RawIOBase.__init__(self)
        parsed = _Mode(mode) if not isinstance(mode, _Mode) else mode
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"fd must be an int, not {type(fd).__name__}")
        if fd < 0:
            raise ValueError(f"negative file descriptor: {fd}")
        st = os.fstat(fd)  # raises EBADF for a bad descriptor
        if S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"Is a directory: {name if name is not None else fd!r}")
        self._fd = fd
        self._readable = parsed.reading
        self._writable = parsed.writing
        self._closefd = closefd
        self._owner = owner
        self.name = fd if name is None else name
        self.mode = parsed.raw_mode
        self._restore_blocking = False
        self._pollable = not (S_ISREG(st.st_mode) or S_ISBLK(st.st_mode))
        if self._pollable and os.get_blocking(fd):
            os.set_blocking(fd, False)
            self._restore_blocking = True
        self._seekable: bool | None = None
        # Bound to the creating thread's hub, like a socket; the watchers
        # are made on the first wait and kept for the object's lifetime.
        self._hub: Any = get_hub()
        self._read_watcher: Any = None
        self._write_watcher: Any = None

    # -- waiting ----------------------------------------------------------
    def _wait(self, events: int) -> None:
        """Park this greenlet until the descriptor is readable/writable.

        A spurious wake-up is harmless: every caller retries the system call.
        """
        hub = self._hub
        if events == _READ:
            watcher = self._read_watcher
            if watcher is None:
                watcher = self._read_watcher = hub.loop.io(self._fd, _READ)
        else:
            watcher = self._write_watcher
            if watcher is None:
                watcher = self._write_watcher = hub.loop.io(self._fd, _WRITE)
        cur = getcurrent()
        if watcher.callback is not None:
            what = "read from" if events == _READ else "written to"
            raise ConcurrentObjectUseError(
                f"{self!r} is already being {what} by another greenlet "
                f"(this one is {cur!r})")
        if cur is hub:
            raise BlockingSwitchOutError(
                "Impossible to call blocking function in the event loop callback "
                f"(tried to wait for {self!r} from the hub greenlet)")
        try:
            watcher.start(cur.switch)
            _switch(hub)
        finally:
            watcher.stop()

    # -- the RawIOBase interface -----------------------------------------
    def readinto(self, buffer: Any) -> int:
        fd = self._fd
        if fd < 0:
            raise FileObjectClosed()
        if not self._readable:
            raise io.UnsupportedOperation("File not open for reading")
        while True:
            try:
                return os.readv(fd, (buffer,))
            except BlockingIOError:
                self._wait(_READ)
            fd = self._fd
            if fd < 0:
                raise FileObjectClosed()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        fd = self._fd
        if fd < 0:
            raise FileObjectClosed()
        if not self._readable:
            raise io.UnsupportedOperation("File not open for reading")
        while True:
            try:
                return os.read(fd, size)
            except BlockingIOError:
                self._wait(_READ)
            fd = self._fd
            if fd < 0:
                raise FileObjectClosed()

    def readall(self) -> bytes:
        chunks = []
        while True:
            data = self.read(_CHUNK)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def write(self, data: Any) -> int:
        fd = self._fd
        if fd < 0:
            raise FileObjectClosed()
        if not self._writable:
            raise io.UnsupportedOperation("File not open for writing")
        written = 0
        if type(data) is bytes:  # the common case: one syscall, no view
            try:
                written = os.write(fd, data)
            except BlockingIOError:
                pass
            if written == len(data):
                return written
        view = memoryview(data)
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        elif view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        total = view.nbytes
        while written < total:
            try:
                written += os.write(fd, view[written:])
            except BlockingIOError:
                self._wait(_WRITE)
                if self._fd < 0:
                    raise FileObjectClosed()
                fd = self._fd
        return total

    def readable(self) -> bool:
        self._checkClosed()
        return self._readable

    def writable(self) -> bool:
        self._checkClosed()
        return self._writable

    def seekable(self) -> bool:
        self._checkClosed()
        if self._seekable is None:
            try:
                os.lseek(self._fd, 0, os.SEEK_CUR)
            except OSError as exc:
                if exc.errno != ESPIPE:
                    raise
                self._seekable = False
            else:
                self._seekable = True
        return self._seekable

    def seek(self, offset: int, whence: int = 0) -> int:
        self._checkClosed()
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return self.seek(0, os.SEEK_CUR)

    def truncate(self, size: int | None = None) -> int:
        self._checkClosed()
        if size is None:
            size = self.tell()
        os.ftruncate(self._fd, size)
        return size

    def fileno(self) -> int:
        self._checkClosed()
        return self._fd

    def isatty(self) -> bool:
        self._checkClosed()
        return os.isatty(self._fd)

    def close(self) -> None:
        if self.closed:
            return
        try:
            io.RawIOBase.close(self)
        finally:
            self._release()

    def _release(self) -> None:
        fd = self._fd
        if fd < 0:
            return
        self._fd = -1
        hub = self._hub
        loop = hub.loop
        if not loop.closed:
            for watcher in (self._read_watcher, self._write_watcher):
                if watcher is None:
                    continue
                if watcher.callback is not None:
                    # A greenlet is parked on it: wake it with EBADF; the
                    # watcher is closed once it has been woken.
                    hub.cancel_wait(watcher, FileObjectClosed(
                        "File descriptor was closed in another greenlet"), True)
                else:
                    watcher.close()
            # Forget the descriptor before it is closed: the number may be
            # reused at once by an unrelated file.
            loop.closing_fd(fd)
        self._read_watcher = self._write_watcher = None
        if self._closefd:
            if self._owner is not None:
                self._owner.close()
            else:
                os.close(fd)
        else:
            if self._restore_blocking:
                try:
                    os.set_blocking(fd, True)
                except OSError:
                    pass

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"<{type(self).__name__} {state} name={self.name!r} mode={self.mode!r}>"


class FileObjectPosix(FileObjectBase):
    """A cooperative file object over a non-blocking descriptor (pipes, ttys, sockets).

    ``read``/``write`` and friends block only the calling greenlet: the
    descriptor is waited on with the loop's I/O watchers.  Given a file
    object, it works on that object's descriptor (anything the object had
    already read ahead into its own buffer is not seen) and closes the
    object on ``close()`` unless ``closefd=False``.  Extra keyword
    arguments ``line_buffering`` and ``write_through`` are passed to the
    ``TextIOWrapper`` in text mode.  The raw layer is available as
    ``fileio``.
    """

    default_bufsize = io.DEFAULT_BUFFER_SIZE

    def __init__(self, fobj: Any, mode: str | None = None, bufsize: int | None = None,
                 close: bool | None = None, encoding: str | None = None,
                 errors: str | None = None, newline: str | None = None,
                 buffering: int | None = None, closefd: bool | None = None,
                 atomic_write: bool = False, *, line_buffering: bool | None = None,
                 write_through: bool = False) -> None:
        buffering = _merge(buffering, bufsize, -1, "buffering and bufsize")
        closefd = _merge(closefd, close, True, "closefd and close")
        owner = None
        name: Any = None
        if isinstance(fobj, bool):
            raise TypeError("FileObjectPosix needs a descriptor, path or file object, not a bool")
        if isinstance(fobj, int):
            fd = fobj
            mode = "r" if mode is None else mode
        elif _is_path(fobj):
            mode = "r" if mode is None else mode
            if not closefd:
                raise ValueError("Cannot use closefd=False with file name")
            owner = io.open(fobj, _Mode(mode).raw_mode, buffering=0)
            fd = owner.fileno()
            name = owner.name
        elif hasattr(fobj, "fileno"):
            if mode is None:
                own_mode = getattr(fobj, "mode", None)
                mode = own_mode if isinstance(own_mode, str) else "r"
            if getattr(fobj, "closed", False):
                raise FileObjectClosed()
            if hasattr(fobj, "flush") and getattr(fobj, "writable", lambda: False)():
                fobj.flush()  # nothing of it may be left in its own buffer
            fd = fobj.fileno()
            owner = fobj
            name = getattr(fobj, "name", None)
        else:
            raise TypeError(
                f"FileObjectPosix needs a descriptor, path or file object, not {fobj!r}")
        parsed = _Mode(mode)
        _check_text_args(parsed, buffering, encoding, errors, newline)
        try:
            raw = CooperativeFileIO(fd, parsed, closefd, owner, name)
        except BaseException:
            if owner is not None and _is_path(fobj):
                owner.close()
            raise
        self.fileio = raw
        if buffering == 0:
            stream: Any = raw
        else:
            size = buffering if buffering > 1 else self.default_bufsize
            if parsed.reading and parsed.writing:
                if raw.seekable():
                    stream = io.BufferedRandom(raw, size)
                else:
                    stream = io.BufferedRWPair(raw, raw, size)
            elif parsed.reading:
                stream = io.BufferedReader(raw, size)
            else:
                stream = io.BufferedWriter(raw, size)
        if not parsed.binary:
            if line_buffering is None:
                line_buffering = buffering == 1
            stream = io.TextIOWrapper(stream, io.text_encoding(encoding), errors, newline,
                                      line_buffering, write_through)
            try:
                stream.mode = mode
            except AttributeError:
                pass
        FileObjectBase.__init__(self, stream, mode, closefd)
        # The hot methods, bound straight to the io stack (they raise
        # ValueError by themselves once it is closed).
        if parsed.reading:
            self.read = stream.read
            self.readline = stream.readline
            if hasattr(stream, "readinto"):
                self.readinto = stream.readinto
        if parsed.writing:
            self.write = stream.write
            self.flush = stream.flush

    def _do_close(self, fobj: Any, closefd: bool) -> None:
        # Closing the io stack flushes it and closes CooperativeFileIO, which
        # honours closefd itself (and restores blocking mode if it stays open).
        try:
            fobj.close()
        except RuntimeError as exc:
            if "reentrant" not in str(exc):
                raise
            # Another greenlet is parked inside a buffered read or write of
            # this very stream (holding its lock): close the raw file under
            # it, which wakes it with FileObjectClosed.
            self.fileio.close()

    def __next__(self) -> Any:
        line = self._io.readline()
        if not line:
            raise StopIteration
        return line

    next = __next__


def _default_fileobject() -> Any:
    try:
        return config.fileobject
    except ValueError:  # a bad GREENWEAVE_FILEOBJECT must not break imports
        return FileObjectThread


#: The default cooperative file object (``config.fileobject``: thread, posix or block).
FileObject = _default_fileobject()
