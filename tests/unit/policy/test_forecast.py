"""The seasonal forecast on series whose shape is known: it must recover a daily and a weekly shape, carry
a level change, ignore a one-off spike, and give a band that holds the truth as often as it says."""

from __future__ import annotations

import numpy as np
import pytest

from flinkscale.core.forecast import DAY, WEEK, bin_history, seasonal_forecast


def daily_shape(t: np.ndarray) -> np.ndarray:
    return 1000.0 + 600.0 * np.sin(2 * np.pi * (t % DAY) / DAY - np.pi / 2)


def weekly_shape(t: np.ndarray) -> np.ndarray:
    weekend = ((t // DAY) % 7) >= 5
    return daily_shape(t) * np.where(weekend, 0.5, 1.0)


def test_no_forecast_before_a_whole_day() -> None:
    t = np.arange(0.0, DAY / 2, 60.0)
    assert seasonal_forecast(t, daily_shape(t), DAY / 2, 3600.0) is None


@pytest.mark.parametrize("seed", range(20))
def test_daily_shape_recovered_within_noise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 3 * DAY, 60.0)
    values = daily_shape(t) * (1 + rng.normal(0, 0.05, t.size))
    forecast = seasonal_forecast(t, values, 3 * DAY, DAY)
    assert forecast is not None and forecast.season_name == "daily"
    truth = daily_shape(forecast.bin_times() + forecast.bin_seconds / 2)
    # 15-minute bins of 15 noisy samples over 3 days: the median profile is within 5% of the true shape.
    assert np.max(np.abs(forecast.median / truth - 1)) < 0.05


def test_weekly_shape_once_two_weeks_are_known() -> None:
    t = np.arange(0.0, 3 * WEEK, 300.0)
    forecast = seasonal_forecast(t, weekly_shape(t), 3 * WEEK, WEEK)
    assert forecast is not None and forecast.season_name == "weekly"
    truth = weekly_shape(forecast.bin_times() + forecast.bin_seconds / 2)
    assert np.max(np.abs(forecast.median / truth - 1)) < 0.03
    # A daily model would have forecast Saturday like a weekday: twice too high.
    short = seasonal_forecast(t[t < 8 * DAY], weekly_shape(t[t < 8 * DAY]), 8 * DAY, DAY)
    assert short is not None and short.season_name == "daily"


def test_level_carries_a_trend_break() -> None:
    # Three days of the shape, then the last hour 30% higher: the forecast is lifted by ~1.3.
    t = np.arange(0.0, 3 * DAY + 3600.0, 60.0)
    values = daily_shape(t) * np.where(t >= 3 * DAY, 1.3, 1.0)
    forecast = seasonal_forecast(t, values, 3 * DAY + 3600.0, 7200.0, level_seconds=3600.0)
    assert forecast is not None
    assert forecast.level == pytest.approx(1.3, rel=0.02)


def test_a_one_off_spike_does_not_enter_the_profile() -> None:
    t = np.arange(0.0, 4 * DAY, 60.0)
    values = daily_shape(t)
    values[(t >= DAY + 10 * 3600) & (t < DAY + 11 * 3600)] *= 5  # one day, one hour, 5x
    forecast = seasonal_forecast(t, values, 4 * DAY, DAY)
    assert forecast is not None
    truth = daily_shape(forecast.bin_times() + forecast.bin_seconds / 2)
    assert np.max(forecast.median / truth) < 1.03


def test_band_holds_the_truth_about_as_often_as_its_quantile() -> None:
    # Over 40 seeds: noisy days, forecast the next day; the share of 15-min bins above the upper band
    # (quantile 0.9) must be near 10%, not 0% (a useless band) nor 50%.
    above = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        t = np.arange(0.0, 5 * DAY, 900.0)
        values = daily_shape(t) * np.exp(rng.normal(0, 0.1, t.size))
        forecast = seasonal_forecast(t[t < 4 * DAY], values[t < 4 * DAY], 4 * DAY, DAY, quantile=0.9)
        assert forecast is not None
        actual = values[t >= 4 * DAY][: len(forecast.upper)]
        above.append(float(np.mean(actual > forecast.upper)))
    assert 0.03 < float(np.mean(above)) < 0.2


def test_bin_history_means_and_gaps() -> None:
    starts, means = bin_history(np.array([0.0, 10.0, 1000.0]), np.array([1.0, 3.0, 5.0]), 900.0)
    assert starts.tolist() == [0.0, 900.0]
    assert means.tolist() == [2.0, 5.0]


def test_quantile_is_checked() -> None:
    t = np.arange(0.0, 2 * DAY, 60.0)
    with pytest.raises(ValueError):
        seasonal_forecast(t, daily_shape(t), 2 * DAY, DAY, quantile=0.4)
