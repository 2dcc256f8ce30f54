"""A number that explains itself: its value, its unit, the formula and the inputs behind it.

One type for every derived number the package shows: the plan's rates, parallelism and sizes
(``core.capacity``) and the profile's capacities, amplifications and headroom (``core.profile``), so that
"every number a plan or a decision prints can explain itself" (DESIGN.md) has one shape and one JSON form.

``value`` is a float (ints are welcome); a number that may be unknown is an ``Explained[float | None]``
whose formula then says why it is unknown (``"unknown: Flink reported no busy time (NaN)"``). ``inputs`` names
the inputs by what they are (``{"rate": 40509.3, "target_utilization": 0.7}``); a formula may also write
its inputs in line, as the profile's do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic

from typing_extensions import TypeVar

#: The value's type: ``float`` unless stated (``Explained`` = ``Explained[float]``).
Value = TypeVar("Value", bound=float | None, covariant=True, default=float)


@dataclass(frozen=True)
class Explained(Generic[Value]):
    """A number that can explain itself."""

    value: Value
    unit: str
    formula: str
    inputs: Mapping[str, float | str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "unit": self.unit, "formula": self.formula, "inputs": dict(self.inputs)}
