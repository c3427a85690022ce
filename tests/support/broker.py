"""A real MQTT broker for tests: Mosquitto on free ports (plain + mutual TLS), else amqtt.

    broker = Broker(tmp_path); broker.start()   # .port, .tls_port, .server_tls_port, .certs
    broker.kill(); broker.start()               # SIGKILL, then the same ports again
    broker.stop()

Mosquitto gets a config of its own: `user root` when we are root (else it
drops to the `mosquitto` user and cannot write its persistence file into our
temp dir), persistence in the temp dir, a plain listener on 127.0.0.1, a TLS
listener that requires a client certificate, and a TLS listener that asks
for none (`server_tls_port`: the client checks the broker, nothing more).
The CA, the server and a client certificate are made on the fly with
`cryptography`.

Without a `mosquitto` binary the amqtt broker (MQTT 3.1.1 only, run as a
child process) stands in, with no TLS listener: tests that need what amqtt
cannot do call `broker.require(...)`, which skips with the reason printed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str | None:
    """The mosquitto binary; KIOSK_TEST_BROKER=amqtt forces the stand-in (to test the fallback)."""
    if os.environ.get("KIOSK_TEST_BROKER") == "amqtt":
        return None
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all held open while choosing, so none comes twice)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(
    port: int,
    timeout: float = 10.0,
    host: str = "127.0.0.1",
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Wait until something listens on `port`; RuntimeError at once when `proc` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process for port {port} exited ({proc.returncode})")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.01)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


# --- certificates -------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here (for "wrong CA" tests)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _cert(subject, issuer, key, signer, ca: bool, sans=None):  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_certs(directory: Path) -> Certs:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _cert(_name("test CA"), _name("test CA"), ca_key, ca_key, ca=True)
    paths = {
        "ca": directory / "ca.pem",
        "server_cert": directory / "server.pem",
        "server_key": directory / "server.key",
        "client_cert": directory / "client.pem",
        "client_key": directory / "client.key",
        "other_ca": directory / "other-ca.pem",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for who, cn, extra in (("server", "localhost", sans), ("client", "kiosk-test", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(_name(cn), ca_cert.subject, key, ca_key, ca=False, sans=extra)
        paths[f"{who}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, paths[f"{who}_key"])
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert(_name("other CA"), _name("other CA"), other_key, other_key, ca=True)
    paths["other_ca"].write_bytes(other.public_bytes(serialization.Encoding.PEM))
    return Certs(**paths)


# --- the broker ---------------------------------------------------------------


class Broker:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.binary = find_mosquitto()
        self.kind = "mosquitto" if self.binary else "amqtt"
        port, tls_port, server_tls_port = free_ports(3)
        self.port = port
        self.tls_port = tls_port if self.binary else None
        self.server_tls_port = server_tls_port if self.binary else None
        self.certs = make_certs(self.dir / "certs") if self.binary else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "broker.log"

    def require(self, what: str) -> None:
        """Skip (reason printed) when the stand-in broker cannot do `what` ("tls", "mqtt5")."""
        if self.kind != "mosquitto":
            reason = f"needs Mosquitto for {what}; amqtt stands in here and cannot do it"
            print(f"SKIP: {reason}", file=sys.stderr)
            pytest.skip(reason)

    def _mosquitto_conf(self) -> Path:
        assert self.certs is not None
        persistence = self.dir / "data"
        persistence.mkdir(exist_ok=True)
        user = "user root\n" if os.geteuid() == 0 else ""
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            user
            + textwrap.dedent(
                f"""\
                persistence true
                persistence_location {persistence}/
                log_dest file {self.log}
                log_type error
                log_type warning
                log_type notice
                log_type subscribe
                allow_anonymous true
                max_queued_messages 100000
                set_tcp_nodelay true
                listener {self.port} 127.0.0.1
                listener {self.tls_port} 127.0.0.1
                cafile {self.certs.ca}
                certfile {self.certs.server_cert}
                keyfile {self.certs.server_key}
                require_certificate true
                listener {self.server_tls_port} 127.0.0.1
                cafile {self.certs.ca}
                certfile {self.certs.server_cert}
                keyfile {self.certs.server_key}
                require_certificate false
                """
            )
        )
        return conf

    def _amqtt_conf(self) -> Path:
        conf = self.dir / "amqtt.yaml"
        conf.write_text(
            textwrap.dedent(
                f"""\
                listeners:
                  default:
                    type: tcp
                    bind: 127.0.0.1:{self.port}
                plugins:
                  amqtt.plugins.authentication.AnonymousAuthPlugin:
                    allow_anonymous: true
                  amqtt.plugins.sys.broker.BrokerSysPlugin:
                    sys_interval: 0
                """
            )
        )
        return conf

    def start(self) -> Broker:
        """Start the broker; on a first start, new ports when another process took ours.

        The ports are free when chosen but not held, so a parallel test
        (pytest-xdist worker) can bind one first: the broker then exits at
        once and we choose again. A restart after kill() keeps its ports.
        """
        if self.proc is not None and self.proc.poll() is None:
            return self
        for _attempt in range(5):
            if self._launch():
                self._started = True
                return self
            port, tls_port, server_tls_port = free_ports(3)
            self.port = port
            self.tls_port = tls_port if self.binary else None
            self.server_tls_port = server_tls_port if self.binary else None
        tail = self.log.read_text()[-2000:]
        raise RuntimeError(f"{self.kind} found no free ports in 5 tries: {tail}")

    _started = False

    def _launch(self) -> bool:
        """Run the broker; False when it exited before listening (a port was taken)."""
        out = self.log.open("ab")
        if self.binary:
            argv = [self.binary, "-c", str(self._mosquitto_conf())]
        else:
            argv = [
                sys.executable,
                "-m",
                "amqtt.scripts.broker_script",
                "-c",
                str(self._amqtt_conf()),
            ]
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            for port in (self.port, self.tls_port, self.server_tls_port):
                if port:
                    wait_port(port, proc=self.proc)
        except RuntimeError:
            exited = self.proc.poll() is not None
            self.stop()
            if exited and not self._started:
                return False
            tail = self.log.read_text()[-2000:]
            raise RuntimeError(f"{self.kind} did not start: {tail}") from None
        return True

    def subscriptions(self, topic: str) -> int:
        """How many SUBSCRIBEs to exactly `topic` Mosquitto has logged (`log_type subscribe`:
        `<time>: <client id> <qos> <topic>`), so a test can wait for a subscriber, not sleep."""
        self.require("a subscription log")
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return sum(1 for line in lines if line.endswith(f" {topic}") and ": " in line)

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone (clients see the TCP connection drop)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
