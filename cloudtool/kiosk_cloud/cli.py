"""`kiosk-cloud ...`: the cloud's side of the MQTT contract, for operators and tests.

Talks to the broker directly (never to a daemon). Exit codes: 0 done, 1 the
kiosk refused or did not answer in time, 2 bad usage, 3 broker unreachable,
141 stdout closed under it (`kiosk-cloud watch | head -3`), quietly.
Codes drawn here are printed once and leave only as digests.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kiosk.cli_guard import quiet_on_closed_stdout
from kiosk.domain.errors import ConfigError, KioskError
from kiosk_cloud import __version__

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
SIZES = ["S", "M", "L"]


@quiet_on_closed_stdout
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except ConfigError as exc:  # a bad --code-key file
        _err(exc.message)
        return EXIT_REFUSED
    except KioskError as exc:
        _err(f"{exc.message} [{exc.code}]")
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # the reader of stdout went away: ended quietly (quiet_on_closed_stdout)


def build_parser() -> argparse.ArgumentParser:
    """`kiosk-cloud` and its subcommands (the options before ACTION apply to every one)."""
    json_opt = argparse.ArgumentParser(add_help=False)
    json_opt.add_argument("--json", action="store_true", help="print JSON")
    site_opt = argparse.ArgumentParser(add_help=False)
    site_opt.add_argument("--site", metavar="ID", required=True, help="the kiosk's site id")

    cloud = argparse.ArgumentParser(
        prog="kiosk-cloud",
        description="the cloud's side of the locker-kiosk MQTT contract (talks to the broker)",
    )
    cloud.add_argument("--version", action="version", version=f"locker-kiosk-cloud {__version__}")
    cloud.add_argument(
        "--broker",
        metavar="HOST:PORT",
        default=os.environ.get("KIOSK_CLOUD_BROKER", "localhost:1883"),
        help="the broker (default $KIOSK_CLOUD_BROKER, else localhost:1883)",
    )
    cloud.add_argument("--prefix", metavar="PREFIX", default="lockers/v1", help="topic prefix")
    cloud.add_argument("--ca-file", metavar="FILE", type=Path, help="CA to check the broker (TLS)")
    cloud.add_argument("--cert-file", metavar="FILE", type=Path, help="client certificate (TLS)")
    cloud.add_argument("--key-file", metavar="FILE", type=Path, help="client certificate's key")
    cloud.add_argument("--tls", action="store_true", help="TLS with the system's CAs")
    cloud.add_argument(
        "--cloud-key", metavar="FILE", type=Path, help="the cloud's Ed25519 private key (PEM)"
    )
    cloud.add_argument(
        "--code-key", metavar="FILE", type=Path, help="the site code key file (reserve, returns)"
    )
    cloud.add_argument(
        "--timeout", metavar="S", type=float, default=15.0, help="wait this long for an answer"
    )
    sub = cloud.add_subparsers(dest="cloud_command", metavar="ACTION", required=True)

    def leaf(name: str, help_: str, fn: Callable[..., int], parents=()):  # type: ignore[no-untyped-def]
        made = sub.add_parser(name, parents=list(parents), help=help_)
        made.set_defaults(func=fn)
        return made

    keygen = leaf("keygen", "make the cloud's Ed25519 key pair and a site code key", cmd_keygen)
    keygen.add_argument("dir", metavar="DIR")
    reserve = leaf(
        "reserve",
        "announce a parcel: draw its codes, send their digests",
        cmd_reserve,
        [site_opt, json_opt],
    )
    reserve.add_argument("--size", required=True, choices=SIZES, metavar="S|M|L")
    reserve.add_argument("--parcel-id", metavar="ID", help="default: a new id")
    reserve.add_argument("--order-id", metavar="ID", default="", help="the order it belongs to")
    reserve.add_argument("--deliver-by", metavar="TIME", help="RFC 3339 deadline for the courier")
    reserve.add_argument(
        "--code-length",
        metavar="N",
        type=int,
        default=6,
        help="digits: the site's policy.code_length (6)",
    )
    cancel = leaf("cancel", "cancel an expected parcel", cmd_cancel, [site_opt, json_opt])
    cancel.add_argument("parcel_id", metavar="PARCEL_ID")
    extend = leaf("extend", "give a delivered parcel longer", cmd_extend, [site_opt, json_opt])
    extend.add_argument("parcel_id", metavar="PARCEL_ID")
    extend.add_argument("--expires-at", metavar="TIME", required=True, help="RFC 3339")
    ret = leaf(
        "schedule-return",
        "issue a return code for an expired parcel",
        cmd_schedule_return,
        [site_opt, json_opt],
    )
    ret.add_argument("parcel_id", metavar="PARCEL_ID")
    ret.add_argument(
        "--code-length",
        metavar="N",
        type=int,
        default=6,
        help="digits: the site's policy.code_length (6)",
    )
    opener = leaf("open", "open a door remotely (support)", cmd_open, [site_opt, json_opt])
    opener.add_argument("label", metavar="LABEL")
    opener.add_argument("--reason", metavar="TEXT", required=True, help="why (audited)")
    watch = leaf(
        "watch", "the event stream, with gap and duplicate checks by seq", cmd_watch, [json_opt]
    )
    watch.add_argument("--site", metavar="ID", default="+", help="one site (default: all)")
    watch.add_argument("--count", metavar="N", type=int, help="stop after N events")
    watch.add_argument("--seconds", metavar="S", type=float, help="stop after S seconds")
    nearby = leaf(
        "nearby", "sites near a point with a free locker (retained state)", cmd_nearby, [json_opt]
    )
    nearby.add_argument("--lat", metavar="DEG", type=float, required=True)
    nearby.add_argument("--lon", metavar="DEG", type=float, required=True)
    nearby.add_argument("--radius-km", metavar="KM", type=float, required=True)
    nearby.add_argument("--size", choices=SIZES, metavar="S|M|L", help="must have one that fits")
    nearby.add_argument("--wait", metavar="S", type=float, default=1.0, help="collect for S s")
    return cloud


# --- helpers ------------------------------------------------------------------


def _err(text: str) -> None:
    print(f"error: {text}", file=sys.stderr)


def _client(args: argparse.Namespace, need_key: bool = True):  # type: ignore[no-untyped-def]
    from kiosk.cloud.mqtt import Endpoint, parse_hostport
    from kiosk_cloud.client import CloudClient
    from kiosk_cloud.signing import load_private_key

    key = None
    if need_key:
        if args.cloud_key is None:
            raise SystemExit(_usage("--cloud-key FILE is needed to sign commands"))
        key = load_private_key(args.cloud_key)
    host, port = parse_hostport(args.broker)
    endpoint = Endpoint(host, port, args.ca_file, args.cert_file, args.key_file, args.tls)
    return CloudClient(endpoint, args.prefix, key).connect(args.timeout)


def _usage(text: str) -> int:
    _err(text)
    return EXIT_USAGE


def _code_key(args: argparse.Namespace) -> bytes:
    from kiosk.domain.codes import parse_code_key

    if args.code_key is None:
        raise SystemExit(_usage("--code-key FILE (the site code key) is needed to draw codes"))
    return parse_code_key(Path(args.code_key).read_text(encoding="ascii"), str(args.code_key))


def _command(args: argparse.Namespace, cmd: str, cmd_args: dict[str, Any]) -> dict[str, Any] | None:
    """Send one command to args.site and wait for its command.result (None: no answer)."""
    with _client(args) as client:
        client.subscribe(client.topics(args.site).events)
        jti = client.send(args.site, cmd, cmd_args)
        return client.wait_result(jti, args.timeout)


def _report(args: argparse.Namespace, body: dict[str, Any] | None, extra: dict[str, Any]) -> int:
    if body is None:
        _err(f"no answer from site {args.site} in {args.timeout:g} s (is it online?)")
        return EXIT_REFUSED
    out = {**extra, "result": body}
    if args.json:
        print(json.dumps(out))
    elif body["ok"]:
        for key, value in extra.items():
            print(f"{key}: {value}")
        print(f"ok ({body['command_id']})")
    else:
        err = body.get("error") or {}
        _err(f"{err.get('message')} [{err.get('code')}]")
    return EXIT_OK if body["ok"] else EXIT_REFUSED


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from kiosk_cloud.client import CloudError

        try:
            return fn(args)
        except BrokenPipeError:
            raise  # stdout closed: not the command's failure (quiet_on_closed_stdout)
        except CloudError as exc:
            _err(str(exc))
            return EXIT_UNREACHABLE
        except (OSError, ValueError) as exc:
            _err(str(exc))
            return EXIT_REFUSED
        except SystemExit as exc:
            return int(exc.code or 0)

    run.__name__ = fn.__name__
    return run


# --- the commands -------------------------------------------------------------


@_guard
def cmd_keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.domain.codes import new_code_key_text

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    names = ["cloud-ed25519.key", "cloud-ed25519.pem", "site-code.key"]
    taken = [n for n in names if (out / n).exists()]
    if taken:
        _err(f"{out} already holds {', '.join(taken)}; not overwriting keys")
        return EXIT_REFUSED
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    files = [
        (names[0], private, 0o600),
        (names[1], public, 0o644),
        (names[2], new_code_key_text().encode("ascii"), 0o600),
    ]
    for name, data, mode in files:
        fd = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(out / name, mode)
    # Told once all three are written: a reader gone early cannot leave half a set.
    for name, _, mode in files:
        print(f"{out / name} ({oct(mode)[2:]})")
    print("the kiosk gets cloud-ed25519.pem (keys.cloud_public_key_file) and site-code.key")
    return EXIT_OK


@_guard
def cmd_reserve(args: argparse.Namespace) -> int:
    import secrets

    from kiosk.domain.codes import code_digest, draw_code

    key = _code_key(args)
    parcel_id = args.parcel_id or f"P-{secrets.token_hex(5).upper()}"
    body = None
    for _ in range(3):  # a code already active at the site: draw again
        delivery = draw_code(args.code_length, lambda c: False)
        pickup = draw_code(args.code_length, lambda c, d=delivery: c == d)
        cmd_args = {
            "parcel_id": parcel_id,
            "order_id": args.order_id,
            "size": args.size,
            "deliver_by": args.deliver_by,
            "delivery_digest": code_digest(key, delivery),
            "pickup_digest": code_digest(key, pickup),
        }
        body = _command(args, "reservation.create", cmd_args)
        if body is None or (body.get("error") or {}).get("code") != "code_collision":
            break
    extra = {"parcel_id": parcel_id, "size": args.size}
    if body is not None and body["ok"]:
        extra |= {"delivery_code": delivery, "pickup_code": pickup}
    return _report(args, body, extra)


@_guard
def cmd_cancel(args: argparse.Namespace) -> int:
    body = _command(args, "reservation.cancel", {"parcel_id": args.parcel_id})
    return _report(args, body, {"parcel_id": args.parcel_id})


@_guard
def cmd_extend(args: argparse.Namespace) -> int:
    body = _command(
        args, "parcel.extend", {"parcel_id": args.parcel_id, "expires_at": args.expires_at}
    )
    return _report(args, body, {"parcel_id": args.parcel_id, "expires_at": args.expires_at})


@_guard
def cmd_schedule_return(args: argparse.Namespace) -> int:
    from kiosk.domain.codes import code_digest, draw_code

    key = _code_key(args)
    body = None
    for _ in range(3):  # a code already active at the site: draw again
        code = draw_code(args.code_length, lambda c: False)
        body = _command(
            args,
            "parcel.schedule_return",
            {"parcel_id": args.parcel_id, "return_digest": code_digest(key, code)},
        )
        if body is None or (body.get("error") or {}).get("code") != "code_collision":
            break
    extra: dict[str, Any] = {"parcel_id": args.parcel_id}
    if body is not None and body["ok"]:
        extra["return_code"] = code
    return _report(args, body, extra)


@_guard
def cmd_open(args: argparse.Namespace) -> int:
    body = _command(args, "door.open", {"label": args.label, "reason": args.reason})
    return _report(args, body, {"label": args.label})


@_guard
def cmd_watch(args: argparse.Namespace) -> int:
    from kiosk_cloud.watch import SeqTracker, describe

    tracker = SeqTracker()
    deadline = time.monotonic() + args.seconds if args.seconds else None
    seen = 0
    with _client(args, need_key=False) as client:
        client.subscribe(f"{args.prefix}/{args.site}/events")
        while args.count is None or seen < args.count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                msg = client.messages.get(timeout=min(left or 1.0, 1.0))
            except queue.Empty:
                continue
            site = msg.topic.split("/")[-2]
            try:
                event = msg.json()
                note = tracker.see(site, int(event["seq"]))
            except (ValueError, KeyError, TypeError):
                print(f"{site}: not an event: {msg.payload[:200]!r}", file=sys.stderr)
                continue
            seen += 1
            if args.json:
                print(json.dumps({"site": site, **event, "check": note}), flush=True)
            else:
                print(describe(site, event, note), flush=True)
    if tracker.gaps:
        _err(f"gaps in seq: {tracker.gaps}")
        return EXIT_REFUSED
    return EXIT_OK


@_guard
def cmd_nearby(args: argparse.Namespace) -> int:
    from kiosk_cloud.client import rank_sites

    states: dict[str, dict[str, Any]] = {}
    with _client(args, need_key=False) as client:
        client.subscribe(f"{args.prefix}/+/state")
        deadline = time.monotonic() + args.wait
        for msg in client.receive(timeout=0.3):
            try:
                state = msg.json()
            except ValueError:
                continue
            if isinstance(state, dict):
                states[msg.topic] = state
            if time.monotonic() > deadline:
                break
    found = rank_sites(list(states.values()), args.lat, args.lon, args.radius_km, args.size)
    if args.json:
        print(json.dumps({"sites": found}))
        return EXIT_OK
    if not found:
        print(
            f"no site within {args.radius_km:g} km"
            + (f" with a free {args.size}" if args.size else "")
        )
    for f in found:
        free = " ".join(f"{s}:{n}" for s, n in f["available"].items())
        print(
            f"{f['distance_km']:8.2f} km  {f['site']}  {f['name']}  ({f['address']})  free {free}"
        )
    return EXIT_OK
