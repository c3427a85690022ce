"""The cloud's half of the contract over paho (blocking): sign and send commands, read events.

Used by `kiosk-cloud`, the tests and the benchmarks. One paho thread per client; what it
receives goes into a `queue.Queue`, read by the caller's thread.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.cloud.mqtt import Endpoint, new_client
from kiosk.cloud.payloads import Topics
from kiosk_cloud.signing import sign


class CloudError(Exception):
    """The broker could not be reached, or did not acknowledge in time."""


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class CloudClient:
    def __init__(
        self,
        endpoint: Endpoint,
        prefix: str = "lockers/v1",
        key: Ed25519PrivateKey | None = None,
        client_id: str = "",
        clean_session: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self.key = key
        self.messages: queue.Queue[Message] = queue.Queue()
        self._client = new_client(client_id, endpoint, clean_session=clean_session)
        self._connected = threading.Event()
        self._acked: set[int] = set()
        self._subacks: set[int] = set()
        self._cond = threading.Condition()
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # --- paho's thread ------------------------------------------------------

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            self._connected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        with self._cond:
            self._subacks.add(mid)
            self._cond.notify_all()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self.messages.put(Message(message.topic, bytes(message.payload), bool(message.retain)))

    # --- the caller's thread ------------------------------------------------

    def connect(self, timeout: float = 10.0) -> CloudClient:
        try:
            self._client.connect(self.endpoint.host, self.endpoint.port, 30)
        except OSError as exc:
            where = f"{self.endpoint.host}:{self.endpoint.port}"
            raise CloudError(f"cannot reach {where}: {exc}") from None
        self._client.loop_start()
        if not self._connected.wait(timeout):
            self.close()
            raise CloudError("the broker did not accept the connection")
        return self

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> CloudClient:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, mids: set[int], mid: int, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: mid in mids, timeout):
                raise CloudError("the broker did not acknowledge in time")
            mids.discard(mid)

    def subscribe(self, topic: str, timeout: float = 10.0) -> None:
        _rc, mid = self._client.subscribe(topic, qos=1)
        self._wait(self._subacks, mid, timeout)

    def publish(
        self, topic: str, payload: bytes, retain: bool = False, timeout: float = 10.0
    ) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        self._wait(self._acked, info.mid, timeout)

    def topics(self, site: str) -> Topics:
        return Topics(self.prefix, site)

    def send(
        self, site: str, cmd: str, args: dict[str, Any], ttl_s: int = 300, **extra: Any
    ) -> str:
        """Sign and publish one command; returns its jti (the command_id of its answer)."""
        if self.key is None:
            raise CloudError("no cloud private key (--cloud-key FILE)")
        jti, token = sign(self.key, site, cmd, args, datetime.now(UTC), ttl_s, **extra)
        self.publish(self.topics(site).commands, token.encode("ascii"))
        return jti

    def receive(self, timeout: float) -> Iterator[Message]:
        """Messages as they come, until `timeout` seconds pass with none."""
        while True:
            try:
                yield self.messages.get(timeout=timeout)
            except queue.Empty:
                return

    def wait_result(self, jti: str, timeout: float = 15.0) -> dict[str, Any] | None:
        """The body of the `command.result` answering `jti` (on any subscribed events topic)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if not msg.topic.endswith("/events"):
                continue
            event = msg.json()
            body = event.get("body") or {}
            if event.get("type") == "command.result" and body.get("command_id") == jti:
                return body
        return None


# --- location search (docs/cloud.md, over retained `state` messages) ------------

EARTH_RADIUS_KM = 6371.0088


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on a sphere of the Earth's mean radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def rank_sites(
    states: list[dict[str, Any]],
    lat: float,
    lon: float,
    radius_km: float,
    size: str | None = None,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """Sites within `radius_km`, nearest first, with a free locker that fits `size` if given."""
    order = ["S", "M", "L"]
    found = []
    for state in states:
        loc = state.get("location") or {}
        if not isinstance(loc.get("lat"), int | float) or not isinstance(
            loc.get("lon"), int | float
        ):
            continue
        distance = great_circle_km(lat, lon, loc["lat"], loc["lon"])
        if distance > radius_km:
            continue
        lockers = state.get("lockers") or {}
        free = {s: int((lockers.get(s) or {}).get("available", 0)) for s in order}
        if size is not None and not any(free[s] for s in order[order.index(size) :]):
            continue
        found.append(
            {
                "site": state.get("site"),
                "name": loc.get("name", ""),
                "address": loc.get("address", ""),
                "distance_km": round(distance, 3),
                "available": free,
            }
        )
    found.sort(key=lambda f: (f["distance_km"], str(f["site"])))
    return found[:limit]
