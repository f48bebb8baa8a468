"""Deploying across cores: gunicorn with greenweave's worker.

One greenweave process uses one core.  To use all of them, run several
processes behind one listening socket; gunicorn does exactly that::

    gunicorn -k greenweave.gunicorn.Worker -w 4 --worker-connections 1000 gunicorn_app:app

(``-w``: one worker per core is a good start; ``--worker-connections``: the
most connections each worker serves at once.)  Each worker monkey-patches
the standard library before it loads the application, so ``app`` below is
an ordinary WSGI callable whose blocking calls only block its own request.

Run as a script, this file starts gunicorn that way (2 workers, listening on a
Unix socket in a temporary directory), sends it 20 concurrent requests that
each take 0.1 s, prints what happened, and stops gunicorn.
"""

import os
import time


def app(environ, start_response):
    time.sleep(0.1)  # cooperative inside the worker: it is monkey-patched
    body = f"served by worker {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    import signal
    import subprocess
    import sys
    import tempfile

    import greenweave
    from greenweave import socket

    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gunicorn.sock")
        master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "greenweave.gunicorn.Worker", "-w", "2",
             "--worker-connections", "100", "-b", f"unix:{path}", "--chdir", here,
             "--log-level", "warning", "gunicorn_app:app"])
        try:
            def get() -> str:
                with socket.socket(socket.AF_UNIX) as conn:
                    conn.settimeout(10)
                    conn.connect(path)
                    conn.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    response = b""
                    while chunk := conn.recv(4096):
                        response += chunk
                return response.decode().rsplit("\r\n\r\n", 1)[1].strip()

            deadline = time.monotonic() + 30
            while True:  # wait until gunicorn answers
                try:
                    get()
                    break
                except OSError:
                    if time.monotonic() > deadline or master.poll() is not None:
                        raise SystemExit("gunicorn did not start")
                    greenweave.sleep(0.1)

            started = time.perf_counter()
            requests = [greenweave.spawn(get) for _ in range(20)]
            greenweave.joinall(requests, raise_error=True)
            elapsed = time.perf_counter() - started
            workers = {r.value for r in requests}
            print(f"20 concurrent requests of 0.1 s took {elapsed:.2f} s "
                  f"({len(workers)} worker process(es) answered)")
        finally:
            master.send_signal(signal.SIGTERM)
            master.wait(timeout=30)
    print("gunicorn stopped with exit status", master.returncode)


if __name__ == "__main__":
    main()

# expect: ^20 concurrent requests of 0\.1 s took 0\.[1-5]\d s \([12] worker
# expect: ^gunicorn stopped with exit status 0$
# requires: gunicorn
