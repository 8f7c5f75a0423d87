"""A TCP proxy on 127.0.0.1 in front of the test server, for the network's faults: `cut()` drops every
connection it carries at once (a failed network, a NAT timeout: both ends see the connection close);
`stall()` stops forwarding in both directions and closes nothing, and connections opened after it are
accepted and never answered (a proxy that hangs, a route that drops every packet: neither end is told).

Behind a stalled proxy the tool's kernel still sees its TCP peer (the proxy) acknowledge everything,
so only the tool's own bounds end its waits (db.answered_within, the watchdog's reconnect), not its
TCP keepalives; test_keepalives.py checks those are set on every connection."""

import socket
import threading

from psycopg.conninfo import conninfo_to_dict


class Proxy:
    def __init__(self, admin_conninfo: str):
        params = conninfo_to_dict(admin_conninfo)
        host, port = params.get("host") or "localhost", int(params.get("port") or 5432)
        if host.startswith("/"):
            self.family, self.address = socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
        else:
            self.family, self.address = socket.AF_INET, (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.sockets.append(client)
            if not self._flowing.is_set():
                continue  # stalled: accepted (the kernel did), never answered
            upstream = socket.socket(self.family, socket.SOCK_STREAM)
            upstream.connect(self.address)
            self.sockets.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()  # stalled: held here, never sent on
                if self._closed:
                    break
                sink.sendall(data)
        except OSError:
            pass  # cut
        self._drop(source, sink)

    @staticmethod
    def _drop(*ends: socket.socket) -> None:
        # shutdown first: it wakes a thread blocked in recv() on the socket and sends the peer its EOF;
        # a bare close() does neither while that recv() holds the socket open.
        for end in ends:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed already
        for end in ends:
            end.close()

    def cut(self) -> None:
        self._drop(*self.sockets)

    def stall(self) -> None:
        self._flowing.clear()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        self.listener.close()
        self.cut()
