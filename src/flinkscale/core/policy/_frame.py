"""The frame the configurable policies share: the settings they are built with and the holds their rules start with.

``SettingsPolicy`` keeps a policy's settings (its defaults when none are given) and holds a job that is not
RUNNING before any rule runs (its ``decide``; each policy writes ``decide_running``): no rule of any policy
reads a job that is restarting, failing or finished. ``WindowedPolicy`` adds
what the policies with a stabilization interval, a metrics window and a scale-down interval (``flinkscale``,
``flink-operator``) share: the history those three spans need, and the hold while the job is still inside
its stabilization interval after a (re)start or rescale.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from flinkscale.core.policy import _evaluate as ev
from flinkscale.core.policy.base import Decision, History
from flinkscale.core.snapshot import MetricsSnapshot


class WindowSettings(Protocol):
    """The spans a windowed policy's settings name, in seconds."""

    @property
    def stabilization_interval(self) -> float: ...

    @property
    def metrics_window(self) -> float: ...

    @property
    def scale_down_interval(self) -> float: ...


_S = TypeVar("_S")
_W = TypeVar("_W", bound=WindowSettings)


class SettingsPolicy(ABC, Generic[_S]):
    """A policy with settings; ``name`` and ``default_settings`` (the settings class) are set by each policy.

    A policy given no settings takes ``default_settings.from_mapping(None)``: the defaults of its SETTINGS rows,
    the one place they are written."""

    name: str
    default_settings: ClassVar[type[Any]]

    def __init__(self, settings: _S | None = None) -> None:
        self.settings: _S = settings if settings is not None else self.default_settings.from_mapping(None)

    def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        """A hold naming the job's state when it is not RUNNING; else the policy's rules (``decide_running``).
        Written once here, so that no policy can forget it."""
        if snapshot.job_state != "RUNNING":
            return ev.hold_decision(snapshot, self.name, f"job is {snapshot.job_state}", f"job is {snapshot.job_state}")
        return self.decide_running(snapshot, history)

    @abstractmethod
    def decide_running(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        """The policy's rules on a RUNNING job."""


class WindowedPolicy(SettingsPolicy[_W]):
    """A policy that decides on a metrics window after a stabilization interval and scales down only after
    ``scale_down_interval``; ``stabilization_key`` is the option's name as its hold messages spell it."""

    stabilization_key: ClassVar[str]

    @property
    def history_seconds(self) -> float:
        """Snapshots and decisions the rules read: a scale-down interval (of unchanged parallelism or of
        recommendations), the metrics window and the stabilization before it."""
        s = self.settings
        return ev.scale_down_history_seconds(s.scale_down_interval, s.metrics_window, s.stabilization_interval)

    def stable_window(self, snapshot: MetricsSnapshot, history: History) -> ev.StableWindow | Decision:
        """The window the rules may read, or a hold while the job is inside its stabilization interval."""
        s = self.settings
        stable = ev.stable_window(snapshot, history, s.stabilization_interval, s.metrics_window)
        if stable.stabilizing_seconds > 0:
            why = f"stabilizing for {stable.stabilizing_seconds:.0f}s more ({self.stabilization_key})"
            return ev.hold_decision(snapshot, self.name, why, why)
        return stable
