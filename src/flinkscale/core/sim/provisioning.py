"""Peak provisioning: the parallelism a static deployment needs for the trace's peak, skew included.

The ``static`` baseline keeps whatever parallelism the job starts with, so the comparison starts it at the
parallelism that carries the PEAK rate with every subtask at or under a target utilization. Sizing by
``ceil(rate / (capacity x utilization))`` would be wrong for keyed vertices and sources: the busiest subtask
bounds a vertex, so for each vertex the smallest ``p`` is searched for which

    max over subtasks of (load on that subtask at p) <= capacity x utilization,

where the load on a keyed vertex's subtask follows Flink's key-group layout and key distribution
(``keyload.subtask_shares``) and a source reader's load follows its share of the partitions. When no ``p``
up to max parallelism (or, for a source, the partition count) is enough, the best reachable is returned,
and the simulation will show the lag that remains.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from flinkscale.core.errors import InputError
from flinkscale.core.sim.engine import edge_shares
from flinkscale.core.sim.keyload import FloatArray, key_group_weights, partition_shares
from flinkscale.core.sim.model import SimPipeline, SimVertex
from flinkscale.core.snapshot import ShipStrategy

# Searching every p up to 32768 for each vertex is wasteful; past this many candidates the even estimate
# is scaled up geometrically instead.
_LINEAR_SEARCH_LIMIT = 4096


def _busiest_load(pipeline: SimPipeline, vertex: SimVertex, p: int, input_rates: dict[int, float],
                  weights: dict[int, FloatArray]) -> float:
    candidate = replace(vertex, parallelism=p)  # only this vertex changes: no whole pipeline per candidate
    load = np.zeros(p)
    for i, rate in input_rates.items():
        edge = pipeline.edges[i]
        if edge.ship_strategy is ShipStrategy.HASH:
            load += rate * edge_shares(edge, candidate, weights[i])
        else:
            load += rate * edge_shares(edge, candidate, None)
    return float(load.max())


def _inputs_by_target(pipeline: SimPipeline) -> dict[str, list[int]]:
    """Indexes of each vertex's input edges, in edge order (one pass: linear in the graph)."""
    inputs: dict[str, list[int]] = {}
    for i, edge in enumerate(pipeline.edges):
        inputs.setdefault(edge.target, []).append(i)
    return inputs


def peak_parallelism(pipeline: SimPipeline, peak_rate: float, utilization: float = 0.8) -> dict[str, int]:
    """Per vertex, the smallest parallelism whose busiest subtask stays <= ``utilization`` at ``peak_rate``."""
    if not 0 < utilization <= 1:
        raise InputError(f"must be in (0, 1], got {utilization}", field="peak_provisioning.utilization")
    factors = pipeline.vertex_rate_factors()
    sources = {v.id for v in pipeline.sources()}
    incoming = _inputs_by_target(pipeline)
    result: dict[str, int] = {}
    for vertex in pipeline.vertices:
        budget = vertex.capacity * utilization
        rate = peak_rate * factors[vertex.id]
        even = vertex.subtasks_for(rate, utilization)
        if vertex.id in sources:
            upper = min(vertex.max_parallelism, vertex.partitions or vertex.max_parallelism)
            p = min(even, upper)
            while p < upper and rate * float(partition_shares(vertex.partitions, p).max()) > budget:
                p += 1
            result[vertex.id] = p
            continue
        inputs = {i: peak_rate * factors[pipeline.edges[i].source] * pipeline.edges[i].selectivity
                  for i in incoming.get(vertex.id, ())}
        # Only key groups make the busiest share depend on p; BROADCAST and GLOBAL load cannot be spread.
        if not any(pipeline.edges[i].ship_strategy is ShipStrategy.HASH for i in inputs):
            result[vertex.id] = min(even, vertex.max_parallelism)
            continue
        weights = {i: key_group_weights(pipeline.edges[i].key_distribution, vertex.max_parallelism)
                   for i in inputs if pipeline.edges[i].ship_strategy is ShipStrategy.HASH}
        p = min(even, vertex.max_parallelism)
        best, best_load = p, _busiest_load(pipeline, vertex, p, inputs, weights)
        tried = 0
        while best_load > budget and p < vertex.max_parallelism:
            tried += 1
            p = p + 1 if tried < _LINEAR_SEARCH_LIMIT else min(vertex.max_parallelism, math.ceil(p * 1.1))
            load = _busiest_load(pipeline, vertex, p, inputs, weights)
            if load < best_load:
                best, best_load = p, load
        result[vertex.id] = best
    return result


def parallelism_levels(pipeline: SimPipeline, rates: list[float], utilization: float = 1.0) -> list[dict[str, int]]:
    """``peak_parallelism`` for many rates at once (ascending): key-group weights are computed once per edge
    and each vertex's search resumes where the previous rate's ended (the smallest parallelism that fits a
    rate never shrinks as the rate grows). The searches are exhaustive up to max parallelism."""
    if not 0 < utilization <= 1:
        raise InputError(f"must be in (0, 1], got {utilization}", field="utilization")
    ordered = sorted(rates)
    factors = pipeline.vertex_rate_factors()
    sources = {v.id for v in pipeline.sources()}
    incoming = _inputs_by_target(pipeline)
    per_vertex: dict[str, list[int]] = {}
    for vertex in pipeline.vertices:
        budget = vertex.capacity * utilization
        found: list[int] = []
        if vertex.id in sources:
            upper = min(vertex.max_parallelism, vertex.partitions or vertex.max_parallelism)
            p = 1
            for rate in ordered:
                load = rate * factors[vertex.id]
                while p < upper and load * float(partition_shares(vertex.partitions, p).max()) > budget:
                    p += 1
                found.append(p)
            per_vertex[vertex.id] = found
            continue
        inputs = {i: factors[pipeline.edges[i].source] * pipeline.edges[i].selectivity
                  for i in incoming.get(vertex.id, ())}
        weights = {i: key_group_weights(pipeline.edges[i].key_distribution, vertex.max_parallelism)
                   for i in inputs if pipeline.edges[i].ship_strategy is ShipStrategy.HASH}
        share: dict[int, float] = {}

        def busiest(p: int, vertex: SimVertex = vertex, inputs: dict[int, float] = inputs,
                    weights: dict[int, FloatArray] = weights, share: dict[int, float] = share) -> float:
            if p not in share:
                share[p] = _busiest_load(pipeline, vertex, p, inputs, weights)
            return share[p]

        p = 1
        for rate in ordered:
            # The mean share is a lower bound of the busiest: start the search at the even estimate.
            p = max(p, min(vertex.max_parallelism, math.ceil(rate * sum(inputs.values()) / budget - 1e-9)))
            while p < vertex.max_parallelism and rate * busiest(p) > budget:
                p += 1
            found.append(p)
        per_vertex[vertex.id] = found
    return [{vid: per_vertex[vid][i] for vid in per_vertex} for i in range(len(ordered))]


def carried_rate(pipeline: SimPipeline, parallelism: dict[str, int]) -> float:
    """The source rate (records/s) the pipeline carries at ``parallelism`` with its busiest subtask of every
    vertex fully busy: the full-speed capacity of that size, key groups and partitions included."""
    factors = pipeline.vertex_rate_factors()
    sources = {v.id for v in pipeline.sources()}
    incoming = _inputs_by_target(pipeline)
    best = math.inf
    for vertex in pipeline.vertices:
        p = parallelism.get(vertex.id, vertex.parallelism)
        if vertex.id in sources:
            load = factors[vertex.id] * float(partition_shares(vertex.partitions, p).max())
        else:
            inputs = {i: factors[pipeline.edges[i].source] * pipeline.edges[i].selectivity
                      for i in incoming.get(vertex.id, ())}
            weights = {i: key_group_weights(pipeline.edges[i].key_distribution, vertex.max_parallelism)
                       for i in inputs if pipeline.edges[i].ship_strategy is ShipStrategy.HASH}
            load = _busiest_load(pipeline, vertex, p, inputs, weights)
        if load > 0:
            best = min(best, vertex.capacity / load)
    return best
