"""A delivery then a pickup through the real service, GPIO bank and ledger file."""

from kiosk.domain.sizes import Size


async def test_delivery_then_pickup(bank):
    svc = bank.service
    ann = svc.announce(Size.M)
    res = await svc.submit_code(ann.delivery_code)
    assert res.role == "courier" and res.locker == "B-1"
    assert bank.doors.is_open("B-1")
    bank.doors.close("B-1")
    outs = await svc.poll_doors()
    assert [o.result for o in outs] == ["delivered"]
    res = await svc.submit_code(ann.pickup_code)
    assert res.role == "customer" and res.locker == "B-1"
    bank.doors.close("B-1")
    outs = await svc.poll_doors()
    assert [o.result for o in outs] == ["picked_up"]
    assert bank.ledger.audit.verify().ok
