"""Several policies, one trace: the comparison ``flinkscale simulate`` prints.

Every policy runs on the same scenario and the same offered-rate array (computed once, noise included), so
differences in the table come from the policies alone. Policies named in ``peak_provisioned`` (by default
``static``) start at the peak-provisioned parallelism (``provisioning.peak_parallelism``): that is what
"static" means, peak capacity all day; every other policy starts at the scenario's parallelism and has to
scale itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flinkscale.core.policy.base import Policy
from flinkscale.core.sim.keyload import FloatArray
from flinkscale.core.sim.provisioning import peak_parallelism
from flinkscale.core.sim.run import SimRun, clamp_parallelism, simulate
from flinkscale.core.sim.scenario import Scenario

PolicyProgress = Callable[[str, float], None]


@dataclass(frozen=True)
class Comparison:
    scenario: Scenario
    rates: FloatArray
    runs: tuple[SimRun, ...]
    # The parallelism each policy started at.
    start_parallelism: Mapping[str, Mapping[str, int]]


def compare(scenario: Scenario, policies: Mapping[str, Policy], *,
            progress: PolicyProgress | None = None) -> Comparison:
    """Run every policy (by display name) on ``scenario``; the runs come back in the given order."""
    rates = scenario.rates()
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

        runs.append(simulate(pipeline, rates, policy, scenario.config, progress=report, policy_name=name))
    return Comparison(scenario=scenario, rates=rates, runs=tuple(runs), start_parallelism=starts)
