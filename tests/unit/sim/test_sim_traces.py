"""Offered-rate traces: each shape against its definition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkscale.core.errors import InputError
from flinkscale.core.sim.traces import (
    ConstantTrace,
    DiurnalTrace,
    Noise,
    RampTrace,
    SpikesTrace,
    StepTrace,
    diurnal_shape_mean,
    parse_rate_csv,
)


@given(peak_factor=st.floats(1.0, 6.0), average=st.floats(1.0, 1e6))
@settings(max_examples=40, deadline=None)
def test_diurnal_keeps_its_average_and_peak(peak_factor: float, average: float) -> None:
    rates = DiurnalTrace(average=average, peak_factor=peak_factor).rates(86400, 1.0)
    assert rates.mean() == pytest.approx(average, rel=1e-6)
    assert rates.max() == pytest.approx(peak_factor * average, rel=1e-6)
    assert rates.min() >= -1e-9


def test_diurnal_peaks_at_peak_at() -> None:
    rates = DiurnalTrace(average=100.0, peak_factor=1.5, peak_at_seconds=5 * 3600).rates(86400, 60.0)
    assert int(np.argmax(rates)) * 60 == 5 * 3600


@pytest.mark.parametrize(("sharpness", "expected"), [(1.0, 0.5), (2.0, 3 / 8), (3.0, 5 / 16)])
def test_shape_mean_matches_the_binomial_closed_form(sharpness: float, expected: float) -> None:
    # mean of ((1 + cos) / 2)^k over a period = C(2k, k) / 4^k for integer k.
    assert diurnal_shape_mean(sharpness) == pytest.approx(expected)


def test_a_peak_factor_too_high_for_the_sharpness_is_an_error() -> None:
    with pytest.raises(InputError) as caught:
        DiurnalTrace(average=1.0, peak_factor=3.0, sharpness=1.0)
    assert caught.value.field == "trace.peak_factor"


def test_step_ramp_spikes() -> None:
    step = StepTrace(10.0, 30.0, at_seconds=5.0).rates(10, 1.0)
    assert step.tolist() == [10.0] * 5 + [30.0] * 5
    ramp = RampTrace(0.0, 100.0, start_seconds=2.0, duration_seconds=4.0).rates(8, 1.0)
    assert ramp.tolist() == [0.0, 0.0, 0.0, 25.0, 50.0, 75.0, 100.0, 100.0]
    spikes = SpikesTrace(base=10.0, factor=3.0, duration_seconds=2.0, every_seconds=5.0, start_seconds=1.0)
    assert spikes.rates(12, 1.0).tolist() == [10, 30, 30, 10, 10, 10, 30, 30, 10, 10, 10, 30]


def test_noise_is_repeatable_and_relative() -> None:
    trace = ConstantTrace(1000.0, noise=Noise(relative_stddev=0.1, seed=3))
    first, second = trace.rates(20000, 1.0), trace.rates(20000, 1.0)
    assert np.array_equal(first, second)
    assert first.std() / first.mean() == pytest.approx(0.1, rel=0.05)


def test_replay_holds_each_sample_until_the_next() -> None:
    trace = parse_rate_csv("seconds,rate\n100,5\n103,7\n105,1\n")
    assert trace.rates(8, 1.0).tolist() == [5, 5, 5, 7, 7, 1, 1, 1]


@pytest.mark.parametrize("text", ["", "seconds,rate\n", "0,1\n0,2\n", "0,1\n1,x\n", "0,-1\n", "0\n"])
def test_bad_csv_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_rate_csv(text)
    assert caught.value.field == "trace.csv"
