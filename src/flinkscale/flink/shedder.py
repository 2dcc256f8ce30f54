"""The load-shedding controller at the I/O edge: the pure controller state plus a way to publish.

The maths (offered and sustainable rate, backlog drain, the accuracy bound, when a change is worth
publishing) is ``flinkscale.core.shedding.shed_step``, run by ``flinkscale.core.control.step`` within the
autoscaling rules. ``ShedController`` keeps the ``ShedState`` between samples and publishes the keep
probabilities the step decides (``ControlChannel.publish`` in production, a list in tests). The
autoscaling loop hands it to the control step along with a policy; ``ShedLoop`` (``shed auto``) without.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace

from flinkscale.core import control
from flinkscale.core.control import ControllerState, ControlResult, ControlSettings
from flinkscale.core.policy.base import History
from flinkscale.core.shedding import ShedSettings, ShedState, ShedStep, SourceLoad, shed_step, source_load
from flinkscale.core.snapshot import MetricsSnapshot

__all__ = ["Publish", "ShedController", "ShedLoop", "ShedSettings", "ShedStep", "SourceLoad", "source_load"]

#: A published value: (keep probability, seq) -> anything (the channel's receipt).
Publish = Callable[[float, int], object]

#: Steps kept for inspection (the live view, tests); older ones are dropped so a daemon does not grow.
MAX_KEPT_STEPS = 256


class ShedController:
    """The shedding state of one job and the channel its keep probabilities go to."""

    def __init__(self, publish: Publish, settings: ShedSettings | None = None, *, keep_probability: float = 1.0,
                 next_seq: int = 0) -> None:
        self.publish = publish
        self.settings = settings or ShedSettings()
        self.state = ShedState(keep_probability, next_seq, last_sustainable_rate=self.settings.sustainable_rate)
        self.steps: deque[ShedStep] = deque(maxlen=MAX_KEPT_STEPS)

    @classmethod
    def resuming(cls, publish: Publish, settings: ShedSettings, latest: tuple[float, int] | None) -> ShedController:
        """A controller that continues from the control topic's latest (keep probability, seq), if any, so a
        restarted controller neither re-publishes p nor reuses a sequence number."""
        if latest is None:
            return cls(publish, settings)
        return cls(publish, settings, keep_probability=latest[0], next_seq=latest[1] + 1)

    @property
    def keep_probability(self) -> float:
        return self.state.keep_probability

    @property
    def next_seq(self) -> int:
        return self.state.next_seq

    @property
    def last_sustainable_rate(self) -> float | None:
        return self.state.last_sustainable_rate

    def commit(self, step: ShedStep, state: ShedState) -> None:
        """Publish what ``step`` decided (if anything), then take ``state`` as the state in force: a failed
        publish leaves the controller where it was."""
        if step.published_seq is not None:
            self.publish(step.keep_probability, step.published_seq)
        self.state = state
        self.steps.append(step)

    def step(self, snapshot: MetricsSnapshot, arrival_rate: float | None = None) -> ShedStep:
        """One controller step outside the autoscaling rules (``core.shedding.shed_step``), committed."""
        step, state = shed_step(snapshot, self.state, self.settings, arrival_rate)
        self.commit(step, state)
        return step


class ShedLoop:
    """``shed auto``: the control step without an autoscaling policy, one ``tick`` per collector sample.

    It keeps the history and controller state between ticks and publishes through ``controller``; sampling,
    sleeping and printing stay with the caller."""

    def __init__(self, controller: ShedController, interval_seconds: float) -> None:
        self.controller = controller
        self.settings = ControlSettings(interval_seconds=interval_seconds, shedding=controller.settings)
        self.state = ControllerState(shed=controller.state)
        self.history = History()

    def tick(self, snapshot: MetricsSnapshot, arrival_rate: float | None = None) -> ControlResult:
        result = control.step(snapshot, self.history, replace(self.state, shed=self.controller.state), self.settings,
                              None, arrival_rate=arrival_rate)
        if result.shed is not None:
            self.controller.commit(result.shed, result.state.shed)
        self.state, self.history = result.state, result.history
        return result
