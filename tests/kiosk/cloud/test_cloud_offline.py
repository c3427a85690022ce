"""Offline first: the broker dies mid-backlog, the bank works on, the backlog drains in order."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time

import pytest
from cloudrig import (
    PREFIX,
    SITE,
    CloudRig,
    Observer,
    cloud_client,
    mqtt_config,
    queue_events,
    wait_for,
)
from support.clock import SteppedClock

from kiosk.cloud.link import LinkTiming
from kiosk.daemon.app import Daemon
from kiosk.daemon.notify import Notifier
from kiosk.domain.sizes import Size

#: A kiosk that comes back slowly: the test's observer is subscribed again before it is.
SLOW_BACK = LinkTiming(
    backoff_first_s=1.0,
    backoff_max_s=1.0,
    connack_timeout_s=3.0,
    tick_s=0.02,
    state_check_s=0.05,
    stop_wait_s=1.0,
)


@pytest.mark.parametrize("how", ["SIGKILL", "restart"])
async def test_broker_gone_mid_backlog_no_loss_no_gap(tmp_path, broker, cloud_key, how):
    """SIGKILL: the broker loses what it had accepted but not yet passed on (its own memory),
    so the check is the kiosk's promise: everything not PUBACKed goes up again, in order.
    restart (SIGTERM, persistence, a persistent subscriber): end to end, nothing is lost."""
    if how == "restart":
        broker.require("sessions kept across a broker restart")
    observer = Observer(broker, persistent=how == "restart")
    await asyncio.to_thread(observer.connect)
    rig = CloudRig(tmp_path / "kiosk", mqtt_config(broker), cloud_key)
    rig.daemon.cloud_timing = SLOW_BACK
    async with rig:
        await wait_for(rig.listening)
        await wait_for(lambda: rig.ledger.outbox.depth() == 0)
        first, last = queue_events(rig.ledger, 4000)
        await wait_for(lambda: observer.take() >= 800, timeout=20, step=0.001)
        broker.kill() if how == "SIGKILL" else broker.stop()
        await wait_for(lambda: not rig.daemon.online())
        await asyncio.sleep(0.1)  # PUBACKs that made it before the end are taken in batches
        rig.link.pump.flush()
        pending = [
            e.seq for e in rig.ledger.outbox.pending(100_000)
        ]  # what the broker never confirmed
        assert 0 < len(pending) < 4000
        # the bank works with the broker gone: a technician takes a locker out
        rig.daemon.service.set_service("C-1", False, "offline test")
        await asyncio.to_thread(observer.take)
        observer.close()
        before = len(observer.seqs)
        broker.start()
        await asyncio.to_thread(observer.connect)
        await wait_for(rig.listening, timeout=10)
        await wait_for(lambda: rig.ledger.outbox.depth() == 0, timeout=30)
        await wait_for(lambda: observer.take() and set(observer.seqs) >= set(pending))
        await wait_for(
            lambda: observer.take() >= last + 1 - (first if how == "restart" else pending[0]) + 1,
            timeout=10,
        )
        assert rig.link.connections >= 2
    observer.take()
    observer.close()
    after = observer.seqs[before:]
    resent = [s for s in after if s >= pending[0]]
    # restart: the broker may have stored some events for the observer and gone down before
    # its PUBACKs reached the kiosk; it delivers those first (at least once: a duplicate,
    # allowed by the contract), then the kiosk's own resend begins at its first pending seq.
    start = len(resent) - 1 - resent[::-1].index(pending[0])
    assert resent[:start] == list(range(pending[0], pending[0] + start)), "broker's copies"
    assert resent[start:] == list(range(pending[0], last + 2)), "the backlog went up again in order"
    if how == "restart":
        observer.check_complete(first, last + 1)


async def test_ten_thousand_queued_events_drain_in_order(rig, broker):
    observer = Observer(broker)
    await asyncio.to_thread(observer.connect)
    try:
        first, last = queue_events(rig.ledger, 10_000)
        started = time.perf_counter()
        await wait_for(lambda: rig.ledger.outbox.depth() == 0, timeout=60, step=0.05)
        drained_s = time.perf_counter() - started
        await wait_for(lambda: observer.take() >= 10_000, timeout=20, step=0.05)
    finally:
        await asyncio.to_thread(observer.close)
    observer.check_complete(first, last)
    assert observer.seqs == sorted(observer.seqs)  # no reconnect here: not even a resend
    print(f"10,000 events drained in {drained_s:.2f} s ({10_000 / drained_s:,.0f}/s)")


async def test_outbox_near_cap_is_an_alarm_before_it_is_reached(
    tmp_path, broker, cloud_key, caplog
):
    caplog.set_level(logging.WARNING, logger="kiosk.cloud")
    broker.kill()
    rig = CloudRig(tmp_path / "kiosk", mqtt_config(broker, outbox_cap=1000), cloud_key)
    async with rig:
        queue_events(rig.ledger, 850)
        await wait_for(lambda: rig.link.outbox_level == "near_cap", timeout=5)
        assert any("outbox near its cap" in r.getMessage() for r in caplog.records)
        queue_events(rig.ledger, 200)
        await wait_for(lambda: rig.link.outbox_level == "full", timeout=5)
        assert any("outbox FULL" in r.getMessage() for r in caplog.records)
        assert rig.ledger.outbox.depth() == 1050  # nothing is dropped
        watcher = await asyncio.to_thread(cloud_client, broker.start())
        try:
            await wait_for(rig.listening, timeout=10)
            await wait_for(lambda: rig.ledger.outbox.depth() == 0, timeout=20)
            await wait_for(lambda: rig.link.outbox_level == "ok", timeout=5)
            await asyncio.to_thread(watcher.subscribe, f"{PREFIX}/{SITE}/status")
            status = json.loads(next(iter(watcher.receive(1.0))).payload)
            assert status["online"] is True and status["outbox"]["cap"] == 1000
        finally:
            await asyncio.to_thread(watcher.close)


async def test_a_broker_that_hangs_is_noticed_by_the_keepalive(tmp_path, broker, cloud_key):
    """A half-open link (a mobile network drops the path, the broker freezes): no FIN, no
    RST, the socket just goes quiet. Only the MQTT keepalive tells; the link runs it on the
    loop (PINGREQ, then no PINGRESP in time), goes offline and comes back once it can."""
    rig = CloudRig(tmp_path / "kiosk", mqtt_config(broker, keepalive_s=5), cloud_key)
    async with rig:
        await wait_for(rig.listening, timeout=10)
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGSTOP)
        try:
            await wait_for(lambda: not rig.daemon.online(), timeout=30, step=0.1)
            rig.daemon.service.set_service("C-1", False, "hung broker")  # the bank works on
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        await wait_for(rig.listening, timeout=30, step=0.1)
        await wait_for(lambda: rig.ledger.outbox.depth() == 0, timeout=10)
        assert rig.link.connections >= 2


async def test_a_week_offline_the_bank_works_and_every_event_goes_up_in_order(
    tmp_path, broker, cloud_key
):
    """The broker is gone for a week: couriers deliver, a customer picks up, a parcel
    left in its locker expires (day deadlines keep running on the bank's own clock).
    When the broker is back, every event of that week goes up, in order, no gap."""
    clock = SteppedClock()
    rig = CloudRig(tmp_path / "kiosk", mqtt_config(broker), cloud_key)
    rig.daemon = Daemon(
        rig.config, clock=clock, bank=rig.bank, notifier=Notifier(""), sweep_every_s=0.05
    )
    rig.daemon.cloud_timing = SLOW_BACK
    async with rig:
        await wait_for(rig.listening, timeout=10)
        await wait_for(lambda: rig.ledger.outbox.depth() == 0)
        broker.kill()
        await wait_for(lambda: not rig.daemon.online())
        first = rig.ledger.outbox.last_seq() + 1
        service = rig.daemon.service

        async def deliver(size: Size) -> tuple[str, str]:
            parcel = service.announce(size)
            opened = await service.submit_code(parcel.delivery_code)
            rig.doors.close(opened.locker)
            await wait_for(
                lambda: rig.ledger.parcels.find(parcel.parcel_id).status.value == "DELIVERED"
            )
            return parcel.parcel_id, parcel.pickup_code

        taken_id, pickup = await deliver(Size.S)
        left_id, _ = await deliver(Size.M)
        opened = await service.submit_code(pickup)
        rig.doors.close(opened.locker)
        await wait_for(lambda: rig.ledger.parcels.find(taken_id).status.value == "PICKED_UP")
        # The daemon's own sweeps see the week pass: a day left, then over.
        clock.advance(days=2, hours=1)
        await wait_for(
            lambda: "parcel.expiring" in [e.type for e in rig.ledger.outbox.pending(1000)]
        )
        clock.advance(days=5)
        await wait_for(lambda: rig.ledger.parcels.find(left_id).status.value == "EXPIRED")
        last = rig.ledger.outbox.last_seq()
        types = [e.type for e in rig.ledger.outbox.pending(100_000) if e.seq >= first]
        for kind in ("parcel.delivered", "parcel.picked_up", "parcel.expiring", "parcel.expired"):
            assert kind in types, (kind, types)
        assert rig.ledger.outbox.depth() >= last - first + 1  # nothing went up meanwhile

        broker.start()
        observer = Observer(broker)
        await asyncio.to_thread(observer.connect)  # before the kiosk's back-off ends
        try:
            await wait_for(rig.listening, timeout=15)
            await wait_for(lambda: rig.ledger.outbox.depth() == 0, timeout=20)
            await wait_for(lambda: observer.take() >= last - first + 1, timeout=10)
        finally:
            await asyncio.to_thread(observer.close)
    observer.check_complete(first, last)
    assert [s for s in observer.seqs if s >= first] == list(range(first, last + 1))
