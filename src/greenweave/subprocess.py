"""A drop-in for :mod:`subprocess` whose waiting blocks only the calling greenlet.

:class:`Popen` is the standard library's ``Popen`` with its blocking parts
replaced:

* the child is watched from the moment it starts by the loop's child
  watcher (driven by ``SIGCHLD`` in the main thread), which reaps it as soon
  as it exits, so no zombie is left behind even if nobody waits; the exit
  status is kept in ``returncode`` for
  :meth:`Popen.wait() <subprocess.Popen.wait>` / :meth:`Popen.poll`;
* :meth:`Popen.wait() <subprocess.Popen.wait>` parks the greenlet until then
  (``timeout`` raises :class:`TimeoutExpired`);
* ``stdin``/``stdout``/``stderr`` pipes are
  :class:`~greenweave.fileobject.FileObjectPosix` objects: reading and
  writing them blocks only the greenlet;
* :meth:`Popen.communicate` feeds ``stdin`` and drains ``stdout`` and
  ``stderr`` in three greenlets at once.  On :class:`TimeoutExpired` they
  keep going, so calling ``communicate()`` again picks up where it stopped
  and loses nothing.

:func:`run`, :func:`call`, :func:`check_call`, :func:`check_output`,
:func:`getoutput` and :func:`getstatusoutput` are built on this ``Popen``;
every other public name of :mod:`subprocess` is re-exported unchanged.
"""

from __future__ import annotations

import inspect
import os
import subprocess as _subprocess
import sys
from errno import EINVAL
from subprocess import (
    DEVNULL,
    PIPE,
    STDOUT,
    CalledProcessError,
    CompletedProcess,
    SubprocessError,
    TimeoutExpired,
    list2cmdline,
)
from time import monotonic
from typing import Any

from ._core.hub import get_hub, get_hub_if_exists
from ._core.park import ParkingLot
from .fileobject import FileObjectClosed, FileObjectPosix

__all__ = [
    "Popen",
    "PIPE",
    "STDOUT",
    "call",
    "check_call",
    "getstatusoutput",
    "getoutput",
    "check_output",
    "run",
    "CalledProcessError",
    "DEVNULL",
    "SubprocessError",
    "TimeoutExpired",
    "CompletedProcess",
]

#: Names of :mod:`subprocess` this module replaces (for monkey patching).
__implements__ = ["Popen", "call", "check_call", "check_output", "run", "getoutput",
                  "getstatusoutput"]

# Private helpers other stdlib modules and test suites reach for.
_args_from_interpreter_flags = _subprocess._args_from_interpreter_flags
_optim_args_from_interpreter_flags = _subprocess._optim_args_from_interpreter_flags
_list2cmdline = list2cmdline

_WNOHANG = os.WNOHANG
_waitpid = os.waitpid
_CHUNK = 65536
# Captured now: monkey patching may later make ``subprocess.Popen`` our class.
_StdPopen = _subprocess.Popen


class _Communication:
    """The state of a communicate() that may be resumed after a timeout."""

    __slots__ = ("greenlets", "stdout", "stderr", "result")

    def __init__(self) -> None:
        self.greenlets: list = []
        self.stdout: list[bytes] | None = None
        self.stderr: list[bytes] | None = None
        self.result: tuple | None = None


def _cooperative_pipe(fobj: Any, writing: bool, bufsize: int) -> FileObjectPosix:
    """Re-wrap a pipe end the standard Popen opened as a cooperative file object."""
    if isinstance(fobj, FileObjectPosix):
        return fobj
    if hasattr(fobj, "encoding"):  # text mode (a TextIOWrapper)
        return FileObjectPosix(fobj, "w" if writing else "r",
                               buffering=-1 if bufsize in (0, 1) else bufsize,
                               encoding=fobj.encoding, errors=fobj.errors,
                               line_buffering=fobj.line_buffering, write_through=writing)
    return FileObjectPosix(fobj, "wb" if writing else "rb", buffering=bufsize)


class Popen(_StdPopen):
    """``subprocess.Popen`` that waits and does pipe I/O cooperatively.

    Takes exactly the standard constructor arguments.  The child is watched
    by the creating thread's loop; waiting for it from that thread's
    greenlets is the supported use.
    """

    _child_watcher: Any = None
    _comm: _Communication | None = None
    _links: list | None = None
    _waiters = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        hub = get_hub()
        self._exited = ParkingLot()
        self._waiters = 0
        _StdPopen.__init__(self, *args, **kwargs)
        # The child runs.  Watch it before anything else can fail, so it is
        # always reaped; the watcher does not keep the loop alive by itself.
        watcher = hub.loop.child(self.pid, ref=False)
        watcher.start(self._on_child, watcher)
        self._child_watcher = watcher
        bufsize = args[1] if len(args) > 1 else kwargs.get("bufsize", -1)
        if bufsize is None:
            bufsize = -1
        try:
            if self.stdin is not None:
                self.stdin = _cooperative_pipe(self.stdin, True, bufsize)
            if self.stdout is not None:
                self.stdout = _cooperative_pipe(self.stdout, False, bufsize)
            if self.stderr is not None:
                self.stderr = _cooperative_pipe(self.stderr, False, bufsize)
        except BaseException:
            for f in (self.stdin, self.stdout, self.stderr):
                if f is not None:
                    try:
                        f.close()
                    except OSError:
                        pass
            raise

    # -- the child's exit ----------------------------------------------
    def _on_child(self, watcher: Any) -> None:
        # In the hub: the loop reaped the child.
        if self.returncode is None:
            self._handle_exitstatus(watcher.rstatus)
        self._set_exited()

    def _set_exited(self) -> None:
        self._exited.unpark_all()
        if self._links:
            self._child_watcher.loop.run_callback(self._notify_links)

    def _notify_links(self) -> None:
        links = self._links
        while links:
            callback = links.pop(0)
            try:
                callback(self)
            except:  # noqa: E722 - a bad link never stops the others
                get_hub().handle_error((callback, self), *sys.exc_info())

    def _update_ref(self) -> None:
        # An unwatched child does not keep the loop alive; a waited-for one does.
        watcher = self._child_watcher
        if watcher is not None:
            watcher.ref = bool(self._waiters or self._links)

    def rawlink(self, callback: Any) -> None:
        """Call ``callback(self)`` from the hub once the child has exited (as
        gevent's Popen; lets :func:`greenweave.wait` wait for processes)."""
        if not callable(callback):
            raise TypeError(f"Expected callable: {callback!r}")
        if self._links is None:
            self._links = []
        self._links.append(callback)
        if self.returncode is not None:
            if len(self._links) == 1:
                get_hub().loop.run_callback(self._notify_links)
        else:
            self._update_ref()

    def unlink(self, callback: Any) -> None:
        """Remove a callback installed with :meth:`rawlink`."""
        links = self._links
        if links:
            try:
                links.remove(callback)
            except ValueError:
                pass
            self._update_ref()

    def ready(self) -> bool:
        """True once the child has exited and been reaped."""
        return self.returncode is not None

    def _internal_poll(self, _deadstate: Any = None, *_args: Any, **_kwargs: Any) -> Any:
        """Set and return ``returncode`` if the child has exited (never blocks)."""
        if self.returncode is not None:
            return self.returncode
        watcher = self._child_watcher
        if watcher is None:
            # Not started by us (or __init__ failed early): the stdlib way.
            return _StdPopen._internal_poll(self, _deadstate)
        hub = get_hub_if_exists()
        if not watcher.active or hub is None or watcher.loop is not hub.loop:
            # Another thread: its loop delivers the status.
            return self.returncode
        # Reap it now rather than waiting for the loop to get round to it.
        try:
            pid, status = _waitpid(self.pid, _WNOHANG)
        except ChildProcessError:
            # Someone else reaped it (e.g. a raw os.waitpid): the status is lost.
            pid, status = self.pid, None
        if pid == self.pid:
            watcher.stop()
            if status is None:
                self.returncode = 0 if _deadstate is None else _deadstate
            else:
                self._handle_exitstatus(status)
            self._set_exited()
        return self.returncode

    def poll(self) -> int | None:
        """Return ``returncode`` if the child has exited, else None (never blocks)."""
        return self._internal_poll()

    def _wait(self, timeout: float | None) -> int:
        if self.returncode is not None:
            return self.returncode
        watcher = self._child_watcher
        if watcher is None or not watcher.active:
            # No watcher, or it already fired (the child is reaped) while
            # returncode was reset: the stdlib's wait, whose waitpid then
            # finds no such child and settles on 0, as CPython does.
            return _StdPopen._wait(self, timeout)
        if self._internal_poll() is not None:
            return self.returncode
        if timeout is not None:
            if timeout <= 0:
                raise TimeoutExpired(self.args, timeout)
            deadline = monotonic() + timeout
        self._waiters += 1
        self._update_ref()  # someone waits: the loop must not run dry under us
        try:
            while self.returncode is None:
                if timeout is None:
                    self._exited.park()
                    continue
                remaining = deadline - monotonic()
                if remaining <= 0 or not self._exited.park(remaining):
                    if self.returncode is None:
                        raise TimeoutExpired(self.args, timeout)
        finally:
            self._waiters -= 1
            self._update_ref()
        return self.returncode

    # -- communicate -----------------------------------------------------
    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple:
        """Send ``input`` to stdin and close it, read stdout and stderr to the end,
        and wait for the child to exit; return ``(stdout, stderr)``.

        Raises :class:`TimeoutExpired` (with the output so far) after
        ``timeout`` seconds; call again (without input) to carry on, nothing
        read meanwhile is lost.
        """
        if self._communication_started and input:
            raise ValueError("Cannot send input after starting communication")
        pipes = (self.stdin, self.stdout, self.stderr)
        if timeout is None and not self._communication_started and pipes.count(None) >= 2:
            # One pipe and no timeout: do it right here.
            stdout = stderr = None
            self._communication_started = True
            if self.stdin:
                self._stdin_write(input)
            elif self.stdout:
                stdout = self.stdout.read()
                self.stdout.close()
            elif self.stderr:
                stderr = self.stderr.read()
                self.stderr.close()
            self.wait()
            return stdout, stderr
        endtime = None if timeout is None else monotonic() + timeout
        try:
            stdout, stderr = self._communicate(input, endtime, timeout)
        finally:
            self._communication_started = True
        self.wait(None if endtime is None else max(endtime - monotonic(), 0.0))
        return stdout, stderr

    def _communicate(self, input: Any, endtime: float | None,
                     orig_timeout: float | None) -> tuple:
        comm = self._comm
        if comm is None:
            comm = self._comm = self._start_communication(input)
        if comm.result is not None:
            return comm.result
        for g in comm.greenlets:
            if endtime is None:
                g.join()
            else:
                g.join(max(endtime - monotonic(), 0.0))
            if not g.ready():
                raise TimeoutExpired(
                    self.args, orig_timeout,
                    output=b"".join(comm.stdout) if comm.stdout else None,
                    stderr=b"".join(comm.stderr) if comm.stderr else None)
        for g in comm.greenlets:
            if not g.successful():
                raise g.exception
        stdout = None if comm.stdout is None else b"".join(comm.stdout)
        stderr = None if comm.stderr is None else b"".join(comm.stderr)
        if self.text_mode:
            errors = self.errors or "strict"
            if stdout is not None:
                stdout = self._translate_newlines(stdout, self.encoding, errors)
            if stderr is not None:
                stderr = self._translate_newlines(stderr, self.encoding, errors)
        comm.result = (stdout, stderr)
        return comm.result

    def _start_communication(self, input: Any) -> _Communication:
        from .greenlet import Greenlet

        comm = _Communication()
        stdin = self.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.flush()  # what the caller wrote before communicate()
            except BrokenPipeError:
                pass
            if input and self.text_mode:
                input = input.encode(self.encoding, self.errors or "strict")
            comm.greenlets.append(Greenlet.spawn(self._feed, stdin, input))
        if self.stdout is not None:
            comm.stdout = []
            if not self.stdout.closed:
                comm.greenlets.append(Greenlet.spawn(self._drain, self.stdout, comm.stdout))
        if self.stderr is not None:
            comm.stderr = []
            if not self.stderr.closed:
                comm.greenlets.append(Greenlet.spawn(self._drain, self.stderr, comm.stderr))
        return comm

    @staticmethod
    def _feed(stdin: FileObjectPosix, data: Any) -> None:
        try:
            if data:
                stdin.fileio.write(data)
        except BrokenPipeError:
            pass  # the child stopped reading: as the standard library, ignore it
        except FileObjectClosed:
            return
        except OSError as exc:
            if exc.errno != EINVAL:
                raise
        try:
            stdin.close()
        except BrokenPipeError:
            pass

    @staticmethod
    def _drain(fobj: FileObjectPosix, chunks: list[bytes]) -> None:
        read = fobj.fileio.read
        try:
            while True:
                data = read(_CHUNK)
                if not data:
                    break
                chunks.append(data)
        except FileObjectClosed:
            return  # closed under us (e.g. the ``with`` block ended)
        fobj.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__}: returncode: {self.returncode} "
                f"args: {self.args!r}>")


try:
    Popen.__init__.__signature__ = inspect.signature(_StdPopen.__init__)  # type: ignore
except (TypeError, ValueError):  # pragma: no cover
    pass


# ---------------------------------------------------------------------------
# The convenience functions


def call(*popenargs: Any, timeout: float | None = None, **kwargs: Any) -> int:
    """Run a command, wait for it (cooperatively) and return its return code."""
    with Popen(*popenargs, **kwargs) as p:
        try:
            return p.wait(timeout=timeout)
        except BaseException:
            p.kill()
            raise


def check_call(*popenargs: Any, **kwargs: Any) -> int:
    """Like :func:`call`, raising :class:`CalledProcessError` on a non-zero exit."""
    retcode = call(*popenargs, **kwargs)
    if retcode:
        cmd = kwargs.get("args")
        if cmd is None:
            cmd = popenargs[0]
        raise CalledProcessError(retcode, cmd)
    return 0


def run(*popenargs: Any, input: Any = None, capture_output: bool = False,
        timeout: float | None = None, check: bool = False, **kwargs: Any) -> CompletedProcess:
    """Run a command and wait for it; return a :class:`CompletedProcess`.

    The arguments are those of :func:`subprocess.run`.  On timeout the child
    is killed and :class:`TimeoutExpired` (with the output so far) raised.
    """
    if input is not None:
        if kwargs.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used.")
        kwargs["stdin"] = PIPE
    if capture_output:
        if kwargs.get("stdout") is not None or kwargs.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used "
                             "with capture_output.")
        kwargs["stdout"] = PIPE
        kwargs["stderr"] = PIPE
    with Popen(*popenargs, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except TimeoutExpired:
            process.kill()
            process.wait()
            raise
        except BaseException:
            process.kill()
            raise
        retcode = process.poll()
        if check and retcode:
            raise CalledProcessError(retcode, process.args, output=stdout, stderr=stderr)
    return CompletedProcess(process.args, retcode, stdout, stderr)


def check_output(*popenargs: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """Run a command and return its standard output (raise on a non-zero exit)."""
    if "stdout" in kwargs:
        raise ValueError("stdout argument not allowed, it will be overridden.")
    if "input" in kwargs and kwargs["input"] is None:
        # input=None has always meant "an empty stdin" here.
        text = (kwargs.get("universal_newlines") or kwargs.get("text")
                or kwargs.get("encoding") or kwargs.get("errors"))
        kwargs["input"] = "" if text else b""
    return run(*popenargs, stdout=PIPE, timeout=timeout, check=True, **kwargs).stdout


def getstatusoutput(cmd: Any, *, encoding: str | None = None,
                    errors: str | None = None) -> tuple[int, str]:
    """Return ``(exitcode, output)`` of running ``cmd`` in a shell (stderr included,
    one trailing newline stripped)."""
    try:
        data = check_output(cmd, shell=True, text=True, stderr=STDOUT,
                            encoding=encoding, errors=errors)
        exitcode = 0
    except CalledProcessError as ex:
        data = ex.output
        exitcode = ex.returncode
    if data[-1:] == "\n":
        data = data[:-1]
    return exitcode, data


def getoutput(cmd: Any, *, encoding: str | None = None, errors: str | None = None) -> str:
    """Return the output (stdout and stderr) of running ``cmd`` in a shell."""
    return getstatusoutput(cmd, encoding=encoding, errors=errors)[1]


def _reexport() -> None:
    # Every other public name of the standard module, as is.
    import types

    namespace = globals()
    for name in dir(_subprocess):
        if name.startswith("_") or name in namespace:
            continue
        value = getattr(_subprocess, name)
        if not isinstance(value, types.ModuleType):
            namespace[name] = value


_reexport()
