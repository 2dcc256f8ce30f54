"""A seasonal forecast of a job's load, with an uncertainty band, learned from the load it has seen.

Streaming load follows the clock: a daily shape (people wake up, work, sleep) and, given enough history, a
weekly one (weekends differ). The model is small on purpose, so that a person can check a forecast by hand:

1. The history ``(timestamp, rate)`` is averaged into bins of ``bin_seconds`` (15 min by default).
2. Season: a week (``WEEK``) when the history covers at least ``weeks_for_weekly`` weeks, else a day (``DAY``);
   no forecast at all before one whole day. Each bin of the season (e.g. "Tuesday 08:15-08:30") gets the
   MEDIAN of the binned rates at that position over the past seasons: a median ignores a one-off spike.
3. Level: the load of the last ``level_seconds`` divided by what the profile says for those same bins, a
   ratio that carries a trend break (traffic up 30% since last week) into the forecast. Clamped to
   [0.5, 2]: a bigger jump is not a level but a forecast miss, which the caller handles (reactive rules).
4. Band: the ratios ``actual / profile`` of the past bins (in sample), whose ``quantile`` and
   ``1 - quantile`` give the upper and lower band as factors on the median forecast; with fewer than three
   seasons of history (where the profile is nearly the history itself) at least ``+-min_band`` (10%).

Everything is a pure function of numpy arrays; timestamps are seconds (the epoch or the simulated clock:
only differences and the phase within a day or week matter, so a history must use one clock throughout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flinkscale.core.units import SECONDS_PER_DAY

FloatArray = npt.NDArray[np.float64]

DAY = SECONDS_PER_DAY
WEEK = 7 * DAY


@dataclass(frozen=True)
class Forecast:
    """Per bin from ``start``: the median forecast and its band, in the unit of the history's rates."""

    start: float
    bin_seconds: float
    median: FloatArray
    upper: FloatArray
    lower: FloatArray
    season_seconds: float
    level: float
    history_seconds: float

    @property
    def season_name(self) -> str:
        return "weekly" if self.season_seconds >= WEEK else "daily"

    def bin_times(self) -> FloatArray:
        times: FloatArray = self.start + self.bin_seconds * np.arange(len(self.median), dtype=np.float64)
        return times

    def at(self, timestamp: float) -> tuple[float, float, float]:
        """(lower, median, upper) for the bin holding ``timestamp`` (the last bin beyond the horizon)."""
        index = int(min(max(0.0, (timestamp - self.start) // self.bin_seconds), len(self.median) - 1))
        return float(self.lower[index]), float(self.median[index]), float(self.upper[index])


def bin_history(times: FloatArray, values: FloatArray, bin_seconds: float) -> tuple[FloatArray, FloatArray]:
    """Mean value per ``bin_seconds`` bin aligned to multiples of ``bin_seconds`` on the history's clock;
    bins with no sample are NaN. Returns (bin start times, means), oldest first."""
    if times.size == 0:
        return np.zeros(0), np.zeros(0)
    index = np.floor(times / bin_seconds).astype(np.int64)
    first = int(index.min())
    count = int(index.max()) - first + 1
    sums = np.bincount(index - first, weights=values, minlength=count)
    counts = np.bincount(index - first, minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    starts: FloatArray = (first + np.arange(count, dtype=np.float64)) * bin_seconds
    return starts, means.astype(np.float64)


def seasonal_forecast(times: FloatArray, values: FloatArray, start: float, horizon_seconds: float, *,
                      bin_seconds: float = 900.0, quantile: float = 0.9, level_seconds: float = 3600.0,
                      weeks_for_weekly: float = 2.0, min_band: float = 0.1) -> Forecast | None:
    """The forecast from ``start`` for ``horizon_seconds``; ``None`` with less than a day of history."""
    if not 0.5 < quantile < 1:
        raise ValueError(f"quantile must be in (0.5, 1), got {quantile}")
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    keep = times < start
    times, values = times[keep], values[keep]
    if times.size < 2 or times[-1] - times[0] < DAY - bin_seconds:
        return None
    span = float(times[-1] - times[0])
    season = WEEK if span >= weeks_for_weekly * WEEK - bin_seconds else DAY
    bins_per_season = round(season / bin_seconds)
    starts, means = bin_history(times, values, bin_seconds)
    index = np.round(starts / bin_seconds).astype(np.int64)
    phase = np.mod(index, bins_per_season)
    # One row per season (oldest first), one column per position: the median down each column.
    season_of = (index - int(index[0]) + int(phase[0])) // bins_per_season
    table = np.full((int(season_of[-1]) + 1, bins_per_season), np.nan)
    table[season_of, phase] = means
    seen = ~np.all(np.isnan(table), axis=0)
    profile = np.full(bins_per_season, np.nan)
    if np.any(seen):
        profile[seen] = np.nanmedian(table[:, seen], axis=0)
    if np.all(np.isnan(profile)):
        return None
    # A position never seen (a gap in the history) takes the profile's mean.
    fallback = float(np.nanmean(profile))
    profile = np.where(np.isnan(profile), fallback, profile)

    fitted = profile[phase]
    recent = (starts >= start - level_seconds) & ~np.isnan(means)
    level = 1.0
    if np.any(recent) and float(fitted[recent].sum()) > 0:
        level = float(means[recent].sum() / fitted[recent].sum())
        level = min(2.0, max(0.5, level))
    valid = ~np.isnan(means) & (fitted > 0)
    upper_factor, lower_factor = 1.0, 1.0
    if np.count_nonzero(valid) >= 4:
        ratios = means[valid] / fitted[valid]
        upper_factor = max(1.0, float(np.quantile(ratios, quantile)))
        lower_factor = min(1.0, float(np.quantile(ratios, 1 - quantile)))
    if span < 3 * season - bin_seconds:
        # With one or two seasons the profile IS (nearly) the history and the in-sample ratios are ~1: a band
        # of at least +-min_band says that one day says little about the next.
        upper_factor, lower_factor = max(upper_factor, 1 + min_band), min(lower_factor, 1 - min_band)

    count = max(1, math.ceil(horizon_seconds / bin_seconds))
    first = math.floor(start / bin_seconds)
    positions = np.mod(first + np.arange(count), bins_per_season)
    median = profile[positions] * level
    return Forecast(start=first * bin_seconds, bin_seconds=bin_seconds, median=median, upper=median * upper_factor,
                    lower=median * lower_factor, season_seconds=season, level=level, history_seconds=span)
