"""Real load series for the policy comparison: the reserved acceptance series is refused, the cut and the
scaling of a replay trace are exact, and the shipped series load with the shape their sources document."""

from __future__ import annotations

import numpy as np
import pytest

from flinkscale.core.errors import InputError
from flinkscale.datasets import RESERVED, LoadSeries, load_series, replay_trace

DAY = 86400.0


def test_the_acceptance_series_is_reserved() -> None:
    assert "taylor" in RESERVED
    with pytest.raises(InputError) as error:
        load_series("taylor")
    assert "reserved" in str(error.value)


def test_unknown_series_names_the_choices() -> None:
    with pytest.raises(InputError) as error:
        load_series("nope")
    assert "elecdemand" in str(error.value)


def fake() -> LoadSeries:
    times = np.arange(0.0, 4 * DAY, 3600.0)
    values = 10.0 + (times // DAY)  # day d has value 10 + d
    return LoadSeries("fake", "test", times, values, 3600.0, 0)


def test_replay_cut_and_mean_scaling() -> None:
    trace = replay_trace(fake(), start_day=1, days=2, mean_rate=1000.0, scale_days=(2, 3), resolution_seconds=3600.0)
    rates = np.asarray(trace.rates_per_second)
    assert trace.times[0] == 0.0 and trace.times[-1] == 2 * DAY - 3600.0
    # Day 2 (value 12) is the scale reference: it becomes 1000/s, day 1 (value 11) 1000 x 11/12.
    assert rates[30] == pytest.approx(1000.0)
    assert rates[5] == pytest.approx(1000.0 * 11 / 12)


def test_replay_peak_scaling_and_bad_arguments() -> None:
    trace = replay_trace(fake(), start_day=0, days=4, peak_rate=500.0, resolution_seconds=3600.0)
    assert max(trace.rates_per_second) == pytest.approx(500.0)
    with pytest.raises(InputError):
        replay_trace(fake(), start_day=3, days=2, mean_rate=1.0)
    with pytest.raises(InputError):
        replay_trace(fake(), start_day=0, days=1, mean_rate=1.0, peak_rate=2.0)


def test_real_series_have_their_documented_shape() -> None:
    elec = load_series("elecdemand")
    assert elec.days == 365 and elec.step_seconds == 1800.0
    calls = load_series("bank_calls")
    # Weekdays only, 07:00-21:05: nothing on Saturdays and Sundays, nothing at 03:00.
    weekday = (calls.first_weekday + calls.times // DAY) % 7
    assert calls.values[weekday >= 5].sum() == 0
    assert calls.values[(calls.times % DAY) == 3 * 3600].sum() == 0
    assert calls.values[weekday < 5].max() > 0
