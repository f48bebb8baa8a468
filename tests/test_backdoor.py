"""greenweave.backdoor over real loopback sockets: a console per connection,
output confined to its connection (other greenlets keep printing where they
did), quit()/exit()/sys.exit()/EOF close only that connection, the real
standard streams come back once the last console is gone."""

from __future__ import annotations

import io
import sys
import time

import pytest

import greenweave
from greenweave import socket as gsocket
from greenweave.backdoor import BackdoorServer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    fresh_hub.exception_stream = io.StringIO()
    return fresh_hub


@pytest.fixture
def backdoor():
    servers = []

    def start(**kwargs):
        server = BackdoorServer(("127.0.0.1", 0), **kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(timeout=1)


class Console:
    """A client of the backdoor: send lines, read up to the next prompt."""

    def __init__(self, server):
        self.sock = gsocket.create_connection(server.address, timeout=5)
        self.buf = b""

    def read_until(self, marker=b">>> "):
        while marker not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        out, _, self.buf = self.buf.partition(marker)
        return out.decode()

    def run(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.read_until()

    def read_to_eof(self):
        out = self.buf
        self.buf = b""
        while True:
            data = self.sock.recv(4096)
            if not data:
                return out.decode()
            out += data

    def close(self):
        self.sock.close()


def test_banner_eval_print_and_locals(backdoor):
    server = backdoor(locals={"answer": 41}, banner="Welcome to the test")
    c = Console(server)
    assert "Welcome to the test" in c.read_until()
    assert c.run("answer + 1").strip() == "42"
    assert c.run("print('hello', 'there')").strip() == "hello there"
    assert c.run("import sys; sys.stderr.write('to stderr\\n')").strip().startswith("to stderr")
    out = c.run("1/0")
    assert "ZeroDivisionError" in out and "Traceback" in out
    c.sock.sendall(b"def f(x):\r\n")
    assert c.read_until(b"... ") == ""  # continuation prompt
    c.sock.sendall(b"    return x * 2\r\n")
    assert c.read_until(b"... ") == ""
    assert c.run("").strip() == ""
    assert c.run("f(21)").strip() == "42"
    c.close()


def test_default_banner_names_python():
    server = BackdoorServer("127.0.0.1:0")
    server.start()
    try:
        c = Console(server)
        assert "Python " + sys.version.split()[0] in c.read_until()
        c.close()
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["quit()", "exit()", "import sys; sys.exit(3)",
                                 "raise SystemExit", "EOF"])
def test_quitting_closes_only_that_connection(backdoor, how):
    real_stdin = sys.stdin
    server = backdoor()
    other = Console(server)
    other.read_until()
    c = Console(server)
    c.read_until()
    if how == "EOF":
        c.sock.shutdown(gsocket.SHUT_WR)
    else:
        c.sock.sendall(how.encode() + b"\r\n")
    c.read_to_eof()  # the server closes this connection
    c.close()
    # Everything else goes on: the other console, new consoles, the process.
    assert other.run("6 * 7").strip() == "42"
    other.close()
    fresh = Console(server)
    fresh.read_until()
    assert fresh.run("'still here'").strip() == "'still here'"
    fresh.close()
    assert server.started
    assert not getattr(real_stdin, "closed", False)  # quit() closed the connection's stdin


def test_each_connection_has_its_own_namespace_and_output(backdoor):
    server = backdoor(locals={"shared": "x"})
    a, b = Console(server), Console(server)
    a.read_until()
    b.read_until()
    a.run("mine = 'a'")
    b.run("mine = 'b'")
    assert a.run("print(mine, shared)").strip() == "a x"
    assert b.run("print(mine, shared)").strip() == "b x"
    a.close()
    b.close()


def test_other_greenlets_prints_do_not_reach_the_connection(backdoor, capsys):
    server = backdoor()
    stop = []

    def chatter():
        while not stop:
            print("background-chatter")
            greenweave.sleep(0.005)

    g = greenweave.spawn(chatter)
    c = Console(server)
    c.read_until()
    # A console command that yields to the hub while printing.
    out = c.run("import greenweave\nfor i in range(5): print('console', i); greenweave.sleep(0.01)")
    out += c.run("")
    stop.append(True)
    g.join()
    assert "background-chatter" not in out
    assert "console 4" in out
    c.close()
    deadline = time.monotonic() + 5
    while type(sys.stdout).__name__ == "_StreamProxy" and time.monotonic() < deadline:
        greenweave.sleep(0.01)
    captured = capsys.readouterr().out
    assert "background-chatter" in captured and "console" not in captured


def test_real_streams_are_restored_after_the_last_console(backdoor):
    before = (sys.stdin, sys.stdout, sys.stderr)
    server = backdoor()
    c = Console(server)
    c.read_until()
    assert (sys.stdin, sys.stdout, sys.stderr) != before  # proxies while a console is open
    c.sock.sendall(b"quit()\r\n")
    c.read_to_eof()
    c.close()
    deadline = time.monotonic() + 5
    while (sys.stdin, sys.stdout, sys.stderr) != before and time.monotonic() < deadline:
        greenweave.sleep(0.01)
    assert (sys.stdin, sys.stdout, sys.stderr) == before


def test_client_disconnect_mid_output_is_harmless(backdoor, fresh_hub):
    server = backdoor()
    c = Console(server)
    c.read_until()
    c.sock.sendall(b"import greenweave\r\nfor i in range(200): print('x' * 1000); "
                   b"greenweave.sleep(0.001)\r\n\r\n")
    c.sock.recv(10)
    c.close()
    greenweave.sleep(0.5)
    d = Console(server)
    d.read_until()
    assert d.run("2 + 2").strip() == "4"
    d.close()
    assert "Traceback" not in fresh_hub.exception_stream.getvalue()
