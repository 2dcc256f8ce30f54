from flinkscale.core.graph import edges_by_end, topological_ids
from flinkscale.core.snapshot import Edge


def test_every_id_comes_after_its_inputs() -> None:
    order = topological_ids(["sink", "b", "a", "src"], [("src", "a"), ("src", "b"), ("a", "sink"), ("b", "sink")])
    assert order == ["src", "a", "b", "sink"]


def test_a_cycle_has_no_order() -> None:
    assert topological_ids(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")]) is None


def test_edges_by_end_keeps_edge_order_per_vertex() -> None:
    edges = [Edge("src", "b"), Edge("src", "a"), Edge("a", "sink"), Edge("b", "sink")]
    inputs, outputs = edges_by_end(edges)
    assert inputs == {"b": (edges[0],), "a": (edges[1],), "sink": (edges[2], edges[3])}
    assert outputs == {"src": (edges[0], edges[1]), "a": (edges[2],), "b": (edges[3],)}
    assert edges_by_end([]) == ({}, {})
