"""greenweave.monkey: the patchers, originals, warnings and ``python -m greenweave.monkey``.

Patching the standard library is process-wide, so everything that patches a
real module runs in a fresh interpreter (a script in tmp_path that asserts
and prints OK); only fake modules are patched in this process.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import types

import pytest

from greenweave import monkey

pytestmark = pytest.mark.timeout(60)

PY = sys.executable


def run(tmp_path, source: str, *args: str, via_monkey: list[str] | None = None,
        timeout: float = 45, expect_rc: int | None = 0, name: str = "prog.py",
        env: dict | None = None) -> subprocess.CompletedProcess:
    """Write ``source`` to tmp_path/name and run it (optionally through
    ``python -m greenweave.monkey`` with the given options)."""
    script = tmp_path / name
    script.write_text(textwrap.dedent(source))
    cmd = [PY]
    if via_monkey is not None:
        cmd += ["-m", "greenweave.monkey", *via_monkey]
    cmd += [str(script), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env=env)
    if expect_rc is not None:
        assert proc.returncode == expect_rc, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def run_ok(tmp_path, source: str, **kwargs) -> subprocess.CompletedProcess:
    proc = run(tmp_path, textwrap.dedent(source) + "\nprint('OK')\n", **kwargs)
    assert proc.stdout.strip().endswith("OK"), proc.stdout + proc.stderr
    return proc


def monkey_cli(tmp_path, *argv: str, timeout: float = 45) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "greenweave.monkey", *argv], capture_output=True,
                          text=True, timeout=timeout, cwd=tmp_path)


# -- patch_module and friends, on fake modules (in process) ----------------------


class _Boom(Exception):
    pass


@pytest.fixture
def fake_modules():
    """A fake 'stdlib' module and a fake greenweave counterpart, registered in
    sys.modules; removed (with their saved originals) afterwards."""
    target = types.ModuleType("gw_fake_std")
    source = types.ModuleType("gw_fake_green")

    def std_func():
        return "std"

    def green_func():
        return "green"

    class StdClass:
        pass

    class GreenClass:
        pass

    target.func, source.func = std_func, green_func
    target.Klass, source.Klass = StdClass, GreenClass
    target.shared = source.shared = len  # the same object: nothing to patch
    target.CONSTANT, source.CONSTANT = 1, 2  # not callable: constants stay
    target.Error, source.Error = _Boom, type("OtherBoom", (Exception,), {})
    target.submodule, source.submodule = types, os  # modules are never patched
    source.extra = green_func  # not in the target: nothing to replace
    source._private = green_func
    target._private = std_func
    sys.modules[target.__name__] = target
    sys.modules[source.__name__] = source
    yield target, source
    for mod in (target, source):
        sys.modules.pop(mod.__name__, None)
        monkey.saved.pop(mod.__name__, None)


def test_patch_module_derives_what_to_replace(fake_modules):
    target, source = fake_modules
    assert sorted(monkey._implemented_names(source, target)) == ["Klass", "func"]
    std_func, std_class = target.func, target.Klass
    assert monkey.patch_module(target, source) is True
    assert target.func() == "green" and target.Klass is source.Klass
    assert target.CONSTANT == 1 and target.Error is _Boom and target.submodule is types
    assert target._private() == "std" and not hasattr(target, "extra")
    assert monkey.is_module_patched("gw_fake_std")
    assert monkey.is_object_patched("gw_fake_std", "func")
    assert not monkey.is_object_patched("gw_fake_std", "CONSTANT")
    assert monkey.get_original("gw_fake_std", "func") is std_func
    assert monkey.get_original("gw_fake_std", ["func", "Klass", "CONSTANT"]) == \
        [std_func, std_class, 1]
    # patching again changes nothing and keeps the true originals
    assert monkey.patch_module("gw_fake_std", "gw_fake_green") is True
    assert monkey.get_original("gw_fake_std", "func") is std_func
    assert monkey.saved["gw_fake_std"]["func"] is std_func


def test_patch_module_follows_implements(fake_modules):
    target, source = fake_modules
    source.__implements__ = ["CONSTANT", "extra", "missing"]
    monkey.patch_module(target, source)
    assert target.CONSTANT == 2  # listed explicitly: patched even though a constant
    assert target.extra is source.extra  # added; the original did not exist
    assert not hasattr(target, "missing")
    assert target.func() == "std"
    with pytest.raises(AttributeError, match="had no attribute"):
        monkey.get_original("gw_fake_std", "extra")


def test_patch_module_with_explicit_items(fake_modules):
    target, source = fake_modules
    monkey.patch_module(target, source, items=["Klass"])
    assert target.Klass is source.Klass and target.func() == "std"


def test_patch_item_and_remove_item(fake_modules):
    target, _ = fake_modules
    original = target.func
    monkey.patch_item(target, "func", print)
    monkey.patch_item(target, "func", repr)
    assert target.func is repr
    assert monkey.get_original("gw_fake_std", "func") is original
    monkey.remove_item(target, "Klass")
    assert not hasattr(target, "Klass")
    assert monkey.get_original("gw_fake_std", "Klass").__name__ == "StdClass"
    monkey.remove_item(target, "never_there")  # no error


def test_patch_module_vetoed_by_a_subscriber(fake_modules):
    from greenweave import events

    target, source = fake_modules
    seen = []

    def veto(event):
        seen.append(event)
        if isinstance(event, events.GeventWillPatchModuleEvent):
            raise events.DoNotPatch

    events.subscribers.append(veto)
    try:
        assert monkey.patch_module(target, source) is False
    finally:
        events.subscribers.remove(veto)
    assert target.func() == "std"
    assert not monkey.is_module_patched("gw_fake_std")
    assert len(seen) == 1 and seen[0].module_name == "gw_fake_std"
    assert sorted(seen[0].target_item_names) == ["Klass", "func"]


def test_get_original_of_an_unpatched_module():
    import json

    assert monkey.get_original("json", "dumps") is json.dumps
    assert monkey.get_original("json", ("dumps", "loads")) == [json.dumps, json.loads]
    with pytest.raises(AttributeError):
        monkey.get_original("json", "no_such_name")


def test_warning_class():
    assert issubclass(monkey.MonkeyPatchWarning, RuntimeWarning)


# -- each patcher, in a fresh interpreter ------------------------------------------


def test_patch_time(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_time()
        import time, greenweave
        from greenweave import time as gtime
        assert time.sleep is greenweave.sleep is gtime.sleep
        assert monkey.get_original("time", "sleep").__module__ == "time"
        start = time.monotonic()
        greenweave.joinall([greenweave.spawn(time.sleep, 0.2) for _ in range(50)])
        assert time.monotonic() - start < 2
        assert gtime.monotonic is time.monotonic  # the rest is re-exported
        assert monkey.saved["time"].keys() == {"sleep"}
    """)


def test_patch_socket(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_socket()
        import socket, greenweave
        import greenweave.socket as gsocket
        for name in ("socket", "SocketType", "create_connection", "socketpair", "fromfd",
                     "getaddrinfo", "gethostbyname"):
            assert getattr(socket, name) is getattr(gsocket, name), name
            assert monkey.is_object_patched("socket", name), name
        assert socket.error is OSError and socket.timeout is TimeoutError
        assert monkey.get_original("socket", "socket").__module__ == "socket"
        # cooperative: a blocked recv lets other greenlets run
        a, b = socket.socketpair()
        ran = []
        g = greenweave.spawn(lambda: a.recv(10))
        greenweave.spawn(lambda: (ran.append(1), b.sendall(b"hi")))
        assert g.get(timeout=5) == b"hi" and ran == [1]
        assert socket.getaddrinfo("127.0.0.1", 80)[0][4][0] == "127.0.0.1"
    """)


def test_patch_socket_without_dns_then_patch_dns(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        import socket
        original_getaddrinfo = socket.getaddrinfo
        monkey.patch_socket(dns=False)
        assert monkey.is_object_patched("socket", "socket")
        assert socket.getaddrinfo is original_getaddrinfo
        assert not monkey.is_object_patched("socket", "gethostbyname")
        monkey.patch_dns()
        import greenweave.socket as gsocket
        assert socket.getaddrinfo is gsocket.getaddrinfo
        assert monkey.get_original("socket", "getaddrinfo") is original_getaddrinfo
    """)


def test_patch_select_and_selectors(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        import select, selectors
        epoll = select.epoll
        monkey.patch_select()
        import greenweave.select as gselect, greenweave.selectors as gselectors
        assert select.select is gselect.select and select.poll is gselect.poll
        assert not hasattr(select, "epoll")  # aggressive: would block the hub
        assert monkey.get_original("select", "epoll") is epoll
        assert selectors.DefaultSelector is gselectors.DefaultSelector
        assert not hasattr(selectors, "EpollSelector")
        assert selectors.PollSelector._selector_cls is gselect.poll
        # the hub (and new hubs) still work: they hold their own epoll
        import greenweave, threading, _thread
        out = []
        done = _thread.allocate_lock(); done.acquire()
        def other_thread():
            greenweave.sleep(0.01); out.append("other hub ok"); done.release()
        _thread.start_new_thread(other_thread, ())
        assert done.acquire(timeout=5) and out == ["other hub ok"]
        # select() is cooperative
        import socket
        a, b = socket.socketpair()
        greenweave.spawn_later(0.05, b.send, b"x")
        ticks = []
        greenweave.spawn(lambda: ticks.append(1))
        r, _, _ = select.select([a], [], [], 5)
        assert r == [a] and ticks == [1]
        sel = selectors.SelectSelector()
        sel.register(a, selectors.EVENT_READ)
        assert sel.select(1)
    """)


def test_patch_select_not_aggressive_keeps_epoll(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        import select, selectors
        monkey.patch_select(aggressive=False)
        assert hasattr(select, "epoll") and hasattr(selectors, "EpollSelector")
        import greenweave.select as gselect
        assert select.select is gselect.select
    """)


def test_patch_os(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_os()
        import os, time, greenweave
        import greenweave.os as gos
        for name in gos.__implements__:
            if hasattr(gos, name):
                assert getattr(os, name) is getattr(gos, name), name
        pid = os.fork()
        if pid == 0:
            time.sleep(0.2)  # unpatched: a real sleep in the child
            os._exit(5)
        ticks = []
        ticker = greenweave.spawn(lambda: [ticks.append(greenweave.sleep(0.02)) for _ in range(3)])
        _, status = os.waitpid(pid, 0)  # cooperative: the ticker runs meanwhile
        assert os.waitstatus_to_exitcode(status) == 5
        assert len(ticks) == 3, ticks
        ticker.join()
    """)


def test_patch_subprocess(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_all()
        import subprocess, sys, time, threading
        import greenweave.subprocess as gsub
        assert subprocess.Popen is gsub.Popen and subprocess.run is gsub.run
        start = time.monotonic()
        results = []
        def child():
            results.append(subprocess.run(
                [sys.executable, "-c", "import time; time.sleep(0.5); print('hi')"],
                capture_output=True, text=True).stdout)
        threads = [threading.Thread(target=child) for _ in range(5)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert results == ["hi\\n"] * 5
        assert time.monotonic() - start < 2.4  # 5 x 0.5 s sequentially
    """)


def test_patch_signal(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_all()
        import signal, os, time, threading
        import greenweave.signal as gsignal
        assert signal.signal is gsignal.signal and signal.getsignal is gsignal.getsignal
        got = []
        signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got == [signal.SIGUSR1], got
        # child watchers keep working next to a SIGCHLD handler
        import subprocess, sys
        signal.signal(signal.SIGCHLD, lambda *a: None)
        assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
    """)


def test_signal_handler_installed_from_a_green_thread(tmp_path):
    # Under gevent this works: it is the main OS thread.
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_all()
        import signal, os, time, threading
        got = []
        def install():
            signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
        t = threading.Thread(target=install); t.start(); t.join()
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got == [signal.SIGUSR1], got
    """)


def test_patch_queue(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_queue()
        import queue, greenweave
        import greenweave.queue as gqueue
        assert queue.SimpleQueue is gqueue.SimpleQueue
        assert queue.Empty is gqueue.Empty  # exceptions keep their identity
        q = queue.SimpleQueue()
        greenweave.spawn_later(0.05, q.put, "item")
        ticks = []
        greenweave.spawn(lambda: ticks.append(1))
        assert q.get(timeout=5) == "item" and ticks == [1]
        try:
            q.get(timeout=0.01)
        except queue.Empty:
            pass
        else:
            raise AssertionError("expected queue.Empty")
        assert queue.Queue(0).maxsize in (0, None)  # 0 still means unbounded
        q2 = queue.Queue(0)
        for i in range(100):
            q2.put_nowait(i)
    """)


def test_patch_sys(tmp_path):
    proc = run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_sys()
        import sys
        from greenweave.fileobject import FileObjectThread
        assert isinstance(sys.stdout, FileObjectThread), sys.stdout
        assert isinstance(sys.stderr, FileObjectThread)
        assert isinstance(sys.stdin, FileObjectThread)
        assert monkey.get_original("sys", "stdout") is sys.__stdout__
        print("through the wrapper")
        sys.stderr.write("to stderr\\n")
    """)
    assert "through the wrapper" in proc.stdout
    assert proc.stderr == "to stderr\n"


def test_patch_builtins_and_contextvars_are_harmless_noops(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_builtins()
        monkey.patch_contextvars()
        assert not monkey.is_module_patched("builtins")
        assert not monkey.is_anything_patched()
    """)


def test_patch_all(tmp_path):
    run_ok(tmp_path, """
        import warnings
        warnings.simplefilter("error")
        from greenweave import monkey
        assert not monkey.is_anything_patched()
        assert monkey.patch_all() is True
        assert monkey.is_anything_patched()
        import socket, time, threading, select, queue, subprocess, signal, os, _thread
        for mod in ("socket", "time", "threading", "_thread", "select", "selectors", "queue",
                    "subprocess", "signal", "os"):
            assert monkey.is_module_patched(mod), mod
        assert not monkey.is_module_patched("sys")
        assert monkey.is_module_patched("thread")  # the Python 2 name works too
        import greenweave
        assert time.sleep is greenweave.sleep
    """)


def test_patch_all_selected_modules(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_all(thread=False, socket=False, dns=False)
        assert not monkey.is_module_patched("threading")
        assert not monkey.is_module_patched("socket")
        assert monkey.is_module_patched("time")
    """)


def test_patching_twice_is_harmless(tmp_path):
    run_ok(tmp_path, """
        import warnings
        warnings.simplefilter("error")
        from greenweave import monkey
        import socket, threading
        original_socket = socket.socket
        monkey.patch_all()
        green_socket = socket.socket
        monkey.patch_all()  # same arguments: silent
        monkey.patch_socket()
        monkey.patch_thread()
        assert socket.socket is green_socket
        assert monkey.get_original("socket", "socket") is original_socket
        t = threading.Thread(target=lambda: None)
        t.start(); t.join()
    """)


def test_patching_again_with_other_arguments_warns(tmp_path):
    run_ok(tmp_path, """
        import warnings
        from greenweave import monkey
        monkey.patch_all(thread=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            monkey.patch_all()
        messages = [str(w.message) for w in caught if w.category is monkey.MonkeyPatchWarning]
        assert len(messages) == 1 and "more than once" in messages[0], messages
        assert "thread=True" in messages[0], messages
        assert caught[0].filename == __file__  # points at the caller
        assert monkey.is_module_patched("threading")
    """)


def test_ssl_imported_first_warns(tmp_path):
    proc = run_ok(tmp_path, """
        import ssl
        from ssl import SSLContext  # a direct reference patching cannot reach
        import warnings
        from greenweave import monkey
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            monkey.patch_all()
        messages = [str(w.message) for w in caught if w.category is monkey.MonkeyPatchWarning]
        assert len(messages) == 1, messages
        assert "ssl" in messages[0] and "__main__" in messages[0], messages
        assert caught[0].filename == __file__
    """)
    assert proc.stderr == ""


def test_no_warning_when_patching_first(tmp_path):
    proc = run_ok(tmp_path, """
        import warnings
        warnings.simplefilter("error")
        from greenweave import monkey
        monkey.patch_all()
        import ssl, http.client, urllib.request
    """)
    assert proc.stderr == ""


@pytest.mark.skipif(importlib.util.find_spec("greenweave.ssl") is None,
                    reason="this installation has no greenweave.ssl")
def test_patch_ssl(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        monkey.patch_all()
        import ssl
        import greenweave.ssl as gssl
        assert monkey.is_module_patched("ssl")
        assert ssl.SSLContext is gssl.SSLContext
    """)


# -- python -m greenweave.monkey ---------------------------------------------------

SCRIPT = """\
import sys, os
print("name", __name__)
print("argv", sys.argv)
print("file", __file__ == os.path.abspath(sys.argv[0]))
print("path0", sys.path[0] == os.path.dirname(os.path.abspath(__file__)))
print("main", sys.modules["__main__"].__dict__ is globals())
from greenweave import monkey
print("patched", monkey.is_module_patched("socket"), monkey.is_module_patched("threading"))
import pickle
class Thing:
    pass
print("pickle", type(pickle.loads(pickle.dumps(Thing()))) is Thing)
"""


def test_cli_runs_a_script_as_main(tmp_path):
    proc = run(tmp_path, SCRIPT, "a", "--b", via_monkey=[])
    lines = proc.stdout.splitlines()
    assert lines == [
        "name __main__",
        f"argv [{str(tmp_path / 'prog.py')!r}, 'a', '--b']",
        "file True",
        "path0 True",
        "main True",
        "patched True True",
        "pickle True",
    ], proc.stdout + proc.stderr
    assert proc.stderr == ""


def test_cli_exit_status(tmp_path):
    proc = run(tmp_path, "import sys; print('bye'); sys.exit(3)", via_monkey=[], expect_rc=3)
    assert proc.stdout == "bye\n" and proc.stderr == ""
    proc = run(tmp_path, "raise SystemExit('fatal: message')", via_monkey=[], expect_rc=1)
    assert proc.stderr == "fatal: message\n"


def test_cli_traceback_is_as_if_run_directly(tmp_path):
    source = """\
        def inner():
            raise ValueError("boom")
        def outer():
            inner()
        outer()
    """
    direct = run(tmp_path, source, expect_rc=1)
    patched = run(tmp_path, source, via_monkey=[], expect_rc=1)
    assert "Traceback (most recent call last)" in direct.stderr
    assert patched.stderr == direct.stderr
    assert "greenweave" not in patched.stderr and "runpy" not in patched.stderr


def test_cli_custom_excepthook_gets_the_clean_traceback(tmp_path):
    source = """\
        import sys, traceback
        def hook(typ, value, tb):
            files = [f.filename for f in traceback.extract_tb(tb)]
            print("hook", typ.__name__, all(f == __file__ for f in files), len(files))
        sys.excepthook = hook
        def f():
            raise KeyError("x")
        f()
    """
    proc = run(tmp_path, source, via_monkey=[], expect_rc=1)
    assert proc.stdout == "hook KeyError True 2\n", proc.stdout + proc.stderr


def test_cli_syntax_error_is_reported_as_python_does(tmp_path):
    direct = run(tmp_path, "x = (\n", expect_rc=1)
    patched = run(tmp_path, "x = (\n", via_monkey=[], expect_rc=1)
    assert "SyntaxError" in direct.stderr
    assert patched.stderr == direct.stderr


def test_cli_keyboard_interrupt_exit_status(tmp_path):
    source = "raise KeyboardInterrupt\n"
    direct = run(tmp_path, source, expect_rc=None)
    patched = run(tmp_path, source, via_monkey=[], expect_rc=None)
    assert direct.returncode == -signal.SIGINT
    assert patched.returncode == direct.returncode
    assert patched.stderr == direct.stderr


def test_cli_runs_a_module(tmp_path):
    pkg = tmp_path / "gwpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tool.py").write_text(textwrap.dedent("""\
        import sys
        from greenweave import monkey
        print(__name__, __spec__.name, __package__, sys.argv[1:])
        print(sys.argv[0] == __file__, monkey.is_module_patched("socket"))
        sys.exit(4)
    """))
    (pkg / "__main__.py").write_text("print('package main', __name__)\n")
    proc = monkey_cli(tmp_path, "-m", "gwpkg.tool", "x", "-y")
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout.splitlines() == ["__main__ gwpkg.tool gwpkg ['x', '-y']", "True True"]
    proc = monkey_cli(tmp_path, "--module", "gwpkg")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "package main __main__\n"


def test_cli_module_traceback(tmp_path):
    (tmp_path / "gwmod.py").write_text("def f():\n    1 / 0\nf()\n")
    direct = subprocess.run([PY, "-m", "gwmod"], capture_output=True, text=True, cwd=tmp_path,
                            timeout=30)
    patched = monkey_cli(tmp_path, "-m", "gwmod")
    assert patched.returncode == direct.returncode == 1
    assert "ZeroDivisionError" in direct.stderr
    # python -m shows runpy's own frames first; ours must not add any
    assert patched.stderr.count("File ") <= direct.stderr.count("File ")
    assert patched.stderr.splitlines()[-4:] == direct.stderr.splitlines()[-4:]
    assert "greenweave" not in patched.stderr


def test_cli_missing_module_and_script(tmp_path):
    proc = monkey_cli(tmp_path, "-m", "gw_no_such_module")
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("No module named gw_no_such_module")
    (tmp_path / "gwemptypkg").mkdir()
    (tmp_path / "gwemptypkg" / "__init__.py").write_text("")
    proc = monkey_cli(tmp_path, "-m", "gwemptypkg")
    assert proc.returncode == 1 and "cannot be directly executed" in proc.stderr
    proc = monkey_cli(tmp_path, "no_such_script.py")
    assert proc.returncode == 2 and "can't open file" in proc.stderr


def test_cli_options(tmp_path):
    report = """\
        from greenweave import monkey
        print(sorted(m for m in ("socket", "threading", "time", "select", "os") if
                     monkey.is_module_patched(m)))
    """
    assert run(tmp_path, report, via_monkey=[]).stdout.strip() == \
        "['os', 'select', 'socket', 'threading', 'time']"
    assert run(tmp_path, report, via_monkey=["--no-thread"]).stdout.strip() == \
        "['os', 'select', 'socket', 'time']"
    assert run(tmp_path, report, via_monkey=["--no-thread", "--no-os"]).stdout.strip() == \
        "['select', 'socket', 'time']"
    assert run(tmp_path, report, via_monkey=["--socket"]).stdout.strip() == "['socket']"
    assert run(tmp_path, report, via_monkey=["--socket", "--time"]).stdout.strip() == \
        "['socket', 'time']"


def test_cli_verbose(tmp_path):
    proc = run(tmp_path, "print('program output')", via_monkey=["--verbose", "--socket"])
    assert proc.stdout == "program output\n"
    assert "patched socket:" in proc.stderr and "create_connection" in proc.stderr
    assert "threading" not in proc.stderr


def test_cli_usage_errors(tmp_path):
    proc = monkey_cli(tmp_path)
    assert proc.returncode == 2 and "usage:" in proc.stderr
    proc = monkey_cli(tmp_path, "--bogus", "x.py")
    assert proc.returncode == 2 and "--bogus" in proc.stderr
    proc = monkey_cli(tmp_path, "-m")
    assert proc.returncode == 2
    proc = monkey_cli(tmp_path, "--help")
    assert proc.returncode == 0 and "--no-NAME" in proc.stdout


def test_cli_program_threads_are_green_and_waited_for(tmp_path):
    proc = run(tmp_path, """\
        import threading, time
        start = time.monotonic()
        def work():
            time.sleep(0.3)
        threads = [threading.Thread(target=work) for _ in range(50)]
        for t in threads: t.start()
        for t in threads: t.join()
        print("elapsed ok", time.monotonic() - start < 2)
        def last():
            time.sleep(0.2)
            print("last thread done")
        threading.Thread(target=last).start()
    """, via_monkey=[])
    assert proc.stdout == "elapsed ok True\nlast thread done\n"
