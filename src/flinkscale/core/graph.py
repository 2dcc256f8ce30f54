"""Graph order and edge indexes shared by the job graphs (a snapshot's, the simulator's pipeline, a workload
spec's pipeline)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar


class _Edge(Protocol):
    @property
    def source(self) -> str: ...

    @property
    def target(self) -> str: ...


_E = TypeVar("_E", bound=_Edge)


def topological_ids(ids: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[str] | None:
    """``ids`` with every id after all of its inputs (Kahn's algorithm);
    ``None`` when the edges form a cycle."""
    outputs: dict[str, list[str]] = {vid: [] for vid in ids}
    indegree = dict.fromkeys(ids, 0)
    for source, target in edges:
        outputs[source].append(target)
        indegree[target] += 1
    ready = deque(vid for vid in ids if indegree[vid] == 0)
    order: list[str] = []
    while ready:
        vid = ready.popleft()
        order.append(vid)
        for target in outputs[vid]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return order if len(order) == len(ids) else None


def edges_by_end(edges: Iterable[_E]) -> tuple[dict[str, tuple[_E, ...]], dict[str, tuple[_E, ...]]]:
    """Each vertex id's input edges and its output edges, in edge order (one pass: linear in the graph); a
    vertex without input (output) edges has no key in the first (second) mapping."""
    inputs: dict[str, list[_E]] = {}
    outputs: dict[str, list[_E]] = {}
    for e in edges:
        inputs.setdefault(e.target, []).append(e)
        outputs.setdefault(e.source, []).append(e)
    return {k: tuple(v) for k, v in inputs.items()}, {k: tuple(v) for k, v in outputs.items()}
