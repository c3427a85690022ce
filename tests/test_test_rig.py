"""The test rig itself holds up under pytest-xdist: a broker whose port was taken moves."""

from __future__ import annotations

import socket
from pathlib import Path

from support.broker import Broker


def test_a_broker_whose_port_another_process_took_starts_on_new_ports(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker")
    taken = broker.port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        broker.start()
        try:
            assert broker.port != taken
            assert broker.proc is not None and broker.proc.poll() is None
            with socket.create_connection(("127.0.0.1", broker.port), timeout=10):
                pass
        finally:
            broker.stop()
