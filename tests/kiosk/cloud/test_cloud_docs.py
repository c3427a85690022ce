"""The contract's documents keep up with the code: every topic, event type and command.

docs/contracts/mqtt.md is the contract (with docs/mqtt-asyncapi.yaml, its
machine-readable form); docs/cloud.md says what the cloud does with each event.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jsonschema
import pytest
from cloudrig import Contract

from kiosk.cloud import payloads
from kiosk.cloud.commands import CommandHandler

ROOT = Path(__file__).resolve().parents[3]
CLOUD_MD = (ROOT / "docs" / "cloud.md").read_text(encoding="utf-8")
MQTT_MD = (ROOT / "docs" / "contracts" / "mqtt.md").read_text(encoding="utf-8")


def emitted_event_types() -> set[str]:
    """Every `ledger.outbox.add(now, "type", ...)` literal in the product, plus command.result."""
    found = {"command.result"}
    for path in (ROOT / "kiosk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add"
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "outbox"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                found.add(node.args[1].value)
    return found


def handled_commands() -> set[str]:
    source = (ROOT / "kiosk" / "cloud" / "commands.py").read_text(encoding="utf-8")
    return set(re.findall(r'"([a-z]+\.[a-z_]+)": self\._', source)) | {"door.open"}


def test_the_scan_finds_events_and_commands():
    assert {"parcel.delivered", "door.jammed", "code.lockout"} <= emitted_event_types()
    assert {"reservation.create", "door.open", "technician.set_pin"} <= handled_commands()
    assert hasattr(CommandHandler, "handle")


def test_every_topic_is_a_channel():
    doc = Contract().doc
    for name in (payloads.STATUS, payloads.STATE, payloads.EVENTS, payloads.COMMANDS):
        assert doc["channels"][name]["address"] == "{prefix}/{site}/" + name
        assert f"| `<prefix>/{name}` |" in MQTT_MD, f"docs/contracts/mqtt.md has no row for {name}"


@pytest.mark.parametrize("event_type", sorted(emitted_event_types()))
def test_every_event_type_has_a_message_and_a_line_in_the_docs(event_type):
    contract = Contract()
    assert event_type in contract.messages, f"{event_type} missing from mqtt-asyncapi.yaml"
    envelope = contract.doc["components"]["schemas"]["EventEnvelope"]
    assert event_type in envelope["properties"]["type"]["enum"]
    assert f"`{event_type}`" in CLOUD_MD, f"docs/cloud.md does not say what to do with {event_type}"
    assert f"`{event_type}`" in MQTT_MD, f"docs/contracts/mqtt.md does not list {event_type}"


@pytest.mark.parametrize("command", sorted(handled_commands()))
def test_every_command_is_in_the_claims_schema_and_the_contract(command):
    claims = Contract().doc["components"]["schemas"]["CommandClaims"]
    assert command in claims["properties"]["cmd"]["enum"]
    row = re.search(rf"^\| `{re.escape(command)}` \|", MQTT_MD, re.MULTILINE)
    assert row, f"docs/contracts/mqtt.md's command table has no row for {command}"


def test_every_schema_is_a_valid_json_schema():
    for name, schema in Contract().doc["components"]["schemas"].items():
        try:
            jsonschema.Draft7Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise AssertionError(f"{name}: {exc.message}") from exc


def test_parcel_bodies_carry_parcel_and_locker_door_and_locker_bodies_a_label():
    contract = Contract()
    for event_type in contract.messages:
        if event_type.startswith("parcel."):
            body = {"parcel_id": "P-1"}
        elif event_type.startswith(("door.", "locker.")):
            body = {}
        else:
            continue
        event = {
            "id": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
            "seq": 1,
            "type": event_type,
            "ts": "2026-11-24T12:00:00Z",
            "body": body,
        }
        with pytest.raises(jsonschema.ValidationError):
            contract.check_event(event)


def test_a_reopen_is_a_door_reason_with_its_role_in_the_contract():
    """Contract 1.2: door.opened / door.closed `reason: "reopen"` with `role`, listed in
    cloud.md and announced in mqtt.md."""
    contract = Contract()
    assert contract.doc["info"]["version"] == "1.2.0"
    body = {"label": "A-1", "parcel_id": "P-1", "reason": "reopen", "role": "courier"}
    for event_type in ("door.opened", "door.closed"):
        event = {
            "id": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
            "seq": 1,
            "type": event_type,
            "ts": "2026-11-24T12:00:00Z",
            "body": body,
        }
        contract.check_event(event)
        with pytest.raises(jsonschema.ValidationError):
            contract.check_event({**event, "body": {**body, "role": "technician"}})
    assert "`reopen` with `role`" in CLOUD_MD and "## v1.2: reopens" in MQTT_MD
