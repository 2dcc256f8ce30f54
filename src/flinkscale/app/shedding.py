"""Shedding through a running job's control topic: what ``shed auto`` and ``autoscale --shed-control-topic`` open.

The control topic is created when it is missing; the controller resumes from the keep probability and sequence
number last published there, so a restarted controller neither re-publishes p nor reuses a sequence number; and
with the job's input topic named, the offered rate comes from that topic's end offsets (``ArrivalRate``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flinkscale.core.shedding import ShedSettings
from flinkscale.flink.shedder import ShedController
from flinkscale.kafka.control import ArrivalRate, ControlChannel


@dataclass(frozen=True)
class ShedChannel:
    channel: ControlChannel
    controller: ShedController
    arrivals: ArrivalRate | None  # None without an input topic: the offered rate is read rate + lag growth

    def close(self) -> None:
        self.channel.close()


def open_shed_channel(bootstrap: str, control_topic: str, settings: ShedSettings,
                      input_topic: str | None = None) -> ShedChannel:
    """The control topic at ``bootstrap``, a controller resuming from its latest value, the input topic's
    arrival rate; the channel is closed again when a later step fails."""
    channel = ControlChannel(bootstrap, control_topic)
    try:
        controller = ShedController.resuming(channel.publish, settings, channel.latest_value())
        arrivals = ArrivalRate(channel.bootstrap, input_topic) if input_topic else None
    except BaseException:
        channel.close()
        raise
    return ShedChannel(channel, controller, arrivals)
