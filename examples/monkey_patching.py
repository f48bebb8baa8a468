"""Monkey patching: run ordinary threaded, blocking code on greenlets.

``patch_all()`` must run first, before anything imports ``socket``,
``threading``, ``ssl``... so that every module that imports them afterwards
gets the cooperative versions.

The rest of this file is plain standard-library code: an ``http.server``
whose handler sleeps 0.2 s (think: a slow database), and five
``threading.Thread`` clients using ``urllib``.  Patched, the threads are
greenlets and the sleeps and socket waits are cooperative, so the five
requests take about 0.2 s in total.  Then the same requests made one after
another, with no thread at all: patching changes nothing about code that
never spawns; it simply runs sequentially (0.2 s each).
"""

from greenweave import monkey

monkey.patch_all()

import http.server  # noqa: E402  (imports after patching, on purpose)
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402


class SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.2)  # patched: blocks only this request's greenlet
        body = b"hello from " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the output short
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for loopback


native_ids = set()


def get(path: str, results: list) -> None:
    native_ids.add(threading.get_native_id())  # the OS thread this "thread" runs in
    with opener.open(base + path, timeout=10) as response:
        results.append(response.read().decode())


print("socket patched:", monkey.is_module_patched("socket"))

results: list = []
started = time.perf_counter()
threads = [threading.Thread(target=get, args=(f"/{i}", results)) for i in range(5)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"5 requests in 5 threads: {time.perf_counter() - started:.2f} s, {len(results)} answers")
print(f"OS threads those 5 threads ran in: {len(native_ids)}")

results.clear()
started = time.perf_counter()
get("/a", results)
get("/b", results)
print(f"2 requests one after another, no threads: {time.perf_counter() - started:.2f} s")
print("answers:", results)
server.shutdown()

# expect: ^socket patched: True$
# expect: ^5 requests in 5 threads: 0\.[2-4]\d s, 5 answers$
# expect: ^OS threads those 5 threads ran in: 1$
# expect: ^2 requests one after another, no threads: 0\.[4-6]\d s$
# expect: ^answers: \['hello from /a', 'hello from /b'\]$
