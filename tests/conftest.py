"""Hypothesis profiles and the SIGINT disposition of the test process.

Hypothesis profiles: ``make test`` (and so CI) runs the property tests derandomized, so a landing never
depends on which examples a fresh random seed draws; ``make unit`` and plain ``pytest`` keep exploring with
random seeds (the way new edge cases are found, then pinned with ``@example``)."""

from __future__ import annotations

import os
import signal

from hypothesis import settings

# `make test` runs the unit tests in a background lane, and a shell starts a background command with SIGINT
# ignored; Python then leaves it ignored, and the tests that press Ctrl-C (and the processes they start) would
# never see it. Restore what an interactive run has.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# No deadline either: on a loaded 2-core machine a slow example is not a failure.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
