"""The one explained-number type (core/explained.py): its JSON form and the unknown case."""

from __future__ import annotations

import json

from flinkscale.core.explained import Explained


def test_the_json_form_names_value_unit_formula_and_inputs() -> None:
    number = Explained(3, "subtasks", "ceil(required / per_subtask)", {"required": 50_000.0, "per_subtask": 20_000.0})
    assert json.loads(json.dumps(number.to_dict())) == {
        "value": 3, "unit": "subtasks", "formula": "ceil(required / per_subtask)",
        "inputs": {"required": 50_000.0, "per_subtask": 20_000.0}}


def test_an_unknown_number_says_why_and_has_no_inputs_by_default() -> None:
    unknown: Explained[float | None] = Explained(None, "records/s", "unknown: no input rate")
    assert unknown.to_dict() == {"value": None, "unit": "records/s", "formula": "unknown: no input rate", "inputs": {}}
