"""What ``flinkscale rebalance`` does about skew, decided from a skew report: pure, no I/O.

``plan_rebalance`` keeps what a savepoint restart can carry out (a vertex's parallelism aligned to its key
groups, job-level config such as two-phase aggregation) and lists the rest with the reason it is not applied:
code changes (salting, ``rebalance()``), cluster-level keys (the TaskManagers would need a restart) and keys a
savepoint cannot survive (``pipeline.max-parallelism``: keyed state is laid out in its key groups). The
executor (flink/executor.py) carries the plan out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flinkscale.core.skew import SkewReport

#: Config key prefixes a job can carry (``-D`` at submission); anything else is the cluster's and needs the
#: TaskManagers restarted with it, which a job restart does not do.
JOB_LEVEL_PREFIXES = ("table.", "pipeline.", "execution.", "state.", "python.")
#: Keys that must not change across a savepoint: keyed state is laid out in max-parallelism key groups.
SAVEPOINT_INCOMPATIBLE_KEYS = frozenset({"pipeline.max-parallelism"})


@dataclass(frozen=True)
class RebalancePlan:
    """What ``flinkscale rebalance`` does: new per-vertex parallelism and job-level config, via a savepoint."""

    job_id: str
    parallelism: Mapping[str, int]
    job_config: Mapping[str, str]
    reasons: tuple[str, ...]
    not_applied: tuple[str, ...]

    @property
    def changes_anything(self) -> bool:
        return bool(self.parallelism or self.job_config)

    def to_dict(self) -> dict[str, object]:
        return {"job_id": self.job_id, "parallelism": dict(self.parallelism), "job_config": dict(self.job_config),
                "reasons": list(self.reasons), "not_applied": list(self.not_applied),
                "changes_anything": self.changes_anything}


def plan_rebalance(report: SkewReport) -> RebalancePlan:
    """From a skew report: the best parallelism recommendation per skewed vertex (aligned to its max
    parallelism by ``analyze_skew``) and the job-level settings of its recommendations. Code changes
    (salting, rebalance()), cluster-level keys and keys a savepoint cannot survive are listed, not applied."""
    parallelism: dict[str, int] = {}
    config: dict[str, str] = {}
    reasons: list[str] = []
    not_applied: list[str] = []
    for vertex in report.skewed_vertices:
        with_parallelism = [r for r in vertex.recommendations if r.parallelism is not None]
        if with_parallelism:
            best = max(with_parallelism, key=lambda r: r.expected_gain)
            assert best.parallelism is not None
            if best.parallelism != vertex.parallelism:
                parallelism[vertex.vertex_id] = best.parallelism
                reasons.append(f"{vertex.vertex_name}: {best.title} ({best.explanation})")
        for rec in vertex.recommendations:
            if rec.parallelism is not None:
                continue
            if not rec.config:
                not_applied.append(f"{vertex.vertex_name}: {rec.title} (a code change)")
                continue
            for key, value in rec.config.items():
                if key in SAVEPOINT_INCOMPATIBLE_KEYS:
                    not_applied.append(f"{vertex.vertex_name}: {key}={value} (keyed state in a savepoint is laid "
                                       "out in max-parallelism key groups; changing it needs a fresh start)")
                elif key.startswith(JOB_LEVEL_PREFIXES):
                    config[key] = value
                    reasons.append(f"{vertex.vertex_name}: {key}={value} ({rec.title})")
                else:
                    not_applied.append(f"{vertex.vertex_name}: {key}={value} (cluster-level: set it in the "
                                       "cluster config and restart the TaskManagers)")
    return RebalancePlan(report.job_id, parallelism, config, tuple(dict.fromkeys(reasons)),
                         tuple(dict.fromkeys(not_applied)))
