"""Opening a store: migrations (from empty, from the previous version), refusals that never reset data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from store_helpers import JOB, FakeClock, decision, snapshot

from flinkscale.core.errors import EndpointError, InputError, RuntimeFailure
from flinkscale.core.policy.base import RescaleRecord
from flinkscale.store import StateStore, _schema, head_revision, known_revisions, parse_store_url, redacted
from flinkscale.store._migrate import MIGRATIONS_DIR


def _db_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def test_the_store_ships_at_least_two_revisions_in_order() -> None:
    assert known_revisions() == ("0001", "0002")
    assert head_revision() == "0002"
    assert not (MIGRATIONS_DIR.parent / "alembic.ini").exists()  # the Config is built in code


def test_an_empty_database_is_migrated_to_exactly_the_tables_the_store_uses(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as store:
        assert store.schema_revision() == "0002"
        assert set(store.row_counts()) == {t.name for t in _schema.metadata.sorted_tables}
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), _schema.metadata)
    engine.dispose()
    assert diff == []


def test_a_version_1_store_is_upgraded_and_keeps_its_rows(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock, revision="0001") as old:
        assert old.schema_revision() == "0001"
        old.upsert_job(JOB, "clicks")
        old.add_snapshot(JOB, snapshot(clock.now))
        old.set_timer(JOB, "v1", 1, due_at=clock.now + 3600)
        intent = old.record_intent(JOB, {"v0": 2}, {"v0": 4})
    with sqlite3.connect(_db_path(url)) as raw:
        tables = {r[0] for r in raw.execute("select name from sqlite_master where type='table'")}
    assert "load_history" not in tables and "jobs" in tables

    with StateStore.open(url, clock=clock) as new:
        assert new.schema_revision() == "0002"
        assert [j.job_name for j in new.jobs()] == ["clicks"]
        assert len(new.snapshots(JOB)) == 1
        assert [t.due_at for t in new.timers(JOB)] == [clock.now + 3600]
        pending = new.pending_intent(JOB)
        assert pending is not None and pending.intent_id == intent.intent_id
        new.record_load(JOB, clock.now, 10.0)
        assert [s.source_rate for s in new.load_history(JOB)] == [10.0]


def test_reopening_a_current_store_changes_nothing(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as store:
        store.add_snapshot(JOB, snapshot(clock.now))
    with StateStore.open(url, clock=clock) as again:
        assert again.row_counts()["snapshots"] == 1


def test_a_corrupt_file_is_an_input_error_naming_the_store_and_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    garbage = b"this is not a database, it is a text file someone overwrote\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(InputError) as caught:
        StateStore.open(f"sqlite:///{path}")
    message = str(caught.value)
    assert str(path) in message and "not a database" in message and "\n" not in message
    assert path.read_bytes() == garbage


def test_a_damaged_page_inside_a_valid_store_is_refused_at_open(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as store, store.batch():
        for i in range(300):
            store.add_snapshot(JOB, snapshot(clock.now + i))
    path = _db_path(url)
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    assert len(data) > 10 * page_size
    for page in range(2, len(data) // page_size):  # keep the header page, scramble every other page's header
        data[page * page_size:page * page_size + 12] = b"\xff" * 12
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        StateStore.open(url, clock=clock)
    message = str(caught.value)
    assert str(path) in message and ("damaged" in message or "malformed" in message), message
    assert "\n" not in message


@pytest.mark.parametrize(("table", "payload"), [("snapshots", "{not json"), ("snapshots", '{"x": 1}'),
                                               ("decisions", "[]"), ("decisions", '{"timestamp": "noon"}')])
def test_a_row_that_does_not_read_is_an_input_error_naming_the_table_and_the_job(
        url: str, clock: FakeClock, table: str, payload: str) -> None:
    with StateStore.open(url, clock=clock) as store:
        store.add_snapshot(JOB, snapshot(clock.now))
        store.add_decision(JOB, decision(clock.now))
    with sqlite3.connect(_db_path(url)) as db:
        db.execute(f"UPDATE {table} SET payload = ?", (payload,))  # edited by hand or by a foreign tool
    with StateStore.open(url, clock=clock) as store:
        read = store.snapshots if table == "snapshots" else store.decisions
        with pytest.raises(InputError) as caught:
            read(JOB)
    message = str(caught.value)
    assert message.startswith(f"{url}: the state store is damaged (a row of {table} for job {JOB} does not read")
    assert "\n" not in message


# (table, column, value edited in by hand, the read that meets it). SQLite keeps any value in any column.
DAMAGED_COLUMNS = [
    ("jobs", "gone_since", 1e300, "jobs"), ("jobs", "first_seen", "noon", "jobs"), ("jobs", "last_seen", -5, "jobs"),
    ("jobs", "restart_cost_samples", -1, "jobs"),
    ("rescales", "requested_at", "x", "rescales"), ("rescales", "old_parallelism", "not json", "rescales"),
    ("rescales", "new_parallelism", '{"a": "x"}', "rescales"), ("rescales", "new_parallelism", '{"a": 0}', "rescales"),
    ("intents", "target_parallelism", "[1]", "intents"), ("intents", "created_at", -1e18, "intents"),
    ("intents", "status", "maybe", "intents"),
    ("scale_down_timers", "due_at", "soon", "timers"), ("scale_down_timers", "target_parallelism", 1.5, "timers"),
    ("load_history", "samples", 0, "load_history"), ("load_history", "rate_sum", "lots", "load_history"),
]


@pytest.mark.parametrize(("table", "column", "value", "read"), DAMAGED_COLUMNS,
                         ids=[f"{t}.{c}={v!r}" for t, c, v, _ in DAMAGED_COLUMNS])
def test_a_damaged_column_is_an_input_error_naming_the_table_not_a_crash(
        url: str, clock: FakeClock, table: str, column: str, value: object, read: str) -> None:
    with StateStore.open(url, clock=clock) as store:
        store.upsert_job(JOB, "job")
        store.add_rescale(JOB, RescaleRecord(clock.now, clock.now + 5, {"v": 1}, {"v": 2}))
        store.record_intent(JOB, {"v": 1}, {"v": 2})
        store.set_timer(JOB, "v", 1, clock.now + 60)
        store.record_load(JOB, clock.now, 100.0)
    with sqlite3.connect(_db_path(url)) as db:
        db.execute(f"UPDATE {table} SET {column} = ?", (value,))  # edited by hand or by a foreign tool
    with StateStore.open(url, clock=clock) as store, pytest.raises(InputError) as caught:
        {"jobs": store.jobs, "rescales": lambda: store.rescales(JOB), "intents": lambda: store.intents(JOB),
         "timers": store.timers, "load_history": lambda: store.load_history(JOB)}[read]()
    message = str(caught.value)
    assert message.startswith(f"{url}: the state store is damaged (a row of {table} for job "), message
    assert "\n" not in message


def test_a_store_written_by_a_newer_flinkscale_is_refused_not_downgraded(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as store:
        store.add_snapshot(JOB, snapshot(clock.now))
    with sqlite3.connect(_db_path(url)) as raw:
        raw.execute("update alembic_version set version_num = '0099'")
    with pytest.raises(RuntimeFailure) as caught:
        StateStore.open(url, clock=clock)
    message = str(caught.value)
    assert "0099" in message and "newer" in message and str(_db_path(url)) in message
    with sqlite3.connect(_db_path(url)) as raw:
        assert raw.execute("select count(*) from snapshots").fetchone() == (1,)
        assert raw.execute("select version_num from alembic_version").fetchone() == ("0099",)


def test_a_foreign_database_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as raw:
        raw.execute("create table users (id integer primary key)")
    with pytest.raises(InputError, match=r"not a flinkscale state store .*users"):
        StateStore.open(f"sqlite:///{path}")
    with sqlite3.connect(path) as raw:
        tables = {r[0] for r in raw.execute("select name from sqlite_master where type='table'")}
    assert tables == {"users"}


def test_an_unreadable_location_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(InputError) as caught:
        StateStore.open(f"sqlite:///{blocker / 'sub' / 'state.db'}")
    assert str(blocker) in str(caught.value)


@pytest.mark.parametrize("text", [
    "mysql://u:p@h/db", "redis://localhost", "postgresql://u:p@host:notaport/db", "://x",
    # a driver that is not installed (or not one) was an internal error when the engine was made
    "postgresql+psycopg2://u:p@127.0.0.1:9/db", "postgresql+asyncpg://u:p@h/db", "sqlite+nope:///x.db",
    # one slash: not a path either (it made a SQLite file named after the URL, password and all)
    "postgresql:/u:p@db.example/flinkscale", "~nouser-flinkscale/x.db", "", "  ",
])
def test_an_unsupported_or_malformed_url_names_the_flag(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_store_url(text)
    assert str(caught.value).startswith("--state: ")
    assert ":p@" not in str(caught.value)


def test_a_bare_path_means_a_sqlite_file(tmp_path: Path) -> None:
    assert parse_store_url(str(tmp_path / "s.db")).get_backend_name() == "sqlite"


def test_postgres_urls_use_psycopg_3_and_messages_never_show_the_password() -> None:
    url = parse_store_url("postgresql://flink:hunter2secret@127.0.0.1:1/state")
    assert url.drivername == "postgresql+psycopg"
    assert "hunter2secret" not in redacted(url) and "***" in redacted(url)


def test_an_unreachable_postgres_server_is_an_endpoint_error_without_the_password() -> None:
    # Port 1 on the loopback: nothing listens there, the connection is refused at once.
    with pytest.raises(EndpointError) as caught:
        StateStore.open("postgresql+psycopg://flink:hunter2secret@127.0.0.1:1/state?connect_timeout=5")
    message = str(caught.value)
    assert "hunter2secret" not in message and "127.0.0.1" in message and "\n" not in message


def test_every_migration_file_ships_in_the_wheel() -> None:
    """pyproject's package-data globs cover every file Alembic needs (a migration left out would make an
    installed flinkscale refuse its own stores as 'newer')."""
    import tomllib
    from pathlib import PurePosixPath

    root = Path(__file__).resolve().parents[3]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["flinkscale"]
    package = root / "src" / "flinkscale"
    needed = [p.relative_to(package).as_posix() for p in MIGRATIONS_DIR.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts]
    assert any(name.startswith("store/migrations/versions/") for name in needed)

    def shipped(name: str) -> bool:  # as setuptools globs: '*' stays within one directory
        path = PurePosixPath(name)
        return any(len(path.parts) == len(PurePosixPath(g).parts) and path.match(g) for g in globs)

    assert [name for name in needed if not shipped(name)] == []
    assert not shipped("store/migrations/versions/deeper/x.py")  # the check itself does not cross directories


def test_an_unanswering_postgres_server_times_out_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from flinkscale.store import _store

    monkeypatch.setattr(_store, "PG_CONNECT_TIMEOUT_S", 2)  # the default (10 s) applies without a URL option

    # A listening socket that never accepts: the TCP handshake completes, the server never speaks.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(EndpointError) as caught:
            StateStore.open(f"postgresql+psycopg://flink:pw@127.0.0.1:{port}/state")
    assert f"127.0.0.1:{port}" in str(caught.value)
