"""The echo server over TLS.

Give ``StreamServer`` an ``ssl_context`` (or the classic ``certfile=`` /
``keyfile=`` keyword arguments) and every accepted connection is wrapped in
TLS; the handshake runs in the connection's own greenlet, so a slow client
never holds up the accept loop.  Clients use ``greenweave.ssl`` exactly as
they would use the standard ``ssl`` module.

A real server loads its certificate from files::

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain("fullchain.pem", "privkey.pem")

This example makes a throw-away certificate authority with ``trustme``
(``pip install trustme``) so that it runs anywhere.
"""

import trustme

import greenweave
from greenweave import socket, ssl
from greenweave.server import StreamServer

authority = trustme.CA()
server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
authority.issue_cert("localhost").configure_cert(server_context)
client_context = ssl.create_default_context()
authority.configure_trust(client_context)


def handle(sock: ssl.SSLSocket, address: tuple) -> None:
    with sock:
        while data := sock.recv(4096):
            sock.sendall(data)


def client(port: int, n: int) -> str:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with client_context.wrap_socket(raw, server_hostname="localhost") as conn:
        conn.sendall(f"secret {n}".encode())
        return f"{conn.version()}: {conn.recv(4096).decode()}"


server = StreamServer(("127.0.0.1", 0), handle, ssl_context=server_context)
server.start()
replies = [greenweave.spawn(client, server.server_port, n) for n in range(20)]
greenweave.joinall(replies, raise_error=True)
print(len(replies), "TLS clients served; first reply:", replies[0].value)
server.stop()

# expect: ^20 TLS clients served; first reply: TLSv1\.[23]: secret 0$
