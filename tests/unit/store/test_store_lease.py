"""One writer per store: a second daemon is refused while the first one's lease is live."""

from __future__ import annotations

import threading

import pytest
from store_helpers import JOB, FakeClock, snapshot

from flinkscale.core.errors import RuntimeFailure
from flinkscale.store import LeaseHeld, LeaseLost, StateStore


def test_a_second_daemon_is_refused_with_one_line_naming_the_owner(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as first, StateStore.open(url, clock=clock) as second:
        first.acquire_lease("host-a pid 101", ttl_seconds=60)
        with pytest.raises(LeaseHeld) as caught:
            second.acquire_lease("host-b pid 202", ttl_seconds=60)
        message = str(caught.value)
        assert "host-a pid 101" in message and "\n" not in message and caught.value.exit_code == 1
        holder = second.lease_holder()
        assert holder is not None and holder.owner == "host-a pid 101"


def test_a_renewed_lease_stays_held_and_an_expired_one_is_taken_over(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as first, StateStore.open(url, clock=clock) as second:
        first.acquire_lease("a", ttl_seconds=60)
        for _ in range(5):  # 5 cycles of 50 s each, renewed every cycle: 250 s > ttl, still held
            clock.advance(50)
            with first.batch():
                first.add_snapshot(JOB, snapshot(clock.now))
            with pytest.raises(LeaseHeld):
                second.acquire_lease("b", ttl_seconds=60)
        clock.advance(61)  # the first daemon hung (or was killed): its lease expires
        second.acquire_lease("b", ttl_seconds=60)
        holder = second.lease_holder()
        assert holder is not None and holder.owner == "b"


def test_a_writer_that_lost_its_lease_writes_nothing(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as first, StateStore.open(url, clock=clock) as second:
        first.acquire_lease("a", ttl_seconds=60)
        clock.advance(120)
        second.acquire_lease("b", ttl_seconds=60)
        with pytest.raises(LeaseLost, match="lost the state store's lease"), first.batch():
            first.add_snapshot(JOB, snapshot(clock.now))
        assert second.snapshots(JOB) == ()
        with pytest.raises(RuntimeFailure, match="no lease"):
            first.renew_lease()


def test_a_released_lease_is_free_at_once_and_the_same_owner_may_retake_its_own(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as first, StateStore.open(url, clock=clock) as second:
        first.acquire_lease("a", ttl_seconds=60)
        first.acquire_lease("a", ttl_seconds=60)  # a restart of the same owner id
        first.release_lease()
        assert second.lease_holder() is None
        second.acquire_lease("b", ttl_seconds=60)
        with pytest.raises(LeaseHeld, match="in use by b"):
            first.acquire_lease("a", ttl_seconds=60)


def test_readers_need_no_lease(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as daemon, StateStore.open(url, clock=clock) as status:
        daemon.acquire_lease("a")
        daemon.add_snapshot(JOB, snapshot(clock.now))
        assert len(status.snapshots(JOB)) == 1


@pytest.mark.parametrize("contenders", [2, 4])
def test_daemons_racing_for_a_free_lease_get_exactly_one_winner(url: str, clock: FakeClock, contenders: int) -> None:
    StateStore.open(url, clock=clock).close()  # the schema exists; the race is for the lease only
    stores = [StateStore.open(url, clock=clock) for _ in range(contenders)]
    barrier = threading.Barrier(contenders)
    outcomes: dict[int, str] = {}

    def race(index: int) -> None:
        barrier.wait(timeout=60)
        try:
            stores[index].acquire_lease(f"daemon-{index}")
            outcomes[index] = "won"
        except LeaseHeld as exc:
            outcomes[index] = str(exc)

    try:
        for _round in range(3):
            threads = [threading.Thread(target=race, args=(i,)) for i in range(contenders)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            winners = [i for i, outcome in outcomes.items() if outcome == "won"]
            assert len(outcomes) == contenders and len(winners) == 1, outcomes
            assert all(f"in use by daemon-{winners[0]}" in o for i, o in outcomes.items() if i != winners[0])
            stores[winners[0]].release_lease()
            outcomes.clear()
    finally:
        for store in stores:
            store.close()
