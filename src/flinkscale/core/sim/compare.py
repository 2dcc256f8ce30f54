"""Several policies, one trace: the comparison ``flinkscale simulate`` prints.

Every policy runs on the same scenario and the same offered-rate array (computed once, noise included), so
differences in the table come from the policies alone. Policies named in ``peak_provisioned`` (by default
``static``) start at the peak-provisioned parallelism (``provisioning.peak_parallelism``): that is what
"static" means, peak capacity all day; every other policy starts at the scenario's parallelism and has to
scale itself.

``oracle`` (``ORACLE`` in the policies, or ``oracle=OracleSettings(...)``) adds the clairvoyant reference
(``core.sim.oracle``): its plan is computed from the same rate array and then run like any other policy.
``Comparison.ratio`` divides one policy's outcome by another's (core-hours / oracle, / flink-operator).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flinkscale.core.policy.base import History, Policy
from flinkscale.core.sim.keyload import FloatArray
from flinkscale.core.sim.oracle import NAME as ORACLE
from flinkscale.core.sim.oracle import OraclePlan, OracleSettings, ScheduledPolicy, oracle_plan
from flinkscale.core.sim.provisioning import peak_parallelism
from flinkscale.core.sim.run import SimRun, clamp_parallelism, simulate
from flinkscale.core.sim.scenario import Scenario

PolicyProgress = Callable[[str, float], None]
__all__ = ["ORACLE", "Comparison", "compare"]


@dataclass(frozen=True)
class Comparison:
    scenario: Scenario
    rates: FloatArray
    runs: tuple[SimRun, ...]
    # The parallelism each policy started at.
    start_parallelism: Mapping[str, Mapping[str, int]]
    oracle: OraclePlan | None = None

    def run(self, policy: str) -> SimRun | None:
        return next((r for r in self.runs if r.outcome.policy == policy), None)

    def ratio(self, policy: str, reference: str, field: str = "core_hours") -> float | None:
        """``policy``'s outcome ``field`` over ``reference``'s (None when either is missing or it is 0/0)."""
        mine, theirs = self.run(policy), self.run(reference)
        if mine is None or theirs is None:
            return None
        a, b = float(getattr(mine.outcome, field)), float(getattr(theirs.outcome, field))
        if b == 0:
            return None if a == 0 else float("inf")
        return a / b


def compare(scenario: Scenario, policies: Mapping[str, Policy], *,
            progress: PolicyProgress | None = None, oracle: OracleSettings | None = None,
            history: History | None = None) -> Comparison:
    """Run every policy (by display name) on ``scenario``; the runs come back in the given order, the oracle
    (when ``oracle`` is given) last. ``history`` (default: the scenario's prior load, if any) is what every
    policy starts with."""
    rates = scenario.rates()
    start_history = history if history is not None else scenario.prior_history()
    peak = peak_parallelism(scenario.pipeline, float(rates.max()), scenario.peak_utilization)
    peak = clamp_parallelism(peak, scenario.pipeline, scenario.config.cluster)
    runs = []
    starts: dict[str, Mapping[str, int]] = {}
    for name, policy in policies.items():
        pipeline = scenario.pipeline
        if name in scenario.peak_provisioned:
            pipeline = pipeline.with_parallelism(peak)
        starts[name] = pipeline.parallelism()

        def report(fraction: float, name: str = name) -> None:
            if progress is not None:
                progress(name, fraction)

        runs.append(simulate(pipeline, rates, policy, scenario.config, progress=report, policy_name=name,
                             history=start_history))
    plan = None
    if oracle is not None:
        config = scenario.config
        plan = oracle_plan(scenario.pipeline, rates, step_seconds=config.step_seconds, cluster=config.cluster,
                           downtime_seconds=config.rescale.downtime_seconds(scenario.pipeline.state_bytes()),
                           lag_target_seconds=config.latency_target_seconds, settings=oracle)
        starts[ORACLE] = scenario.pipeline.parallelism()

        def report_oracle(fraction: float) -> None:
            if progress is not None:
                progress(ORACLE, fraction)

        runs.append(simulate(scenario.pipeline, rates, ScheduledPolicy(plan.schedule), config,
                             progress=report_oracle, policy_name=ORACLE))
    return Comparison(scenario=scenario, rates=rates, runs=tuple(runs), start_parallelism=starts, oracle=plan)
