"""Workload traces: the records/s offered to the sources, one value per simulation step.

Each trace is a frozen dataclass with ``rates(duration_seconds, step_seconds)`` returning a numpy array
(the rate during each step) and ``describe()`` for reports. They are computed once per run, so a trace can
be as elaborate as it likes without slowing the step loop.

- ``ConstantTrace(rate)``
- ``StepTrace(before, after, at)``: ``before`` until ``at``, then ``after``.
- ``RampTrace(start_rate, end_rate, start, duration)``: linear between ``start`` and ``start + duration``.
- ``DiurnalTrace(average, peak_factor, peak_at, period)``: a daily cycle whose mean is ``average`` and whose
  peak is ``peak_factor x average``; shape ``base + (peak - base) x ((1 + cos(phase)) / 2)^k``. ``k = 1`` is a
  sinusoid (needs ``peak_factor <= 2``); a larger ``k`` (``sharpness``) narrows the peak and allows higher
  peak factors; ``base`` follows from the mean: the mean of ``((1 + cos) / 2)^k`` over a period is
  ``Gamma(k + 1/2) / (sqrt(pi) Gamma(k + 1))``.
- ``SpikesTrace(base, factor, duration, every, start)``: ``base``, times ``factor`` for ``duration`` seconds
  every ``every`` seconds from ``start``.
- ``ReplayTrace(times, rates)``: a recorded series, held from one sample to the next (``parse_rate_csv``
  reads ``seconds,rate`` CSV text; the CLI hands the text in).

Any trace can carry multiplicative noise (``noise`` = relative standard deviation, ``seed`` for
repeatability); a noisy rate is clipped at 0.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from flinkscale.core.errors import InputError
from flinkscale.core.sim.keyload import FloatArray


def _grid(duration_seconds: float, step_seconds: float) -> FloatArray:
    """Start time of every step."""
    steps = max(1, round(duration_seconds / step_seconds))
    grid: FloatArray = np.arange(steps, dtype=np.float64) * step_seconds
    return grid


@dataclass(frozen=True)
class Noise:
    relative_stddev: float = 0.0
    seed: int = 0

    def apply(self, rates: FloatArray) -> FloatArray:
        if self.relative_stddev <= 0:
            return rates
        generator = np.random.default_rng(self.seed)
        noisy: FloatArray = np.clip(rates * (1 + self.relative_stddev * generator.standard_normal(len(rates))),
                                    0, None)
        return noisy


@dataclass(frozen=True)
class _Trace:
    """What every trace does with its shape: read it at each step's start time and apply the trace's noise.

    The noise is keyword-only, so each trace's own fields come first in its constructor."""

    noise: Noise = field(default=Noise(), kw_only=True)

    def rates(self, duration_seconds: float, step_seconds: float) -> FloatArray:
        return self.noise.apply(self._rates_at(_grid(duration_seconds, step_seconds)))

    def _rates_at(self, t: FloatArray) -> FloatArray:
        """The noiseless rate at each time of ``t`` (seconds)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantTrace(_Trace):
    rate: float

    def _rates_at(self, t: FloatArray) -> FloatArray:
        return np.full(len(t), self.rate)

    def describe(self) -> str:
        return f"constant {self.rate:,.0f} records/s"


@dataclass(frozen=True)
class StepTrace(_Trace):
    before: float
    after: float
    at_seconds: float

    def _rates_at(self, t: FloatArray) -> FloatArray:
        return np.where(t < self.at_seconds, self.before, self.after).astype(np.float64)

    def describe(self) -> str:
        return f"step {self.before:,.0f} -> {self.after:,.0f} records/s at {self.at_seconds:g}s"


@dataclass(frozen=True)
class RampTrace(_Trace):
    start_rate: float
    end_rate: float
    start_seconds: float
    duration_seconds: float

    def _rates_at(self, t: FloatArray) -> FloatArray:
        progress = np.clip((t - self.start_seconds) / max(self.duration_seconds, 1e-9), 0, 1)
        return self.start_rate + (self.end_rate - self.start_rate) * progress

    def describe(self) -> str:
        return (f"ramp {self.start_rate:,.0f} -> {self.end_rate:,.0f} records/s over {self.duration_seconds:g}s "
                f"from {self.start_seconds:g}s")


def diurnal_shape_mean(sharpness: float) -> float:
    """Mean over a period of ((1 + cos x) / 2)^k = Gamma(k + 1/2) / (sqrt(pi) Gamma(k + 1))."""
    return math.exp(math.lgamma(sharpness + 0.5) - math.lgamma(sharpness + 1)) / math.sqrt(math.pi)


@dataclass(frozen=True)
class DiurnalTrace(_Trace):
    average: float
    peak_factor: float
    peak_at_seconds: float = 14 * 3600.0
    period_seconds: float = 86400.0
    sharpness: float | None = None

    def __post_init__(self) -> None:
        if self.peak_factor < 1:
            raise InputError(f"must be >= 1 (peak / average), got {self.peak_factor}", field="trace.peak_factor")
        if self.sharpness is not None:
            self._base_fraction(self.sharpness)

    def _base_fraction(self, sharpness: float) -> float:
        """The trough as a fraction of the average, from mean(base + (F - base) g) = 1."""
        shape_mean = diurnal_shape_mean(sharpness)
        base = (1 - self.peak_factor * shape_mean) / (1 - shape_mean)
        if base < 0:
            raise InputError(f"peak_factor {self.peak_factor:g} is too high for sharpness {sharpness:g} "
                             f"(max {1 / shape_mean:.2f}); raise sharpness", field="trace.peak_factor")
        return base

    def resolved_sharpness(self) -> float:
        if self.sharpness is not None:
            return self.sharpness
        sharpness = 1.0
        while self.peak_factor * diurnal_shape_mean(sharpness) > 1:
            sharpness += 1.0
        return sharpness

    def _rates_at(self, t: FloatArray) -> FloatArray:
        sharpness = self.resolved_sharpness()
        base = self._base_fraction(sharpness)
        shape = ((1 + np.cos(2 * np.pi * (t - self.peak_at_seconds) / self.period_seconds)) / 2) ** sharpness
        rates: FloatArray = self.average * (base + (self.peak_factor - base) * shape)
        return rates

    def describe(self) -> str:
        return (f"diurnal: average {self.average:,.0f}/s, peak {self.peak_factor * self.average:,.0f}/s "
                f"(x{self.peak_factor:g}) at {self.peak_at_seconds / 3600:g}h")


@dataclass(frozen=True)
class SpikesTrace(_Trace):
    base: float
    factor: float
    duration_seconds: float
    every_seconds: float
    start_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not self.every_seconds > 0:
            raise InputError(f"must be > 0, got {self.every_seconds}", field="trace.every")

    def _rates_at(self, t: FloatArray) -> FloatArray:
        since = t - self.start_seconds
        in_spike = (since >= 0) & (np.mod(since, self.every_seconds) < self.duration_seconds)
        return np.where(in_spike, self.base * self.factor, self.base).astype(np.float64)

    def describe(self) -> str:
        return (f"spikes: {self.base:,.0f}/s, x{self.factor:g} for {self.duration_seconds:g}s "
                f"every {self.every_seconds:g}s")


@dataclass(frozen=True)
class ReplayTrace(_Trace):
    times: tuple[float, ...]
    rates_per_second: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.rates_per_second):
            raise InputError("needs at least one (time, rate) sample", field="trace.csv")

    def _rates_at(self, t: FloatArray) -> FloatArray:
        times = np.asarray(self.times)
        index = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1)
        return np.asarray(self.rates_per_second, dtype=np.float64)[index]

    def describe(self) -> str:
        return f"replay of {len(self.times)} samples over {self.times[-1] - self.times[0]:g}s"


Trace = ConstantTrace | StepTrace | RampTrace | DiurnalTrace | SpikesTrace | ReplayTrace


def parse_rate_csv(text: str, field: str = "trace.csv") -> ReplayTrace:
    """``seconds,rate`` rows (a header row is skipped); times relative to the first row, ascending."""
    times: list[float] = []
    rates: list[float] = []
    for line_number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) < 2:
            raise InputError(f"line {line_number}: expected 'seconds,rate'", field=field)
        try:
            time, rate = float(cells[0]), float(cells[1])
        except ValueError:
            if not times and line_number == 1:
                continue  # header
            raise InputError(f"line {line_number}: not numbers: {row!r}", field=field) from None
        if not 0 <= time <= 10 * 365 * 86400:
            raise InputError(f"line {line_number}: the time must be from 0 to 10 years in seconds", field=field)
        if not 0 <= rate <= 1e12:
            raise InputError(f"line {line_number}: the rate must be a number from 0 to 1e12 records/s", field=field)
        if times and time <= times[-1]:
            raise InputError(f"line {line_number}: times must increase", field=field)
        times.append(time)
        rates.append(rate)
    if not times:
        raise InputError("no samples", field=field)
    return ReplayTrace(tuple(t - times[0] for t in times), tuple(rates))
