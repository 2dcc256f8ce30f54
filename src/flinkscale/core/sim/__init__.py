"""The simulator: a Flink job at TB/day scale on a laptop, and the arena where autoscaling policies compete.

It lives in the pure core and emits the same ``MetricsSnapshot`` the real collector emits, so the same policy
code drives a real cluster and a simulated one. Pieces, each in its own module:

- ``model``: the job graph and cluster to simulate (``SimPipeline``, ``SimVertex``, ``SimEdge``, ``ClusterSpec``,
  ``RescaleSpec``, ``CheckpointSpec``);
- ``keyload``: Flink's key-group assignment vectorised (how a keyed edge spreads load, skew included);
- ``engine``: the vectorised discrete-time model (``JobModel``), with bounded buffers and backpressure;
- ``traces``: offered-rate traces (constant, step, ramp, diurnal, spikes, replay);
- ``run``: the policy loop (``simulate``), snapshots, and the comparison metrics (``SimOutcome``);
- ``scenario``: YAML scenarios (``parse_scenario``) and traces (``parse_trace``);
- ``calibration``: ``step_response`` for comparing against the real cluster, ``catch_up_seconds``.
"""

from flinkscale.core.sim.calibration import (
    StepResponse,
    catch_up_seconds,
    measured_capacity_per_subtask,
    pipeline_capacity,
    pipeline_from_snapshot,
    step_response,
)
from flinkscale.core.sim.engine import JobModel
from flinkscale.core.sim.keyload import KeyDistribution, key_group_weights, partition_shares, subtask_shares
from flinkscale.core.sim.model import CheckpointSpec, ClusterSpec, RescaleSpec, SimEdge, SimPipeline, SimVertex
from flinkscale.core.sim.run import SimConfig, SimOutcome, SimRun, Timeline, clamp_parallelism, simulate
from flinkscale.core.sim.scenario import Scenario, apply_overrides, parse_scenario, parse_trace
from flinkscale.core.sim.traces import (
    ConstantTrace,
    DiurnalTrace,
    RampTrace,
    ReplayTrace,
    SpikesTrace,
    StepTrace,
    Trace,
    parse_rate_csv,
)

__all__ = [
    "CheckpointSpec",
    "ClusterSpec",
    "ConstantTrace",
    "DiurnalTrace",
    "JobModel",
    "KeyDistribution",
    "RampTrace",
    "ReplayTrace",
    "RescaleSpec",
    "Scenario",
    "SimConfig",
    "SimEdge",
    "SimOutcome",
    "SimPipeline",
    "SimRun",
    "SimVertex",
    "SpikesTrace",
    "StepResponse",
    "StepTrace",
    "Timeline",
    "Trace",
    "apply_overrides",
    "catch_up_seconds",
    "clamp_parallelism",
    "key_group_weights",
    "measured_capacity_per_subtask",
    "parse_rate_csv",
    "parse_scenario",
    "parse_trace",
    "partition_shares",
    "pipeline_capacity",
    "pipeline_from_snapshot",
    "simulate",
    "step_response",
    "subtask_shares",
]
