"""Hypothesis profiles: ``make test`` (and so CI) runs the property tests derandomized, so a landing never
depends on which examples a fresh random seed draws; ``make unit`` and plain ``pytest`` keep exploring with
random seeds (the way new edge cases are found, then pinned with ``@example``)."""

from __future__ import annotations

import os

from hypothesis import settings

# No deadline either: on a loaded 2-core machine a slow example is not a failure.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
