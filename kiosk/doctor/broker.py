"""The cloud link: the broker reachable over TLS, and the client certificate's days left."""

from __future__ import annotations

import datetime as dt
import socket
import ssl

from cryptography import x509

from kiosk.config.model import KioskConfig
from kiosk.doctor.result import Check, fail, ok, skip, warn

CONNECT_TIMEOUT_S = 10.0
#: Fewer days left than this on the client certificate: a warning.
CERT_WARN_DAYS = 30


def broker(config: KioskConfig) -> list[Check]:
    mqtt = config.mqtt
    if mqtt is None:
        return [skip("broker", "no [mqtt] table: this bank runs with no cloud link")]
    where = f"{mqtt.host}:{mqtt.port}"
    checks: list[Check] = []
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=CONNECT_TIMEOUT_S) as raw:
            if mqtt.tls:
                context = ssl.create_default_context(
                    cafile=str(mqtt.ca_file) if mqtt.ca_file else None
                )
                if mqtt.cert_file and mqtt.key_file:
                    context.load_cert_chain(str(mqtt.cert_file), str(mqtt.key_file))
                with context.wrap_socket(raw, server_hostname=mqtt.host) as tls:
                    version = tls.version()
                checks.append(ok("broker", f"{where}: TLS handshake done ({version})"))
            else:
                checks.append(ok("broker", f"{where}: reachable, plain TCP (`tls = false`)"))
    except ssl.SSLCertVerificationError as exc:
        checks.append(
            fail(
                "broker",
                f"{where}: the broker's certificate does not check out ({exc.verify_message})",
                "check `mqtt.ca_file` is the CA that signed the broker's certificate, "
                "and `mqtt.host` the name in it",
            )
        )
    except (ssl.SSLError, OSError) as exc:
        checks.append(
            fail(
                "broker",
                f"{where}: {exc.strerror or exc}"
                if isinstance(exc, OSError)
                else f"{where}: {exc}",
                "check the network, `mqtt.host` and `mqtt.port`, and that the broker runs; "
                "key files readable by this user (run as root or kiosk)",
            )
        )
    checks.append(_cert_days(config))
    return checks


def _cert_days(config: KioskConfig, now: dt.datetime | None = None) -> Check:
    mqtt = config.mqtt
    if mqtt is None or mqtt.cert_file is None:
        return skip("client_cert", "no `mqtt.cert_file`: the link uses no client certificate")
    try:
        cert = x509.load_pem_x509_certificate(mqtt.cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        return fail(
            "client_cert",
            f"{mqtt.cert_file}: cannot read it ({exc})",
            "put a PEM certificate there",
        )
    now = now or dt.datetime.now(dt.UTC)
    days = (cert.not_valid_after_utc - now).days
    detail = f"{mqtt.cert_file}: {days} days left (until {cert.not_valid_after_utc:%Y-%m-%d})"
    renew = "renew the bank's client certificate with the cloud and install it (cloud.md)"
    if days < 0:
        return fail("client_cert", f"{mqtt.cert_file}: expired {-days} days ago", renew)
    if days < CERT_WARN_DAYS:
        return warn("client_cert", detail, renew)
    return ok("client_cert", detail)
