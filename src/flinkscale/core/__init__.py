"""The pure core of flinkscale.

Everything under ``flinkscale.core`` is deterministic maths over plain frozen dataclasses: no network,
no subprocesses, no files beyond text a caller hands in, and no clock except a timestamp passed in.
That is what lets the same planner, policies and analysis run against a real Flink job, a recorded
snapshot and the simulator, and lets the unit tests run in milliseconds. The I/O layers
(``flinkscale.flink``, ``flinkscale.kafka``) sit above it; an import-linter contract keeps it that way.
"""
