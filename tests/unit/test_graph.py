from flinkscale.core.graph import topological_ids


def test_every_id_comes_after_its_inputs() -> None:
    order = topological_ids(["sink", "b", "a", "src"], [("src", "a"), ("src", "b"), ("a", "sink"), ("b", "sink")])
    assert order == ["src", "a", "b", "sink"]


def test_a_cycle_has_no_order() -> None:
    assert topological_ids(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")]) is None
