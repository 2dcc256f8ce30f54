"""Which process is a TaskManager: the local cluster stops one only when it is certain."""

from __future__ import annotations

from flinkscale.flink.cluster import pid_of_task_manager
from flinkscale.flink.models import TaskManagerInfo


def tm(resource_id: str, data_port: int | None) -> TaskManagerInfo:
    return TaskManagerInfo(resource_id, 1, 1, data_port, {})


def test_the_process_listening_on_the_data_port_is_the_task_manager() -> None:
    ports = {101: {50001, 6123}, 102: {50002}}
    assert pid_of_task_manager(tm("a1b2c3", 50002), ports) == 102


def test_the_rpc_port_in_a_standalone_resource_id_identifies_it_too() -> None:
    assert pid_of_task_manager(tm("localhost:40007-f00d", None), {101: {40007}, 102: {40008}}) == 101


def test_no_match_or_more_than_one_match_is_no_answer() -> None:
    assert pid_of_task_manager(tm("a1b2c3", 50009), {101: {50001}}) is None
    assert pid_of_task_manager(tm("localhost:40007-x", 50001), {101: {50001}, 102: {40007}}) is None
    assert pid_of_task_manager(tm("a1b2c3", None), {101: {50001}}) is None
