"""Simulated lock boards: register map v1 over scriptable door physics, served on a pty or TCP.

Product code (`kiosk demo` and `kiosk simulate board` run on it) that tests
drive with real clients: build a `SimBus` of `SimBoard`s, serve it with
`serve_pty` (Modbus RTU) or `serve_tcp` (Modbus TCP), script doors and faults
on the boards and the bus, and check `bus.frames` / `bus.pulses`.
"""

from firmware_bridge.simboard.board import MAP_VERSION, BoardError, SimBoard
from firmware_bridge.simboard.bus import BROADCAST, Answer, FrameRecord, SimBus
from firmware_bridge.simboard.physics import Door, DoorEvent, DoorMode, Pulse
from firmware_bridge.simboard.server import RtuServer, serve_tcp_connection, silence_s
from firmware_bridge.simboard.transports import PtyLink, SimTcpServer, serve_pty, serve_tcp

__all__ = [
    "BROADCAST",
    "MAP_VERSION",
    "Answer",
    "BoardError",
    "Door",
    "DoorEvent",
    "DoorMode",
    "FrameRecord",
    "PtyLink",
    "Pulse",
    "RtuServer",
    "SimBoard",
    "SimBus",
    "SimTcpServer",
    "serve_pty",
    "serve_tcp",
    "serve_tcp_connection",
    "silence_s",
]
