"""The shedding controller over synthetic snapshots: offered rate, capacity estimate, publish on change only."""

from __future__ import annotations

import pytest

from flinkscale.cli import main
from flinkscale.core.errors import InputError
from flinkscale.core.shedding import required_keep_probability
from flinkscale.core.snapshot import MetricsSnapshot, Vertex, VertexMetrics
from flinkscale.flink.shedder import ShedController, ShedSettings, source_load


def snapshot(consumed: float, busy_ms: float | None, lag: float = 0.0, lag_growth: float = 0.0,
             timestamp: float = 0.0) -> MetricsSnapshot:
    source = Vertex("src", "Source: clicks -> enrich", 1, 120, is_source=True, metrics=VertexMetrics(
        num_records_in_per_second=consumed, busy_time_ms_per_second_avg=busy_ms, busy_time_ms_per_second_max=busy_ms,
        pending_records=lag, pending_records_per_second=lag_growth))
    return MetricsSnapshot(timestamp=timestamp, job_id="j", job_name="clickstream", vertices=(source,),
                           window_seconds=5.0)


def test_offered_rate_is_read_rate_plus_lag_growth() -> None:
    load = source_load(snapshot(4000, 1000, lag=50_000, lag_growth=4000))
    assert load.offered_rate == 8000
    # Draining lag: the source reads more than arrives.
    assert source_load(snapshot(4000, 900, lag=1000, lag_growth=-1000)).offered_rate == 3000


def test_sustainable_rate_is_true_processing_rate_times_p() -> None:
    load = source_load(snapshot(6000, 750))
    assert load.sustainable_rate(1.0, 100) == pytest.approx(8000)  # 6000 / 0.75
    assert load.sustainable_rate(0.5, 100) == pytest.approx(4000)  # half of what it reads is fully processed
    assert source_load(snapshot(500, 50)).sustainable_rate(1.0, 100) is None  # too idle to measure


def test_two_x_overload_publishes_the_capacity_share_and_recovers_to_one() -> None:
    published: list[tuple[float, int]] = []
    controller = ShedController(lambda p, seq: published.append((p, seq)),
                                ShedSettings(headroom=1.0, drain_seconds=1e9), next_seq=7)
    # Saturated at 4000/s while 8000/s arrive: p = 4000 / 8000.
    step = controller.step(snapshot(4000, 1000, lag=20_000, lag_growth=4000))
    assert len(published) == 1 and published[0][0] == pytest.approx(0.5) and published[0][1] == 7
    assert step.published
    # Same conditions measured at p = 0.5 (the source now reads 8000/s at the same busy time): no change.
    controller.step(snapshot(8000, 1000, lag=20_000, lag_growth=0))
    assert len(published) == 1
    # The peak is over: 3000/s arrive, the source is half busy: p back to 1, shedding stops.
    controller.step(snapshot(3000, 400, lag=0, lag_growth=0))
    assert published[-1] == (1.0, 8) and controller.keep_probability == 1.0


def test_never_below_the_accuracy_bound() -> None:
    published: list[tuple[float, int]] = []
    settings = ShedSettings(records_per_group=1000, target_error=0.02, headroom=1.0)
    controller = ShedController(lambda p, seq: published.append((p, seq)), settings)
    controller.step(snapshot(1000, 1000, lag_growth=9000))  # 10x overload: capacity says p = 0.1
    bound = required_keep_probability(1000, 0.02, 0.95)
    assert published[0][0] == pytest.approx(bound) and bound > 0.1
    assert not controller.steps[-1].decision.achievable


def test_summed_values_that_vary_raise_the_accuracy_floor() -> None:
    # A sum of event sizes with CV 1 errs by sqrt(2) more than a count at the same p: its floor is higher.
    floors = {}
    for cv in (0.0, 1.0):
        settings = ShedSettings(records_per_group=1000, target_error=0.02, headroom=1.0, value_cv=cv)
        controller = ShedController(lambda p, seq: None, settings)
        controller.step(snapshot(1000, 1000, lag_growth=9000))
        floors[cv] = controller.keep_probability
        assert floors[cv] == pytest.approx(required_keep_probability(1000, 0.02, 0.95, cv))
    assert floors[1.0] > floors[0.0]


def test_backlog_reserves_capacity_to_drain() -> None:
    published: list[tuple[float, int]] = []
    controller = ShedController(lambda p, seq: published.append((p, seq)),
                                ShedSettings(headroom=1.0, drain_seconds=10.0))
    controller.step(snapshot(4000, 1000, lag=10_000, lag_growth=4000))
    # usable 4000 - drain 10000/10 s = 3000 of 8000 offered.
    assert published[0][0] == pytest.approx(3000 / 8000)


def test_small_moves_are_not_published() -> None:
    published: list[tuple[float, int]] = []
    controller = ShedController(lambda p, seq: published.append((p, seq)), ShedSettings(headroom=1.0,
                                                                                         min_change=0.05),
                                keep_probability=0.5)
    controller.step(snapshot(8000, 1000, lag_growth=400))  # sustainable 4000 at p 0.5, offered 8400: p 0.476
    assert published == []


def test_profile_rate_overrides_the_estimate() -> None:
    published: list[tuple[float, int]] = []
    controller = ShedController(lambda p, seq: published.append((p, seq)),
                                ShedSettings(sustainable_rate=2000, headroom=1.0))
    controller.step(snapshot(4000, 200, lag_growth=4000))
    assert published[0][0] == pytest.approx(0.25)


@pytest.mark.parametrize(("field", "value"), [("headroom", 0.0), ("target_error", 1.5), ("window_seconds", 0),
                                              ("value_cv", -0.1)])
def test_bad_settings_name_the_field(field: str, value: float) -> None:
    with pytest.raises(InputError) as error:
        ShedSettings(**{field: value})  # type: ignore[arg-type]
    assert error.value.field == field


@pytest.mark.parametrize(("argv", "field"), [
    (["shed", "set", "--topic", "c", "--keep", "0"], "--keep"),
    (["shed", "set", "--topic", "c", "--keep", "half"], "--keep"),
    (["shed", "auto", "--job", "j", "--control-topic", "c", "--target-error", "150%"], "--target-error"),
    (["shed", "auto", "--job", "j", "--control-topic", "c", "--confidence", "x"], "--confidence"),
])
def test_cli_bad_values_are_one_line_exit_2(argv: list[str], field: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err


def test_arrival_rate_from_the_topic_replaces_the_noisy_lag_growth() -> None:
    published: list[tuple[float, int]] = []
    controller = ShedController(lambda p, seq: published.append((p, seq)), ShedSettings(headroom=1.0,
                                                                                         drain_seconds=1e9))
    # A stale pendingRecords shows no growth, but 8000/s reach the topic while 4000/s are read at full busy.
    step = controller.step(snapshot(4000, 1000, lag=20_000, lag_growth=0), arrival_rate=8000)
    assert step.load.offered_rate == 8000
    assert published[0][0] == pytest.approx(0.5)


def test_one_noisy_interval_does_not_move_p() -> None:
    # Saturated at 4000/s of 8000/s offered, twice; then one interval reads as if the job could do only
    # 2000/s (a checkpoint, a GC pause). The median of the last 3 estimates (4000, 4000, 2000) stays 4000.
    published: list[tuple[float, int]] = []
    controller = ShedController(lambda p, seq: published.append((p, seq)),
                                ShedSettings(headroom=1.0, drain_seconds=1e9))
    controller.step(snapshot(4000, 1000, lag_growth=4000))
    controller.step(snapshot(8000, 1000))  # at p = 0.5: 8000 / 1.0 x 0.5 = 4000
    noisy = controller.step(snapshot(4000, 1000, lag_growth=4000))  # 4000 x 0.5 = 2000 this interval
    assert noisy.sustainable_rate == pytest.approx(4000)
    assert [p for p, _ in published] == [pytest.approx(0.5)]
    # Without the median the same interval halves p.
    alone = ShedController(lambda p, seq: None, ShedSettings(headroom=1.0, drain_seconds=1e9, estimate_samples=1),
                           keep_probability=0.5)
    assert alone.step(snapshot(4000, 1000, lag_growth=4000)).decision.keep_probability == pytest.approx(0.25)


@pytest.mark.parametrize("drop_cost_us", [0.0, 15.0, 30.0])
def test_shed_records_that_still_cost_time_do_not_make_it_shed_more_than_needed(drop_cost_us: float) -> None:
    # A source reads every record (deserialise, decide) and fully processes the kept ones: per record it spends
    # drop_cost + p x keep_cost. The estimate (read / busy) x p then understates what p = 1 could do, but the
    # controller's fixed point is where the source is busy exactly `headroom` of the time, and it approaches it
    # from above: p never falls below the p that is needed.
    offered, keep_cost_us, headroom = 20_000.0, 100.0, 0.9
    needed = (headroom / offered - drop_cost_us * 1e-6) / (keep_cost_us * 1e-6)
    controller = ShedController(lambda p, seq: None, ShedSettings(headroom=headroom, drain_seconds=1e9,
                                                                  min_change=0.0))
    history = []
    for interval in range(40):
        seconds_per_record = (drop_cost_us + controller.keep_probability * keep_cost_us) * 1e-6
        consumed = min(offered, 1.0 / seconds_per_record)
        busy_ms = consumed * seconds_per_record * 1000.0
        controller.step(snapshot(consumed, busy_ms, lag_growth=offered - consumed, timestamp=5.0 * interval))
        history.append(controller.keep_probability)
    assert min(history) >= needed * (1 - 1e-6)
    assert history[-1] == pytest.approx(needed, rel=0.01)
