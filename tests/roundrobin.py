"""A TCP load balancer on loopback for the replica tests: each new connection goes to the next
backend in turn, as a round-robin balancer in front of several registry hosts would send it."""

from __future__ import annotations

import socket
import threading


class RoundRobinProxy:
    def __init__(self, backend_ports: list[int]) -> None:
        self.backends = backend_ports
        self.connections = [0] * len(backend_ports)
        self._next = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                index = self._next
                self._next = (self._next + 1) % len(self.backends)
                self.connections[index] += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.backends[index]), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pumps = [threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                     for src, dst in ((client, upstream), (upstream, client))]
            for pump in pumps:
                pump.start()
            threading.Thread(target=self._close_after, args=(pumps, client, upstream), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        """Copy one direction until it ends, then pass the end on (half-close)."""
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    @staticmethod
    def _close_after(pumps: list[threading.Thread], *socks: socket.socket) -> None:
        for pump in pumps:
            pump.join()
        for sock in socks:
            sock.close()

    def close(self) -> None:
        self._listener.close()
