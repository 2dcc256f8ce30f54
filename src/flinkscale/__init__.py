"""flinkscale: right-size, profile, autoscale and load-shed Apache Flink pipelines on real Flink.

The public API is re-exported here; modules whose names start with an underscore, and everything not
listed in ``__all__``, are implementation details.
"""

from flinkscale.core.errors import (
    EndpointError,
    FlinkscaleError,
    InputError,
    NotFoundError,
    RuntimeFailure,
)
from flinkscale.core.snapshot import (
    ClusterResources,
    Edge,
    MetricsSnapshot,
    ShipStrategy,
    Vertex,
    VertexMetrics,
)
from flinkscale.core.units import parse_duration, parse_rate, parse_size

__version__ = "0.1.0"

__all__ = [
    "ClusterResources",
    "Edge",
    "EndpointError",
    "FlinkscaleError",
    "InputError",
    "MetricsSnapshot",
    "NotFoundError",
    "RuntimeFailure",
    "ShipStrategy",
    "Vertex",
    "VertexMetrics",
    "__version__",
    "parse_duration",
    "parse_rate",
    "parse_size",
]
