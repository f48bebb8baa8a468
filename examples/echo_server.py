"""A TCP echo server and 100 concurrent clients, in one thread.

``StreamServer`` accepts connections and calls ``handle(socket, address)`` in
a new greenlet for each one, so a handler is written as plain blocking code.
``spawn=Pool(N)`` would cap the number of connections served at once (the
server stops accepting while the pool is full).
"""

import greenweave
from greenweave import socket
from greenweave.server import StreamServer


def handle(sock: socket.socket, address: tuple) -> None:
    with sock:
        while data := sock.recv(4096):
            sock.sendall(data)


def client(port: int, n: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        message = f"hello {n}\n".encode()
        conn.sendall(message)
        reply = b""
        while len(reply) < len(message):
            reply += conn.recv(4096)
        return reply == message


server = StreamServer(("127.0.0.1", 0), handle)
server.start()  # listening; the accept loop runs in the hub
print("listening on", server.address)
clients = [greenweave.spawn(client, server.server_port, n) for n in range(100)]
greenweave.joinall(clients, raise_error=True)
print(sum(c.value for c in clients), "of 100 clients got their echo")
server.stop()

# expect: ^100 of 100 clients got their echo$
