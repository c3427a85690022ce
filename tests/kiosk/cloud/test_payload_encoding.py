"""An event goes up as the same JSON a plain json.dumps of the whole would give, escapes and all."""

import json

import pytest

from kiosk.cloud.payloads import dumps, event_payload
from kiosk.ledger.records import OutboxEvent


@pytest.mark.parametrize(
    ("event_id", "type_", "body"),
    [
        ("6f1c2f4e-1b7a-4c44-9a51-1f6f3f2b8e10", "door.opened", {"label": "A-1"}),
        ("x", "parcel.delivered", {"parcel_id": 'P"1\\', "note": "é ✓", "n": [1, 2.5, None]}),
        ('a"b', "t\\x\n", {}),  # never written by the ledger, but still valid JSON
    ],
)
def test_event_payload_is_the_same_json(event_id, type_, body):
    event = OutboxEvent.of(42, event_id, type_, "2026-11-24T12:00:00.000000Z", body)
    sent = event_payload(event)
    whole = {"id": event_id, "seq": 42, "type": type_, "ts": event.ts, "body": body}
    assert json.loads(sent) == json.loads(dumps(whole)) == whole
