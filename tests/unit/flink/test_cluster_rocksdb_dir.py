"""RocksDB's working dir of the local cluster: short whatever the state dir, one per state dir, removed by `down`.

Flink names each RocksDB instance's LOG file after the instance's whole path, flattened into one file name; below
a deep state dir a restore that merged two subtasks' state made that name longer than the 255 characters a file
name may have, and every restore failed (the integration test in tests/integration/test_rocksdb_paths.py runs
that restore on the real cluster)."""

from __future__ import annotations

from pathlib import Path

import yaml

from flinkscale.flink.cluster import ClusterSpec, LocalCluster


def fake_flink_home(root: Path) -> Path:
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "config.yaml").write_text("taskmanager:\n  numberOfTaskSlots: 1\n")
    (root / "conf" / "log4j.properties").write_text("rootLogger.level = INFO\n")
    return root


def written_config(cluster: LocalCluster, home: Path, spec: ClusterSpec) -> dict[str, object]:
    cluster._prepare_dirs()
    cluster._write_config(spec, home, rest_port=18081, rpc_port=16123)
    loaded: dict[str, object] = yaml.safe_load((cluster.conf_dir / "config.yaml").read_text())
    return loaded


def deep_state_dir(tmp_path: Path) -> Path:
    return tmp_path.joinpath(*(["a-rather-long-directory-name"] * 7), "state")


def test_rocksdb_works_in_a_short_dir_of_its_own_below_a_deep_state_dir(tmp_path: Path) -> None:
    state = deep_state_dir(tmp_path)
    cluster = LocalCluster(state)
    config = written_config(cluster, fake_flink_home(tmp_path / "flink"), ClusterSpec())
    localdir = Path(str(config["state.backend.rocksdb.localdir"]))
    assert len(str(state)) > 200
    assert localdir == cluster.rocksdb_dir and localdir.is_dir()
    assert len(str(localdir)) <= len("/tmp/fs-rocksdb-") + 12 + 40  # the system temp dir's name aside
    assert (localdir.stat().st_mode & 0o777) == 0o700
    assert cluster.state_dir not in localdir.parents
    cluster.down()
    assert not localdir.exists()


def test_each_state_dir_gets_its_own_rocksdb_dir_and_the_same_one_every_time(tmp_path: Path) -> None:
    one, two = LocalCluster(tmp_path / "one"), LocalCluster(tmp_path / "two")
    assert one.rocksdb_dir != two.rocksdb_dir
    assert LocalCluster(tmp_path / "one").rocksdb_dir == one.rocksdb_dir  # `cluster down` in another process


def test_a_users_own_rocksdb_localdir_is_kept(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "state")
    mine = str(tmp_path / "fast-disk")
    spec = ClusterSpec(extra_config={"state.backend.rocksdb.localdir": mine})
    try:
        config = written_config(cluster, fake_flink_home(tmp_path / "flink"), spec)
        assert config["state.backend.rocksdb.localdir"] == mine
    finally:
        cluster.down()
