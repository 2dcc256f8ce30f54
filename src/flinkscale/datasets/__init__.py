"""Real load series shipped inside PyPI packages, turned into simulator traces (an I/O edge: it reads files).

The pure core never reads a file; this package does, and hands the core plain arrays (``ReplayTrace``).
``load_series(name)`` returns a ``LoadSeries`` (seconds from the series' first midnight and the value at each
sample); ``replay_trace(series, ...)`` cuts whole days out of it, scales them to a mean rate (for example
1 TB/day of 500-byte events = 23,148 records/s) and interpolates linearly between samples.
"""

from flinkscale.datasets.real_load import (
    RESERVED,
    SERIES,
    LoadSeries,
    load_series,
    replay_trace,
)

__all__ = ["RESERVED", "SERIES", "LoadSeries", "load_series", "replay_trace"]
