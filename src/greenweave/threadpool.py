"""A pool of native threads whose results greenlets wait on cooperatively.

Use it for work that would block the whole thread if run in a greenlet: a C
library without a cooperative API, a blocking system call, heavy computation
that releases the GIL.  Each hub has one (``get_hub().threadpool``, created on
first use, sized by ``config.threadpool_size``)::

    result = get_hub().threadpool.spawn(some_blocking_call, arg)
    value = result.get()          # blocks only this greenlet

How it is built:

* The worker threads are *native* threads started with the original
  ``_thread.start_new_thread`` and synchronised with original native locks,
  captured when this module is imported (or taken from
  ``greenweave.monkey.get_original`` when monkey patching already happened),
  so the pool keeps working after ``threading`` has been made green.
* A task travels to a worker through a mutex-protected queue; an idle worker
  sleeps on its own lock and is woken by the submitter (most recently idle
  first).  Threads are started on demand up to ``maxsize``.
* The outcome travels back through the hub's thread-safe callback queue
  (``loop.run_callback_threadsafe``): state is only ever changed in the hub's
  thread, and waiting greenlets park on a :class:`~greenweave._core.park.ParkingLot`.
* Every unfinished task holds a reference on the hub's loop, so a greenlet
  waiting for it never gets ``LoopExit`` and ``hub.join()`` waits for it.
* Idle workers *stay* by default (as in gevent): the next task starts with no
  thread-creation cost.  Pass ``idle_task_timeout=seconds`` to let idle
  threads exit after that long.
* A worker thread that itself uses greenweave gets its own hub (``get_hub()``
  is per thread); it is destroyed when the worker thread exits.
* Threads do not survive ``fork()``: in the child the pool starts afresh, and
  tasks that were queued or running in the parent fail with
  :class:`RuntimeError` (running them again could repeat side effects).

:class:`ThreadPoolExecutor` is a :class:`concurrent.futures.ThreadPoolExecutor`
on the same native workers whose futures can be waited on cooperatively:
``future.result()``, ``future.exception()``, :func:`concurrent.futures.wait`
and :func:`concurrent.futures.as_completed` block only the calling greenlet
when called in a thread that uses greenweave, and the futures work with
:func:`greenweave.wait` / :func:`greenweave.iwait`.
"""

from __future__ import annotations

import concurrent.futures as _cf
import importlib
import os
import sys
import threading as _threading
import weakref
from collections import deque
from concurrent.futures import _base as _cf_base
from concurrent.futures import thread as _cf_thread
from itertools import islice
from time import monotonic
from typing import Any, Callable, Iterable, Iterator

from greenlet import GreenletExit, getcurrent

from ._core.hub import get_hub, get_hub_if_exists
from ._core.park import ParkingLot
from .exceptions import InvalidThreadUseError
from .timeout import Timeout

__all__ = ["ThreadPool", "ThreadResult", "ThreadPoolExecutor"]


def _original(module: str, name: str) -> Any:
    """The unpatched ``module.name``, even if monkey patching already happened."""
    monkey = sys.modules.get("greenweave.monkey")
    get_original = getattr(monkey, "get_original", None)
    if get_original is not None:
        try:
            return get_original(module, name)
        except Exception:
            pass
    return getattr(importlib.import_module(module), name)


_start_new_thread = _original("_thread", "start_new_thread")
_allocate_lock = _original("_thread", "allocate_lock")
_get_ident = _original("_thread", "get_ident")
_NativeRLock = _original("_thread", "RLock")

_gettrace = getattr(_threading, "gettrace", None)
_getprofile = getattr(_threading, "getprofile", None)

_FORK_MESSAGE = (
    "thread pool task abandoned by fork(): it was queued or running in the parent "
    "process, and native threads do not survive fork()"
)


def _report_crash() -> None:
    """Last resort when the pool's own machinery fails in a worker thread."""
    import traceback

    try:
        traceback.print_exc()
    except Exception:  # pragma: no cover - stderr is gone (interpreter shutdown)
        pass


# ---------------------------------------------------------------------------
# The native layer: worker threads and their queue.  Thread-safe; knows
# nothing about hubs.  A task is any object with a ``_run()`` method.
# ---------------------------------------------------------------------------


class _Workers:
    """Native worker threads fed from one queue.

    Counting: ``nthreads`` is the number of threads the pool *wants* (alive
    and not asked to leave); ``_leaving`` threads have been asked to exit and
    do so the next time they look for work; ``alive`` counts every thread
    still running.  ``alive == nthreads + _leaving`` at all times.  A thread
    never leaves while tasks are queued and no other thread would run them.
    """

    __slots__ = ("_lock", "_tasks", "_idle", "nthreads", "_leaving", "alive", "maxsize",
                 "idle_timeout", "idents", "closing", "exited", "_on_thread_start")

    def __init__(self, maxsize: int, idle_timeout: float = -1,
                 on_thread_start: Callable[[], bool] | None = None) -> None:
        self._lock = _allocate_lock()
        self._tasks: deque[Any] = deque()
        self._idle: list[Any] = []  # wake locks of idle workers, most recent last
        self.nthreads = 0
        self._leaving = 0
        self.alive = 0
        self.maxsize = maxsize
        self.idle_timeout = idle_timeout if idle_timeout is not None else -1
        self.idents: set[int] = set()
        self.closing = False
        self.exited: Any = None  # set() when the last thread exits after close()
        self._on_thread_start = on_thread_start

    # -- submitting ------------------------------------------------------
    def submit(self, task: Any) -> None:
        """Queue ``task``; wake an idle worker or start a thread if allowed."""
        lock = self._lock
        lock.acquire()
        self._tasks.append(task)
        if self._idle:
            self._idle.pop().release()
            lock.release()
            return
        if self.nthreads >= self.maxsize:
            lock.release()
            return
        self.nthreads += 1
        self.alive += 1
        lock.release()
        self._start_thread(task)

    def _start_thread(self, task: Any = None) -> None:
        # The counters were already raised for this thread.
        try:
            _start_new_thread(self._main, ())
        except BaseException:
            with self._lock:
                self.nthreads -= 1
                self.alive -= 1
                stranded = not self.alive
                if stranded and task is not None:
                    try:
                        self._tasks.remove(task)
                    except ValueError:
                        stranded = False
            if stranded or task is None:
                raise

    def drain(self) -> list[Any]:
        """Remove and return every queued (not yet started) task."""
        with self._lock:
            tasks = list(self._tasks)
            self._tasks.clear()
        return tasks

    # -- sizing ----------------------------------------------------------
    def set_size(self, size: int) -> None:
        """Start or retire threads so that ``size`` are wanted."""
        to_start = 0
        with self._lock:
            if size > self.nthreads:
                to_start = size - self.nthreads
                self.nthreads = size
                self.alive += to_start
            elif size < self.nthreads:
                excess = self.nthreads - size
                self.nthreads = size
                self._leaving += excess
                idle = self._idle
                for _ in range(min(excess, len(idle))):
                    idle.pop().release()
        for started in range(to_start):
            try:
                self._start_thread()
            except BaseException:
                with self._lock:
                    left = to_start - started - 1
                    self.nthreads -= left
                    self.alive -= left
                raise

    def adjust(self) -> None:
        """Start threads for queued tasks nobody will pick up (up to maxsize),
        retire threads beyond maxsize."""
        with self._lock:
            unclaimed = len(self._tasks) - len(self._idle)
            want = min(self.maxsize, self.nthreads + max(0, unclaimed))
            current = self.nthreads
        if want != current:
            self.set_size(want)

    def close(self) -> None:
        """No more tasks will come: threads exit once the queue is empty."""
        with self._lock:
            self.closing = True
            idle = self._idle
            while idle:
                idle.pop().release()
            done = not self.alive
        if done and self.exited is not None:
            self.exited.set()

    # -- the worker thread -----------------------------------------------
    def _main(self) -> None:
        # A task's ``_run()`` may return a ``deliver`` callable that hands the
        # outcome back.  It is called only after this thread has done its own
        # bookkeeping (taken the next task, or registered as idle), right
        # before it runs on or blocks: by the time the woken hub wants the
        # GIL, this thread is about to let go of it.
        ident = _get_ident()
        self.idents.add(ident)
        lock = self._lock
        tasks = self._tasks
        idle = self._idle
        wake = _allocate_lock()
        wake.acquire()
        tracing = False
        deliver = None
        try:
            if self._on_thread_start is not None and not self._on_thread_start():
                with lock:
                    self.nthreads -= 1
                return
            while True:
                lock.acquire()
                if self._leaving and (self.nthreads or not tasks):
                    self._leaving -= 1
                    lock.release()
                    return
                if tasks:
                    task = tasks.popleft()
                    lock.release()
                    if deliver is not None:
                        deliver()
                        deliver = None
                    # Install threading.settrace()/setprofile() hooks (coverage,
                    # profilers) for the task, as threading.Thread would.
                    trace = _gettrace() if _gettrace is not None else None
                    profile = _getprofile() if _getprofile is not None else None
                    if trace is not None or profile is not None or tracing:
                        sys.settrace(trace)
                        sys.setprofile(profile)
                        tracing = trace is not None or profile is not None
                    try:
                        deliver = task._run()
                    except BaseException:  # pragma: no cover - _run handles errors
                        _report_crash()
                    task = None
                    continue
                if self.closing:
                    self.nthreads -= 1
                    lock.release()
                    return
                idle.append(wake)
                lock.release()
                if deliver is not None:
                    deliver()
                    deliver = None
                timeout = self.idle_timeout
                if timeout is None or timeout < 0:
                    wake.acquire()
                elif not wake.acquire(True, timeout):
                    with lock:
                        try:
                            idle.remove(wake)
                        except ValueError:
                            pass  # popped by a submitter: its release is coming
                        else:
                            self.nthreads -= 1
                            return
                    wake.acquire()
        finally:
            if deliver is not None:
                try:
                    deliver()
                except BaseException:  # pragma: no cover
                    _report_crash()
            if tracing:
                sys.settrace(None)
                sys.setprofile(None)
            self.idents.discard(ident)
            with lock:
                self.alive -= 1
                last = not self.alive and self.closing
            hub = get_hub_if_exists()
            if hub is not None:
                try:
                    hub.destroy(destroy_loop=True)
                except Exception:  # pragma: no cover - best effort at thread exit
                    pass
            if last and self.exited is not None:
                self.exited.set()


# ---------------------------------------------------------------------------
# ThreadResult: what ThreadPool.spawn returns.
# ---------------------------------------------------------------------------

_NO_EXC_INFO: tuple = ()


class ThreadResult:
    """The outcome of one task run in a :class:`ThreadPool`: an ``AsyncResult``.

    ``get()`` blocks the calling greenlet (only) until the worker thread has
    finished, then returns the value or raises the exception with the
    worker's traceback.  ``rawlink(callback)`` calls ``callback(result)`` in
    the hub when it is ready, so the results work with :func:`greenweave.wait`
    and :func:`greenweave.iwait`.  The state only changes in the hub's thread.
    """

    __slots__ = ("_pool", "_loop", "_fn", "_args", "_kwargs", "value", "_exc_info", "_done",
                 "_lot", "_links", "_flush_scheduled", "_quiet", "__weakref__")

    def __init__(self, pool: ThreadPool, fn: Callable[..., Any], args: tuple, kwargs: dict,
                 quiet: bool = False) -> None:
        self._pool = pool
        self._loop = pool._loop
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self.value: Any = None
        self._exc_info: tuple | None = None
        self._done = False
        self._lot: ParkingLot | None = None
        self._links: list | None = None
        self._flush_scheduled = False
        self._quiet = quiet

    # -- runs in the worker thread --------------------------------------
    def _run(self) -> Callable[[], None]:
        # The outcome is stored now but only becomes visible when the hub
        # sets ``_done`` (in _finish); until then only this thread touches it.
        args = self._args
        kwargs = self._kwargs
        self._args = self._kwargs = None
        try:
            self.value = self._fn(*args, **kwargs)
        except BaseException:
            self._exc_info = sys.exc_info()
        return self._deliver

    def _deliver(self) -> None:
        loop = self._loop
        if not loop.closed:
            loop.run_callback_threadsafe(self._finish)

    # -- runs in the hub -------------------------------------------------
    def _finish(self, report: bool = True) -> None:
        if self._done:
            return
        exc_info = self._exc_info
        self._done = True
        pool = self._pool
        fn = self._fn
        self._fn = None
        unfinished = pool._unfinished
        unfinished.discard(self)
        self._loop.unref()
        if not unfinished and pool._join_lot is not None:
            pool._join_lot.unpark_all()
        if exc_info is not None and report and not self._quiet:
            pool._report(fn, exc_info)
        lot = self._lot
        if lot is not None:
            lot.unpark_all()
        if self._links:
            self._flush_links()

    def _cancel(self, exc: BaseException) -> None:
        self._args = self._kwargs = None
        self.value = None
        self._exc_info = (type(exc), exc, None)
        self._finish(False)

    def _flush_links(self) -> None:
        self._flush_scheduled = False
        links = self._links
        if not links:
            return
        self._links = None
        hub = self._pool.hub
        for link in links:
            try:
                link(self)
            except:  # noqa: E722 - a bad link never stops the others
                hub.handle_error((link, self), *sys.exc_info())

    # -- waiting -----------------------------------------------------------
    def _wait_done(self, timeout: float | None) -> bool:
        lot = self._lot
        if lot is None:
            lot = self._lot = ParkingLot()
        hub = get_hub()
        foreign = hub is not self._pool.hub
        if foreign:
            # Waiting from another thread's hub: nothing there would keep
            # that loop running until our hub's thread-safe wake-up arrives.
            hub.loop.ref()
        try:
            if timeout is None:
                while not self._done:
                    lot.park()
                return True
            deadline = monotonic() + timeout
            while not self._done:
                remaining = deadline - monotonic()
                if remaining <= 0 or not lot.park(remaining):
                    return self._done
            return True
        finally:
            if foreign:
                hub.loop.unref()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Return the value, or raise the task's exception (with its traceback).

        Not ready: with ``block=False`` raise :class:`~greenweave.Timeout` at
        once; otherwise wait up to ``timeout`` seconds, then raise ``Timeout``.
        """
        if not self._done:
            if not block:
                raise Timeout()
            if not self._wait_done(timeout):
                raise Timeout(timeout)
        exc_info = self._exc_info
        if exc_info is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        return self.value

    def get_nowait(self) -> Any:
        """``get(block=False)``."""
        return self.get(block=False)

    def result(self, timeout: float | None = None) -> Any:
        """``get(timeout=timeout)`` (the ``concurrent.futures`` spelling)."""
        return self.get(timeout=timeout)

    def wait(self, timeout: float | None = None) -> Any:
        """Wait until ready or ``timeout`` passes; return the value (None if
        not ready or the task raised).  Never raises the task's exception."""
        if not self._done and not self._wait_done(timeout):
            return None
        return self.value

    # -- state -------------------------------------------------------------
    def ready(self) -> bool:
        """True once the task has finished (or was cancelled by ``kill()``)."""
        return self._done

    done = ready

    def successful(self) -> bool:
        """True if the task finished and returned (did not raise)."""
        return self._done and self._exc_info is None

    def cancel(self) -> bool:
        """A task handed to a native thread cannot be cancelled: always False."""
        return False

    def cancelled(self) -> bool:
        return False

    @property
    def exception(self) -> BaseException | None:
        """The exception the task raised, or None."""
        exc_info = self._exc_info
        return exc_info[1] if exc_info is not None else None

    @property
    def exc_info(self) -> tuple:
        """``(type, value, traceback)`` if the task raised, else ``()``."""
        exc_info = self._exc_info
        return exc_info if exc_info is not None else _NO_EXC_INFO

    # -- links -------------------------------------------------------------
    def rawlink(self, callback: Callable[[ThreadResult], Any]) -> None:
        """Call ``callback(self)`` in the hub once ready (soon, if it already is).

        The callback runs in the hub greenlet, so it must not block.
        """
        if not callable(callback):
            raise TypeError(f"Expected callable: {callback!r}")
        links = self._links
        if links is None:
            links = self._links = []
        links.append(callback)
        if self._done and not self._flush_scheduled:
            self._flush_scheduled = True
            if _get_ident() == self._pool._hub_ident:
                self._loop.run_callback(self._flush_links)
            else:
                self._loop.run_callback_threadsafe(self._flush_links)

    def unlink(self, callback: Callable[[ThreadResult], Any]) -> None:
        """Remove a callback installed by :meth:`rawlink`."""
        links = self._links
        if links:
            try:
                links.remove(callback)
            except ValueError:
                pass

    def linkcount(self) -> int:
        return len(self._links) if self._links else 0

    def __repr__(self) -> str:
        if not self._done:
            state = "pending"
        elif self._exc_info is None:
            state = f"value={self.value!r}"
        else:
            state = f"exception={self._exc_info[1]!r}"
        return f"<{type(self).__name__} at {id(self):#x} {state}>"


# ---------------------------------------------------------------------------
# ThreadPool
# ---------------------------------------------------------------------------

_pools: weakref.WeakSet = weakref.WeakSet()


def _retire_workers(holder: list) -> None:
    """Finalizer of a pool or executor: its threads exit once idle."""
    holder[0].close()


def _check_maxsize(maxsize: Any) -> int:
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
        raise TypeError(f"maxsize must be an integer, not {type(maxsize).__name__}")
    if maxsize < 0:
        raise ValueError(f"maxsize must not be negative: {maxsize}")
    return maxsize


class ThreadPool:
    """A pool of up to ``maxsize`` native worker threads bound to ``hub``
    (default: the current thread's hub).

    Methods that submit work (``spawn``, ``apply``, ``map``...) are meant to
    be called from the hub's thread; :meth:`apply` called from any other
    thread (including the pool's own workers) simply runs the function there.
    Threads start on demand; ``size`` is how many exist, ``maxsize`` the
    limit.  Submitting never blocks: tasks queue up when every thread is busy.
    ``len(pool)`` is the number of unfinished tasks (so an idle pool is false).
    """

    def __init__(self, maxsize: int, hub: Any = None, idle_task_timeout: float = -1) -> None:
        self._maxsize = _check_maxsize(maxsize)
        if hub is None:
            hub = get_hub()
        self.hub = hub
        self._loop = hub.loop
        self._hub_ident = hub.thread_ident
        self._idle_task_timeout = idle_task_timeout
        self._workers = _Workers(self._maxsize, idle_task_timeout)
        self._unfinished: set[ThreadResult] = set()
        self._join_lot: ParkingLot | None = None
        self.pid = os.getpid()
        _pools.add(self)
        # A pool dropped without kill() retires its idle threads.  (Queued
        # and running tasks reference the pool, so it lives until they end.)
        self._workers_ref = [self._workers]
        weakref.finalize(self, _retire_workers, self._workers_ref).atexit = False

    # -- sizing ----------------------------------------------------------
    @property
    def maxsize(self) -> int:
        """The maximum number of worker threads.  Lowering it retires threads."""
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        self._maxsize = _check_maxsize(value)
        self._workers.maxsize = value
        if self._workers.nthreads > value:
            self._workers.set_size(value)

    @property
    def size(self) -> int:
        """The number of worker threads.  Setting it starts or retires threads
        (a busy thread retires once its current task is done)."""
        return self._workers.nthreads

    @size.setter
    def size(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"size must be an integer, not {type(value).__name__}")
        if value < 0:
            raise ValueError(f"Size of the pool cannot be negative: {value}")
        if value > self._maxsize:
            raise ValueError(f"Size of the pool cannot be bigger than maxsize: "
                             f"{value} > {self._maxsize}")
        self._workers.set_size(value)

    def adjust(self) -> None:
        """Start threads for queued tasks (up to maxsize); retire extra threads."""
        self._workers.adjust()

    def __len__(self) -> int:
        return len(self._unfinished)

    # -- submitting ------------------------------------------------------
    def spawn(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> ThreadResult:
        """Run ``func(*args, **kwargs)`` in a worker thread; return its
        :class:`ThreadResult`.  Must be called from the hub's thread."""
        if _get_ident() != self._hub_ident:
            raise InvalidThreadUseError(
                f"ThreadPool.spawn() called from thread {_get_ident():#x}; this pool belongs "
                f"to the hub of thread {self._hub_ident:#x} (use that thread, or "
                f"get_hub().threadpool in this one)")
        return self._spawn(func, args, kwargs, False)

    def _spawn(self, func: Callable[..., Any], args: tuple, kwargs: dict,
               quiet: bool) -> ThreadResult:
        if not callable(func):
            raise TypeError(f"Expected a callable, not {func!r}")
        loop = self._loop
        if not self._maxsize:
            raise ValueError("this ThreadPool has maxsize 0, so no thread can run the task; "
                             "raise maxsize first")
        if loop.closed:
            raise RuntimeError("this ThreadPool's hub has been destroyed")
        result = ThreadResult(self, func, args, kwargs, quiet)
        self._unfinished.add(result)
        loop.ref()
        try:
            self._workers.submit(result)
        except BaseException:
            self._unfinished.discard(result)
            loop.unref()
            raise
        return result

    def apply(self, func: Callable[..., Any], args: Iterable[Any] | None = None,
              kwds: dict | None = None) -> Any:
        """Run ``func(*args, **kwds)`` in a worker thread and return its result
        (blocking only the calling greenlet).  Called from another thread (a
        pool worker, say) or from the hub greenlet, ``func`` runs right there.

        An exception is raised here, in the caller, and not also printed (as
        it is for :meth:`spawn`, whose result might never be looked at).
        """
        if args is None:
            args = ()
        if kwds is None:
            kwds = {}
        if _get_ident() != self._hub_ident or getcurrent() is self.hub:
            return func(*args, **kwds)
        return self._spawn(func, tuple(args), kwds, True).get()

    def apply_cb(self, func: Callable[..., Any], args: Iterable[Any] | None = None,
                 kwds: dict | None = None, callback: Callable[[Any], Any] | None = None) -> Any:
        """:meth:`apply`, then ``callback(result)`` if given; returns the result."""
        result = self.apply(func, args, kwds)
        if callback is not None:
            callback(result)
        return result

    def apply_async(self, func: Callable[..., Any], args: Iterable[Any] | None = None,
                    kwds: dict | None = None,
                    callback: Callable[[Any], Any] | None = None) -> Any:
        """Return a new :class:`~greenweave.Greenlet` that runs :meth:`apply_cb`."""
        from .greenlet import Greenlet

        return Greenlet.spawn(self.apply_cb, func, args, kwds, callback)

    def map(self, func: Callable[..., Any], iterable: Iterable[Any]) -> list:
        """``list(map(func, iterable))``, the calls made in worker threads."""
        return list(self.imap(func, iterable))

    def map_cb(self, func: Callable[..., Any], iterable: Iterable[Any],
               callback: Callable[[list], Any] | None = None) -> list:
        result = self.map(func, iterable)
        if callback is not None:
            callback(result)
        return result

    def map_async(self, func: Callable[..., Any], iterable: Iterable[Any],
                  callback: Callable[[list], Any] | None = None) -> Any:
        """Return a new :class:`~greenweave.Greenlet` that runs :meth:`map_cb`."""
        from .greenlet import Greenlet

        return Greenlet.spawn(self.map_cb, func, iterable, callback)

    def imap(self, func: Callable[..., Any], *iterables: Iterable[Any],
             **kwargs: Any) -> Iterator[Any]:
        """Like :func:`map` (several iterables are zipped), calls run in worker
        threads, results in order.  ``maxsize`` bounds how many results may
        be in flight or waiting to be read (default: twice the pool's maxsize).
        A call that raised raises when its turn comes; iteration may go on."""
        return _IMap(self, func, iterables, kwargs, True)

    def imap_unordered(self, func: Callable[..., Any], *iterables: Iterable[Any],
                       **kwargs: Any) -> Iterator[Any]:
        """:meth:`imap`, results in the order they finish."""
        return _IMap(self, func, iterables, kwargs, False)

    # -- waiting and stopping -----------------------------------------------
    def join(self) -> None:
        """Wait until every task submitted so far has finished."""
        while self._unfinished:
            lot = self._join_lot
            if lot is None:
                lot = self._join_lot = ParkingLot()
            lot.park()

    def kill(self) -> None:
        """Stop the pool: queued tasks are cancelled (their results raise
        :class:`~greenweave.GreenletExit`), running ones finish (a native thread cannot be
        interrupted) and every thread then exits.  The pool can be used again."""
        workers = self._workers
        tasks = workers.drain()
        workers.set_size(0)
        if not tasks:
            return
        if _get_ident() == self._hub_ident:
            for task in tasks:
                task._cancel(GreenletExit("cancelled by ThreadPool.kill() before it started"))
        elif not self._loop.closed:
            for task in tasks:
                self._loop.run_callback_threadsafe(
                    task._cancel, GreenletExit("cancelled by ThreadPool.kill() before it started"))

    def _on_fork(self) -> None:
        """In a forked child: forget the parent's threads; fail its tasks."""
        if self.pid == os.getpid():
            return
        self.pid = os.getpid()
        self._workers = self._workers_ref[0] = _Workers(self._maxsize, self._idle_task_timeout)
        unfinished = list(self._unfinished)
        loop = self._loop
        for result in unfinished:
            loop.run_callback(result._cancel, RuntimeError(_FORK_MESSAGE))

    # -- errors --------------------------------------------------------------
    def _report(self, fn: Any, exc_info: tuple) -> None:
        """Print a task's error, as the hub prints a greenlet's (the error is
        also delivered to whoever waits on the result)."""
        import socket

        hub = self.hub
        if issubclass(exc_info[0], tuple(hub.NOT_ERROR) + (socket.gaierror, socket.herror)):
            return
        try:
            hub.print_exception((self, fn), *exc_info)
        except Exception:  # pragma: no cover
            pass

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} at {id(self):#x} tasks={len(self._unfinished)} "
                f"size={self.size} maxsize={self._maxsize} hub={self.hub!r}>")


class _IMap:
    """The iterator behind ThreadPool.imap / imap_unordered."""

    def __init__(self, pool: ThreadPool, func: Callable[..., Any],
                 iterables: tuple, kwargs: dict, ordered: bool) -> None:
        maxsize = kwargs.pop("maxsize", None)
        if kwargs:
            raise TypeError(f"Unsupported keyword arguments: {', '.join(sorted(kwargs))}")
        if not iterables:
            raise TypeError("imap() needs at least one iterable")
        if maxsize is None:
            maxsize = max(2, 2 * pool.maxsize)
        elif isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive integer or None, got {maxsize!r}")
        if not callable(func):
            raise TypeError(f"Expected a callable, not {func!r}")
        self._pool = pool
        self._func = func
        if len(iterables) == 1:
            self._args: Iterator[tuple] | None = ((x,) for x in iterables[0])
        else:
            self._args = zip(*iterables, strict=False)
        self._ordered = ordered
        self._limit = maxsize
        self._pending: deque[ThreadResult] = deque()  # submitted, not yet yielded
        self._finished: deque[ThreadResult] = deque()  # unordered: ready ones
        self._lot = ParkingLot()
        self._on_ready = self._notified
        self._fill()

    def _notified(self, result: ThreadResult) -> None:
        if not self._ordered:
            self._finished.append(result)
        self._lot.unpark()

    def _fill(self) -> None:
        args_iter = self._args
        if args_iter is None:
            return
        pending = self._pending
        room = self._limit - len(pending)
        if room <= 0:
            return
        pool = self._pool
        func = self._func
        n = 0
        for args in islice(args_iter, room):
            n += 1
            result = pool.spawn(func, *args)
            result.rawlink(self._on_ready)
            pending.append(result)
        if n < room:
            self._args = None

    def __iter__(self) -> _IMap:
        return self

    def __next__(self) -> Any:
        self._fill()
        pending = self._pending
        if not pending:
            raise StopIteration
        if self._ordered:
            result = pending[0]
            while not result._done:
                self._lot.park()
            pending.popleft()
        else:
            finished = self._finished
            while not finished:
                self._lot.park()
            result = finished.popleft()
            pending.remove(result)
        self._fill()
        return result.get()


# ---------------------------------------------------------------------------
# ThreadPoolExecutor and its cooperative futures
# ---------------------------------------------------------------------------


class _CrossThreadEvent:
    """A flag set from any native thread, waited on cooperatively.

    ``wait()`` parks the calling greenlet (in whatever thread) and keeps its
    loop referenced; ``set()`` wakes every waiter through each waiting loop's
    thread-safe callback queue.  A waiter registers its loop *before* it
    parks, under the lock that ``set()`` takes, and the wake-up callback can
    only run in that loop after the waiter has parked: no lost wake-ups.
    A thread without a hub (one that never used greenweave) waits natively
    on a lock instead, and gets no hub.  Also stands in for the
    ``threading.Event`` of ``concurrent.futures``' waiters
    (``set``/``clear``/``wait``/``is_set``).
    """

    __slots__ = ("_flag", "_lock", "_loops", "_lot", "_native")

    def __init__(self) -> None:
        self._flag = False
        self._lock = _allocate_lock()
        self._loops: list[Any] = []
        self._lot = ParkingLot()
        self._native: list[Any] = []

    def is_set(self) -> bool:
        return self._flag

    isSet = is_set

    def set(self) -> None:
        with self._lock:
            self._flag = True
            loops = self._loops
            self._loops = []
            native = self._native
            self._native = []
        for lock in native:
            lock.release()
        unpark_all = self._lot.unpark_all
        for loop in loops:
            if not loop.closed:
                loop.run_callback_threadsafe(unpark_all)

    def clear(self) -> None:
        with self._lock:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        hub = get_hub_if_exists()
        if hub is None:
            return self._wait_native(timeout)
        loop = hub.loop
        deadline = None if timeout is None else monotonic() + timeout
        loop.ref()
        try:
            while True:
                with self._lock:
                    if self._flag:
                        return True
                    if loop not in self._loops:
                        self._loops.append(loop)
                if deadline is None:
                    self._lot.park()
                else:
                    remaining = deadline - monotonic()
                    if remaining <= 0 or not self._lot.park(remaining):
                        return self._flag
        finally:
            loop.unref()

    def _wait_native(self, timeout: float | None) -> bool:
        lock = _allocate_lock()
        lock.acquire()
        with self._lock:
            if self._flag:
                return True
            self._native.append(lock)
        try:
            lock.acquire(True, -1 if timeout is None else max(0.0, timeout))
        finally:
            with self._lock:
                try:
                    self._native.remove(lock)
                except ValueError:
                    pass
        return self._flag


class _EventWaiter:
    """A ``concurrent.futures`` waiter that just sets an event (for result())."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = _CrossThreadEvent()

    def add_result(self, future: Any) -> None:
        self.event.set()

    add_exception = add_cancelled = add_result


class _WaiterList(list):
    """A future's ``_waiters``: makes the waiters installed by
    :func:`concurrent.futures.wait` / ``as_completed`` cooperative.

    Those functions create a waiter holding a ``threading.Event``, append it
    to each future's ``_waiters`` (this method, in the waiting thread) and
    then block on ``waiter.event.wait()``.  When the waiting thread uses
    greenweave, the event is swapped for a :class:`_CrossThreadEvent` first.
    """

    __slots__ = ()

    def append(self, waiter: Any) -> None:
        if type(waiter) is not _EventWaiter:
            event = getattr(waiter, "event", None)
            if (event is not None and type(event) is not _CrossThreadEvent
                    and get_hub_if_exists() is not None):
                green = _CrossThreadEvent()
                if event.is_set():
                    green.set()
                waiter.event = green
        list.append(self, waiter)


_DONE_STATES = (_cf_base.FINISHED, _cf_base.CANCELLED, _cf_base.CANCELLED_AND_NOTIFIED)


class _GreenFuture(_cf.Future):
    """A Future whose blocking methods only block the calling greenlet."""

    def __init__(self) -> None:
        super().__init__()
        # Native lock even if threading is monkey-patched: worker threads
        # complete the future under it.
        self._condition = _threading.Condition(_NativeRLock())
        self._waiters = _WaiterList()
        self._gw_links: list | None = None

    def _gw_wait(self, timeout: float | None) -> None:
        waiter = _EventWaiter()
        with self._condition:
            if self._state in _DONE_STATES:
                return
            list.append(self._waiters, waiter)
        try:
            waiter.event.wait(timeout)
        finally:
            with self._condition:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    def result(self, timeout: float | None = None) -> Any:
        if self._state not in _DONE_STATES and get_hub_if_exists() is not None:
            self._gw_wait(timeout)
            timeout = 0
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._state not in _DONE_STATES and get_hub_if_exists() is not None:
            self._gw_wait(timeout)
            timeout = 0
        return super().exception(timeout)

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        # The base class wakes condition waiters; ours wait on events.
        with self._condition:
            waiters = [w for w in self._waiters if type(w) is _EventWaiter]
        for w in waiters:
            w.event.set()
        return True

    # -- greenweave.wait / iwait support --------------------------------
    def rawlink(self, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(self)`` in the current thread's hub once done."""
        if not callable(callback):
            raise TypeError(f"Expected callable: {callback!r}")
        loop = get_hub().loop
        entry = [callback, loop, True, False]  # callback, loop, active, holds a ref
        first = False
        with self._condition:
            done = self._state in _DONE_STATES
            if not done:
                if self._gw_links is None:
                    self._gw_links = []
                    first = True
                self._gw_links.append(entry)
                entry[3] = True
                loop.ref()
        if done:
            loop.run_callback(self._gw_fire, entry)
        elif first:
            self.add_done_callback(_GreenFuture._gw_on_done)

    def unlink(self, callback: Callable[[Any], Any]) -> None:
        with self._condition:
            links = self._gw_links
            if not links:
                return
            mine = [e for e in links if e[0] == callback and e[2]]
            for e in mine:
                links.remove(e)
        for e in mine:
            e[2] = False
            if e[3] and e[1] is get_hub().loop:
                e[3] = False
                e[1].unref()

    def _gw_on_done(self) -> None:
        # Any thread (whichever completed the future).
        with self._condition:
            links = self._gw_links
            self._gw_links = None
        for entry in links or ():
            loop = entry[1]
            if not loop.closed:
                loop.run_callback_threadsafe(self._gw_fire, entry)

    def _gw_fire(self, entry: list) -> None:
        if entry[3]:
            entry[3] = False
            entry[1].unref()
        if entry[2]:
            entry[2] = False
            entry[0](self)


class _ExecutorItem:
    """One submitted call, run in a worker thread."""

    __slots__ = ("future", "fn", "args", "kwargs")

    def __init__(self, future: _GreenFuture, fn: Callable[..., Any], args: tuple,
                 kwargs: dict) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def _run(self) -> None:
        future = self.future
        if not future.set_running_or_notify_cancel():
            return
        fn, args, kwargs = self.fn, self.args, self.kwargs
        self.fn = self.args = self.kwargs = None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)


class ThreadPoolExecutor(_cf.ThreadPoolExecutor):
    """A :class:`concurrent.futures.ThreadPoolExecutor` on native threads
    (even when ``threading`` is monkey-patched) whose futures block only the
    calling greenlet.

    ``future.result()`` / ``exception()``, :func:`concurrent.futures.wait`,
    :func:`concurrent.futures.as_completed` and ``shutdown(wait=True)`` are
    cooperative when called in a thread that uses greenweave (one with a
    hub); elsewhere they block the thread as usual.  The futures also work
    with :func:`greenweave.wait` and :func:`greenweave.iwait`.  Unlike a
    :class:`ThreadPool`, an executor may be used from any thread.
    """

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "",
                 initializer: Callable[..., Any] | None = None, initargs: tuple = (),
                 **kwargs: Any) -> None:
        super().__init__(max_workers, thread_name_prefix, initializer, initargs, **kwargs)
        self._gw_lock = _allocate_lock()
        self._gw_initializer = initializer
        self._gw_initargs = initargs
        self._gw_shutdown = False
        self._gw_broken: str | None = None
        self._gw_workers = _Workers(self._max_workers, -1,
                                    self._gw_thread_start if initializer is not None else None)
        self._gw_workers.exited = _CrossThreadEvent()
        self.pid = os.getpid()
        _pools.add(self)
        # Like the stdlib's: dropped without shutdown(), its threads finish
        # the queued work and exit.
        self._gw_workers_ref = [self._gw_workers]
        weakref.finalize(self, _retire_workers, self._gw_workers_ref).atexit = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> _cf.Future:
        with self._gw_lock:
            if self._gw_broken:
                raise _cf_thread.BrokenThreadPool(self._gw_broken)
            if self._gw_shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if getattr(_cf_thread, "_shutdown", False):
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            future = _GreenFuture()
            self._gw_workers.submit(_ExecutorItem(future, fn, args, kwargs))
        return future

    submit.__doc__ = """Schedule ``fn(*args, **kwargs)`` on a worker thread and return a
        :class:`concurrent.futures.Future` for its outcome (whose ``result()``
        blocks only the calling greenlet)."""

    def _adjust_thread_count(self) -> None:
        # The stdlib's thread management is not used: see _Workers.
        pass

    def _gw_thread_start(self) -> bool:
        try:
            self._gw_initializer(*self._gw_initargs)
        except BaseException:
            _cf_base.LOGGER.critical("Exception in initializer:", exc_info=True)
            self._gw_initializer_failed()
            return False
        return True

    def _gw_initializer_failed(self) -> None:
        message = "A thread initializer failed, the thread pool is not usable anymore"
        with self._gw_lock:
            self._gw_broken = message
            self._broken = message
            items = self._gw_workers.drain()
        for item in items:
            try:
                item.future.set_exception(_cf_thread.BrokenThreadPool(message))
            except _cf.InvalidStateError:
                pass

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._gw_lock:
            self._gw_shutdown = True
            self._shutdown = True
            items = self._gw_workers.drain() if cancel_futures else ()
            self._gw_workers.close()
        for item in items:
            item.future.cancel()
            item.future.set_running_or_notify_cancel()  # wakes wait()/as_completed()
        if wait:
            if _get_ident() in self._gw_workers.idents:
                raise RuntimeError("cannot join current thread")
            self._gw_workers.exited.wait()

    shutdown.__doc__ = _cf.Executor.shutdown.__doc__

    #: gevent's name for :meth:`shutdown`.
    kill = shutdown

    def _on_fork(self) -> None:
        if self.pid == os.getpid():
            return
        self.pid = os.getpid()
        workers = _Workers(self._max_workers, -1, self._gw_workers._on_thread_start)
        workers.exited = _CrossThreadEvent()
        self._gw_lock = _allocate_lock()
        self._gw_workers = self._gw_workers_ref[0] = workers
        if self._gw_shutdown:
            workers.close()


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        try:
            pool._on_fork()
        except Exception:  # pragma: no cover - never break fork()
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
