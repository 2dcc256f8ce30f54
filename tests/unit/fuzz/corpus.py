"""The corpus of bad inputs for every non-network input of the CLI (files, flag values, output paths).

``build_corpus(tmp)`` writes the bad files under ``tmp`` and returns one ``Case`` per bad input: the argv to
run and what the single error line must name (the file, the field path or the flag). Classes:

- every file input (workload spec, --from-profile, --snapshot, --history, scenario, replay CSV, load
  profile, cluster up --config, lint): not UTF-8, missing, a directory, empty, the wrong top-level type,
  syntax errors (one-line and multi-line), alias bombs, deep nesting, non-finite numbers;
- field-level values: .inf/.nan, 1e400TB, 1e308 costs and selectivities, strings for numbers, a number for
  the vertex list, string timestamps, scenario peak/noise NaN, a period of 0, a negative seed;
- flag values: --target 1e400/s, -d 1e400s, -d 100000d, --window 1e400s, --zipf nan, --threshold nan,
  ports out of range, a YAML error in --set;
- output paths that are files, below files, or unwritable.

None of these needs a cluster or a broker: every one must fail before anything reaches the network.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from tests.unit.fuzz._contract import Case

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "examples" / "workloads" / "clickstream-1tb.yaml"
SNAPSHOT = ROOT / "examples" / "snapshots" / "clickstream-p1-overloaded.json"
SCENARIO = ROOT / "examples" / "scenarios" / "step-small.yaml"
# Nothing listens here: a case that wrongly gets as far as the broker still ends quickly.
NO_BROKER = "127.0.0.1:9"

ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
)

# (label, bytes) of files that are bad whatever they are meant to be.
YAML_BAD_FILES: list[tuple[str, bytes]] = [
    ("not-utf8", b"name: \xff\xfe bad\n"),
    ("latin1", "name: caf\xe9\n".encode("latin-1")),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    ("empty", b""),
    ("comment-only", b"# nothing here\n"),
    ("list", b"- a\n- b\n"),
    ("scalar", b"42\n"),
    ("string", b"hello world\n"),
    ("syntax-unclosed", b"name: [1, 2\nvolume: 3\n"),
    ("syntax-multiline", b"name: a\n  b: c\n d: e\n"),
    ("tab-indent", b"name:\n\t- a\n"),
    ("multi-document", b"name: a\n---\nname: b\n"),
    ("python-tag", b"name: !!python/object/apply:os.system ['true']\n"),
    ("alias-bomb", ALIAS_BOMB.encode()),
    ("deep-nesting", b"[" * 20000 + b"]" * 20000),
    ("deep-mapping", b"{a: " * 5000 + b"1" + b"}" * 5000),
    ("null-byte", b"name: a\x00b\n"),
    ("unknown-alias", b"name: *nope\n"),
    # PyYAML's constructors raise plain Python errors for these (not YAMLError).
    ("bad-date", b"name: 2024-13-45\n"),
    ("int-tag-not-int", b"name: !!int abc\n"),
    ("timestamp-tag-not-time", b"name: !!timestamp x\n"),
    ("int-beyond-4300-digits", b"name: " + b"9" * 5000 + b"\n"),
]

JSON_BAD_FILES: list[tuple[str, bytes]] = [
    ("not-utf8", b'{"job_id": "\xff"}'),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00"),
    ("empty", b""),
    ("list", b"[1, 2]"),
    ("number", b"42"),
    ("string", b'"snapshot"'),
    ("null", b"null"),
    ("syntax", b'{"job_id": '),
    ("trailing-comma", b'{"job_id": "a",}'),
    ("nan-constant", b'{"timestamp": NaN, "job_id": "a", "vertices": []}'),
    ("infinity-constant", b'{"timestamp": Infinity, "job_id": "a", "vertices": []}'),
    ("huge-number", b'{"timestamp": 1e400, "job_id": "a", "vertices": []}'),
    ("deep-nesting", b"[" * 100000 + b"]" * 100000),
    ("bom", b'\xef\xbb\xbf{"job_id": "a"}'),
    ("null-byte", b'{"job_id": "a\x00"}\x00'),
]


def _snapshot_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    result = copy.deepcopy(data)
    node = result
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return result


# Snapshot mutations: (label, mutate(data) -> data, the field the error must name).
SNAPSHOT_MUTATIONS: list[tuple[str, Callable[[Any], Any], str]] = [
    ("vertices-number", lambda d: _set(d, ("vertices",), 5), "vertices"),
    ("vertices-string", lambda d: _set(d, ("vertices",), "abc"), "vertices"),
    ("vertices-object", lambda d: _set(d, ("vertices",), {"a": 1}), "vertices"),
    ("vertex-string", lambda d: _set(d, ("vertices", 0), "v"), "vertices[0]"),
    ("vertex-null", lambda d: _set(d, ("vertices", 0), None), "vertices[0]"),
    ("timestamp-string", lambda d: _set(d, ("timestamp",), "yesterday"), "timestamp"),
    ("timestamp-list", lambda d: _set(d, ("timestamp",), [1]), "timestamp"),
    ("timestamp-bool", lambda d: _set(d, ("timestamp",), True), "timestamp"),
    ("job-id-number", lambda d: _set(d, ("job_id",), 12), "job_id"),
    ("job-id-object", lambda d: _set(d, ("job_id",), {"a": 1}), "job_id"),
    ("window-string", lambda d: _set(d, ("window_seconds",), "60s"), "window_seconds"),
    ("window-negative", lambda d: _set(d, ("window_seconds",), -5), "window_seconds"),
    ("slots-available-above-total", lambda d: _set(d, ("cluster", "slots_available"), 10**6),
     "cluster.slots_available"),
    ("window-zero", lambda d: _set(d, ("window_seconds",), 0), "window_seconds"),
    ("parallelism-string", lambda d: _set(d, ("vertices", 0, "parallelism"), "2"), "vertices[0].parallelism"),
    ("parallelism-float", lambda d: _set(d, ("vertices", 0, "parallelism"), 1.5), "vertices[0].parallelism"),
    ("parallelism-huge", lambda d: _set(d, ("vertices", 0, "parallelism"), 10**30), "vertices[0].parallelism"),
    ("parallelism-zero", lambda d: _set(d, ("vertices", 0, "parallelism"), 0), "vertices[0].parallelism"),
    ("max-parallelism-string", lambda d: _set(d, ("vertices", 0, "max_parallelism"), "x"),
     "vertices[0].max_parallelism"),
    ("vertex-id-number", lambda d: _set(d, ("vertices", 0, "id"), 7), "vertices[0].id"),
    ("vertex-id-list", lambda d: _set(d, ("vertices", 0, "id"), ["a"]), "vertices[0].id"),
    ("metrics-list", lambda d: _set(d, ("vertices", 0, "metrics"), [1, 2]), "vertices[0].metrics"),
    ("metrics-string", lambda d: _set(d, ("vertices", 0, "metrics"), "m"), "vertices[0].metrics"),
    ("busy-string", lambda d: _set(d, ("vertices", 0, "metrics", "busy_time_ms_per_second_max"), "750"),
     "busy_time_ms_per_second_max"),
    ("busy-huge", lambda d: _set(d, ("vertices", 0, "metrics", "busy_time_ms_per_second_max"), 1e308),
     "busy_time_ms_per_second_max"),
    ("records-in-string", lambda d: _set(d, ("vertices", 0, "metrics", "num_records_in_per_second"), "5k"),
     "num_records_in_per_second"),
    ("records-in-negative", lambda d: _set(d, ("vertices", 0, "metrics", "num_records_in_per_second"), -1),
     "num_records_in_per_second"),
    ("records-in-huge", lambda d: _set(d, ("vertices", 0, "metrics", "num_records_in_per_second"), 1e308),
     "num_records_in_per_second"),
    ("pending-object", lambda d: _set(d, ("vertices", 0, "metrics", "pending_records"), {"a": 1}),
     "pending_records"),
    ("subtasks-number", lambda d: _set(d, ("vertices", 0, "metrics", "subtasks"), 3), "subtasks"),
    ("subtask-string", lambda d: _set(d, ("vertices", 0, "metrics", "subtasks"), ["x"]), "subtasks[0]"),
    ("unknown-metric", lambda d: _set(d, ("vertices", 0, "metrics", "bogus"), 1), "bogus"),
    ("edges-number", lambda d: _set(d, ("edges",), 3), "edges"),
    ("edge-string", lambda d: _set(d, ("edges",), ["a->b"]), "edges[0]"),
    ("edge-unknown-vertex", lambda d: _set(d, ("edges",), [{"source": "x", "target": "y"}]), "edges[0]"),
    ("edge-source-number", lambda d: _set(d, ("edges",), [{"source": 1, "target": 2}]), "edges[0]"),
    ("cluster-string", lambda d: _set(d, ("cluster",), "big"), "cluster"),
    ("cluster-slots-string", lambda d: _set(d, ("cluster",), {
        "task_managers": 1, "slots_total": "2", "slots_available": 0, "slots_per_task_manager": 2}),
     "cluster.slots_total"),
    ("checkpoints-list", lambda d: _set(d, ("checkpoints",), [1]), "checkpoints"),
    ("notes-number", lambda d: _set(d, ("notes",), 5), "notes"),
    ("schema-version", lambda d: _set(d, ("schema_version",), 99), "schema_version"),
    ("schema-version-string", lambda d: _set(d, ("schema_version",), "1"), "schema_version"),
    ("missing-vertices", lambda d: {k: v for k, v in d.items() if k != "vertices"}, "vertices"),
    ("missing-timestamp", lambda d: {k: v for k, v in d.items() if k != "timestamp"}, "timestamp"),
    ("duplicate-vertex", lambda d: _set(d, ("vertices",), [d["vertices"][0], d["vertices"][0]]), "vertices"),
    ("job-state-number", lambda d: _set(d, ("job_state",), 3), "job_state"),
]


def _spec_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    return data


# Workload spec mutations written as YAML text fragments into a copy of the example spec.
SPEC_MUTATIONS: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("peak-inf", ("volume", "peak_factor"), float("inf"), "volume.peak_factor"),
    ("peak-nan", ("volume", "peak_factor"), float("nan"), "volume.peak_factor"),
    ("peak-huge", ("volume", "peak_factor"), 1e308, "volume.peak_factor"),
    ("bytes-per-day-1e400", ("volume", "bytes_per_day"), "1e400TB", "volume.bytes_per_day"),
    ("bytes-per-day-1e300", ("volume", "bytes_per_day"), "1e300TB", "volume.bytes_per_day"),
    ("bytes-per-day-list", ("volume", "bytes_per_day"), [1], "volume.bytes_per_day"),
    ("bytes-per-day-bool", ("volume", "bytes_per_day"), True, "volume.bytes_per_day"),
    ("event-size-1e400", ("volume", "event_size"), "1e400kB", "volume.event_size"),
    ("event-size-inf", ("volume", "event_size"), float("inf"), "volume.event_size"),
    ("event-size-nan", ("volume", "event_size"), float("nan"), "volume.event_size"),
    ("event-size-object", ("volume", "event_size"), {"a": 1}, "volume.event_size"),
    ("event-size-tiny", ("volume", "event_size"), "1e-300B", "volume.event_size"),
    ("peak-duration-1e400", ("volume", "peak_duration"), "1e400s", "volume.peak_duration"),
    ("peak-duration-nan", ("volume", "peak_duration"), float("nan"), "volume.peak_duration"),
    ("cost-1e308", ("pipeline", "operators", 1, "cost_us_per_record"), 1e308,
     "pipeline.operators[1].cost_us_per_record"),
    ("cost-inf", ("pipeline", "operators", 1, "cost_us_per_record"), float("inf"),
     "pipeline.operators[1].cost_us_per_record"),
    ("cost-string", ("pipeline", "operators", 1, "cost_us_per_record"), "cheap",
     "pipeline.operators[1].cost_us_per_record"),
    ("selectivity-1e308", ("pipeline", "operators", 1, "selectivity"), 1e308, "pipeline.operators[1].selectivity"),
    ("selectivity-nan", ("pipeline", "operators", 1, "selectivity"), float("nan"),
     "pipeline.operators[1].selectivity"),
    ("selectivity-tiny", ("pipeline", "operators", 1, "selectivity"), 1e-320, "pipeline.operators[1].selectivity"),
    ("output-size-1e400", ("pipeline", "operators", 1, "output_event_size"), "1e400B",
     "pipeline.operators[1].output_event_size"),
    ("operators-number", ("pipeline", "operators"), 5, "pipeline.operators"),
    ("operator-string", ("pipeline", "operators", 1), "parse", "pipeline.operators[1]"),
    ("inputs-number", ("pipeline", "operators", 1, "inputs"), 3, "pipeline.operators[1].inputs"),
    ("inputs-item-number", ("pipeline", "operators", 1, "inputs"), [3], "pipeline.operators[1].inputs[0]"),
    ("id-list", ("pipeline", "operators", 1, "id"), ["a"], "pipeline.operators[1].id"),
    ("keys-inf", ("state", "keys"), float("inf"), "state.keys"),
    ("keys-1e308", ("state", "keys"), 1e308, "state.keys"),
    ("bytes-per-key-1e400", ("state", "bytes_per_key"), "1e400B", "state.bytes_per_key"),
    ("ttl-1e400", ("state", "ttl"), "1e400d", "state.ttl"),
    ("latency-nan", ("targets", "latency"), float("nan"), "targets.latency"),
    ("latency-1e400", ("targets", "latency"), "1e400s", "targets.latency"),
    ("rpo-inf", ("targets", "rpo"), float("inf"), "targets.rpo"),
    ("utilization-nan", ("targets", "utilization"), float("nan"), "targets.utilization"),
    ("growth-1e308", ("targets", "growth_factor"), 1e308, "targets.growth_factor"),
    ("cores-huge", ("cluster", "cores_per_task_manager"), 10**30, "cluster.cores_per_task_manager"),
    ("max-tms-huge", ("cluster", "max_task_managers"), 10**30, "cluster.max_task_managers"),
    ("nic-1e400", ("cluster", "nic_bandwidth"), "1e400GB/s", "cluster.nic_bandwidth"),
    ("memory-1e400", ("cluster", "memory_per_task_manager"), "1e400g", "cluster.memory_per_task_manager"),
    ("memory-huge", ("cluster", "memory_per_task_manager"), "1e30g", "cluster.memory_per_task_manager"),
    ("partition-throughput-1e400", ("pipeline", "operators", 0, "connector", "partition_throughput"),
     "1e400MB/s", "pipeline.operators[0].connector.partition_throughput"),
    ("partitions-huge", ("pipeline", "operators", 0, "connector", "partitions"), 10**30,
     "pipeline.operators[0].connector.partitions"),
    ("connector-string", ("pipeline", "operators", 0, "connector"), "kafka", "pipeline.operators[0].connector"),
    ("bytes-per-day-int-beyond-float", ("volume", "bytes_per_day"), 10**400, "volume.bytes_per_day"),
    ("cost-int-beyond-float", ("pipeline", "operators", 1, "cost_us_per_record"), 10**400,
     "pipeline.operators[1].cost_us_per_record"),
    ("uid-of-an-earlier-operator", ("pipeline", "operators", 1, "uid"), "clicks", "pipeline.operators[1].uid"),
    ("image-with-a-line-break", ("deployment",), {"image": "flink:2.3\nkind: Secret"}, "deployment.image"),
    ("image-with-a-space", ("deployment",), {"image": "flink 2.3"}, "deployment.image"),
    ("volume-list", ("volume",), [1, 2], "volume"),
    ("name-object", ("name",), {"a": 1}, "name"),
    ("checkpoint-dir-empty", ("storage",), {"checkpoint_dir": ""}, "storage.checkpoint_dir"),
    ("savepoint-dir-newline", ("storage",), {"savepoint_dir": "s3://b/x\nstate.backend: nope"},
     "storage.savepoint_dir"),
]


def _scenario_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SCENARIO.read_text())
    return data


DIURNAL = {"type": "diurnal", "average": "2k/s", "peak_factor": 1.5}

SCENARIO_MUTATIONS: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("diurnal-peak-nan", ("trace",), {**DIURNAL, "peak_factor": float("nan")}, "trace.peak_factor"),
    ("diurnal-peak-inf", ("trace",), {**DIURNAL, "peak_factor": float("inf")}, "trace.peak_factor"),
    ("diurnal-period-0", ("trace",), {**DIURNAL, "period": 0}, "trace.period"),
    ("diurnal-period-0s", ("trace",), {**DIURNAL, "period": "0s"}, "trace.period"),
    ("diurnal-sharpness-nan", ("trace",), {**DIURNAL, "sharpness": float("nan")}, "trace.sharpness"),
    ("diurnal-sharpness-huge", ("trace",), {**DIURNAL, "sharpness": 1e308}, "trace.sharpness"),
    ("diurnal-sharpness-negative", ("trace",), {**DIURNAL, "sharpness": -3}, "trace.sharpness"),
    ("noise-nan", ("trace", "noise"), float("nan"), "trace.noise"),
    ("noise-inf", ("trace", "noise"), float("inf"), "trace.noise"),
    ("noise-negative", ("trace", "noise"), -0.5, "trace.noise"),
    ("seed-negative", ("trace", "seed"), -1, "trace.seed"),
    ("seed-huge", ("trace", "seed"), 2**80, "trace.seed"),
    ("seed-string", ("trace", "seed"), "abc", "trace.seed"),
    ("step-before-1e400", ("trace", "before"), "1e400/s", "trace.before"),
    ("step-at-nan", ("trace", "at"), float("nan"), "trace.at"),
    ("step-at-1e400", ("trace", "at"), "1e400s", "trace.at"),
    ("spikes-factor-nan", ("trace",), {"type": "spikes", "base": "1k/s", "factor": float("nan"),
                                      "duration": "1m", "every": "10m"}, "trace.factor"),
    ("spikes-every-0", ("trace",), {"type": "spikes", "base": "1k/s", "factor": 2, "duration": "1m",
                                   "every": 0}, "trace.every"),
    ("ramp-over-inf", ("trace",), {"type": "ramp", "from": "1k/s", "to": "2k/s", "over": float("inf")}, "trace.over"),
    ("trace-list", ("trace",), [1, 2], "trace"),
    ("trace-type-number", ("trace", "type"), 5, "trace.type"),
    ("duration-1e400", ("duration",), "1e400s", "duration"),
    ("duration-0", ("duration",), 0, "duration"),
    ("duration-huge", ("duration",), "1e9d", "duration"),
    ("step-0", ("step",), 0, "step"),
    ("step-nan", ("step",), float("nan"), "step"),
    ("step-tiny", ("step",), "1e-9s", "step"),
    ("decision-interval-0", ("decision_interval",), 0, "decision_interval"),
    ("latency-target-nan", ("latency_target",), float("nan"), "latency_target"),
    ("vertices-number", ("pipeline", "vertices"), 5, "pipeline.vertices"),
    ("vertex-string", ("pipeline", "vertices", 0), "source", "pipeline.vertices[0]"),
    ("vertex-capacity-nan", ("pipeline", "vertices", 1, "capacity"), float("nan"), "pipeline.vertices[1].capacity"),
    ("vertex-capacity-1e400", ("pipeline", "vertices", 1, "capacity"), "1e400/s", "pipeline.vertices[1].capacity"),
    ("vertex-capacity-0", ("pipeline", "vertices", 1, "capacity"), 0, "pipeline.vertices[1].capacity"),
    ("vertex-parallelism-0", ("pipeline", "vertices", 1, "parallelism"), 0, "pipeline.vertices[1].parallelism"),
    ("vertex-parallelism-huge", ("pipeline", "vertices", 1, "parallelism"), 10**12,
     "pipeline.vertices[1].parallelism"),
    ("vertex-parallelism-string", ("pipeline", "vertices", 1, "parallelism"), "6",
     "pipeline.vertices[1].parallelism"),
    ("vertex-state-1e400", ("pipeline", "vertices", 2, "state"), "1e400GB", "pipeline.vertices[2].state"),
    ("vertex-id-list", ("pipeline", "vertices", 1, "id"), ["a"], "pipeline.vertices[1].id"),
    ("edge-selectivity-nan", ("pipeline", "edges", 0, "selectivity"), float("nan"), "pipeline.edges[0].selectivity"),
    ("edge-selectivity-1e308", ("pipeline", "edges", 0, "selectivity"), 1e308, "pipeline.edges[0].selectivity"),
    ("edge-selectivity-negative", ("pipeline", "edges", 0, "selectivity"), -1, "pipeline.edges[0].selectivity"),
    ("edge-to-unknown", ("pipeline", "edges", 0, "to"), "nowhere", "pipeline.edges[0]"),
    ("edges-number", ("pipeline", "edges"), 5, "pipeline.edges"),
    ("keys-count-negative", ("pipeline", "edges", 1, "keys"), {"distribution": "zipf", "count": -5},
     "pipeline.edges[1].keys"),
    ("keys-exponent-nan", ("pipeline", "edges", 1, "keys"), {"distribution": "zipf", "count": 100,
                                                            "exponent": float("nan")}, "pipeline.edges[1].keys"),
    ("keys-count-huge", ("pipeline", "edges", 1, "keys"), {"distribution": "zipf", "count": 10**15},
     "pipeline.edges[1].keys"),
    ("max-slots-0", ("cluster", "max_slots"), 0, "cluster.max_slots"),
    ("max-slots-negative", ("cluster", "max_slots"), -4, "cluster.max_slots"),
    ("slots-per-tm-0", ("cluster", "slots_per_task_manager"), 0, "cluster.slots_per_task_manager"),
    ("restart-nan", ("rescale", "restart_time"), float("nan"), "rescale.restart_time"),
    ("restore-bandwidth-1e400", ("rescale", "restore_bandwidth"), "1e400MB/s", "rescale.restore_bandwidth"),
    ("restore-bandwidth-0", ("rescale", "restore_bandwidth"), "0MB/s", "rescale.restore_bandwidth"),
    ("checkpoint-interval-0", ("checkpoints",), {"interval": 0}, "checkpoints.interval"),
    ("event-bytes-1e400", ("event_bytes",), "1e400B", "event_bytes"),
    ("event-bytes-nan", ("event_bytes",), float("nan"), "event_bytes"),
    ("policies-number", ("policies",), 5, "policies"),
    ("peak-utilization-nan", ("peak_provisioning",), {"utilization": float("nan")}, "peak_provisioning.utilization"),
    ("name-object", ("name",), {"a": 1}, "name"),
    ("peak-policy-unknown", ("peak_provisioning",), {"policies": ["nobody"]}, "peak_provisioning.policies"),
    ("peak-policy-mapping", ("peak_provisioning",), {"policies": [{"static": 1}]}, "peak_provisioning.policies"),
    ("source-declared-false", ("pipeline", "vertices", 0, "source"), False, "pipeline.vertices[0].source"),
    ("history-200d", ("history",), "200d", "history"),
    ("metrics-window-longer-than-run", ("metrics_window",), "30d", "metrics_window"),
]

CSV_BAD: list[tuple[str, bytes, str]] = [
    ("csv-not-utf8", b"0,100\n1,\xff\n", "trace.csv"),
    ("csv-empty", b"", "trace.csv"),
    ("csv-header-only", b"seconds,rate\n", "trace.csv"),
    ("csv-one-column", b"0\n1\n", "trace.csv"),
    ("csv-words", b"0,100\n1,lots\n", "trace.csv"),
    ("csv-nan-rate", b"0,100\n1,nan\n", "trace.csv"),
    ("csv-inf-rate", b"0,100\n1,inf\n", "trace.csv"),
    ("csv-1e400-rate", b"0,100\n1,1e400\n", "trace.csv"),
    ("csv-nan-time", b"0,100\nnan,5\n", "trace.csv"),
    ("csv-inf-time", b"0,100\ninf,5\n", "trace.csv"),
    ("csv-negative-rate", b"0,100\n1,-5\n", "trace.csv"),
    ("csv-decreasing", b"0,100\n5,10\n3,10\n", "trace.csv"),
    ("csv-null-byte", b"0,100\n1,\x0050\n", "trace.csv"),
    ("csv-huge-span", b"0,100\n1e300,5\n", "trace.csv"),
]

LINT_BAD: list[tuple[str, bytes]] = [
    ("lint-not-utf8", b"x = '\xff'\n"),
    ("lint-syntax", b"def f(:\n"),
    ("lint-null-byte", b"x = 1\x00\n"),
    ("lint-deep-parens", b"x = " + b"(" * 50000 + b"1" + b")" * 50000 + b"\n"),
    ("lint-deep-binop", b"x = " + b"1 + " * 100000 + b"1\n"),
    ("lint-deep-lists", b"x = " + b"[" * 3000 + b"]" * 3000 + b"\n"),
    ("lint-deep-unary", b"x = " + b"-" * 100000 + b"1\n"),
    ("lint-deep-attr", b"x = a" + b".b" * 100000 + b"\n"),
    ("lint-deep-calls", b"x = f" + b"()" * 100000 + b"\n"),
    ("lint-deep-if", b"".join(b"    " * i + b"if x:\n" for i in range(120)) + b"    " * 120 + b"pass\n"),
]


def _write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _file_inputs(tmp: Path) -> list[tuple[str, str, Callable[[Path], tuple[str, ...]], bool]]:
    """(kind, extension, argv for a file, is_json): every command argument that is a file."""
    good_snapshot = _write(tmp / "good" / "snapshot.json", SNAPSHOT.read_text())
    state = tmp / "state"
    return [
        ("spec", "yaml", lambda p: ("plan", str(p)), False),
        ("profile", "json", lambda p: ("plan", "--from-profile", str(p), "--target", "1TB/day"), True),
        ("spec-with-profile", "yaml", lambda p: ("plan", str(p), "--from-profile", str(good_snapshot),
                                                 "--target", "1TB/day"), False),
        ("snapshot", "json", lambda p: ("decide", "--snapshot", str(p)), True),
        ("history", "jsonl", lambda p: ("decide", "--snapshot", str(good_snapshot), "--history", str(p)), True),
        ("scenario", "yaml", lambda p: ("simulate", str(p), "--no-progress"), False),
        ("load-profile", "yaml", lambda p: ("load", "--topic", "t", "--profile", str(p), "-d", "10s",
                                            "--bootstrap", NO_BROKER), False),
        ("cluster-config", "yaml", lambda p: ("cluster", "up", "--config", str(p), "--state-dir", str(state),
                                              "--rest-port", "0"), False),
        ("autoscale-config", "yaml", lambda p: ("autoscale", "--all-jobs", "--config", str(p), "--rest",
                                                "http://127.0.0.1:9", "--state", f"sqlite:///{tmp}/store.db"), False),
    ]


# (file input, bad-file label) pairs that are valid for that input.
_VALID_AS = {("history", "empty"), ("autoscale-config", "empty"), ("autoscale-config", "comment-only")}


def _selectivity_chain(operators: int, selectivity: float) -> dict[str, Any]:
    """A spec whose operators each multiply the rate by ``selectivity``: each is in range, together they
    overflow a float."""
    ops: list[dict[str, Any]] = [{"id": "o0", "role": "source", "cost_us_per_record": 1}]
    ops += [{"id": f"o{i}", "inputs": [f"o{i - 1}"], "cost_us_per_record": 1, "selectivity": selectivity}
            for i in range(1, operators)]
    return {"name": "chain", "volume": {"bytes_per_day": "1TB", "event_size": "1kB"}, "pipeline": {"operators": ops}}


def build_corpus(tmp: Path) -> list[Case]:
    cases: list[Case] = []
    files = tmp / "files"

    # 1. Whole-file classes for every file input, plus a missing file and a directory.
    for kind, ext, argv_for, is_json in _file_inputs(tmp):
        bad = JSON_BAD_FILES if is_json else YAML_BAD_FILES
        for label, content in bad:
            if (kind, label) in _VALID_AS:
                continue  # e.g. an empty history is a valid one: no earlier snapshots
            path = _write(files / kind / f"{label}.{ext}", content)
            cases.append(Case(f"{kind}:{label}", argv_for(path), (str(path),), kind=f"file/{label}"))
        missing = files / kind / f"missing.{ext}"
        cases.append(Case(f"{kind}:missing", argv_for(missing), (str(missing),), kind="file/missing"))
        directory = files / kind / "a-directory"
        directory.mkdir(parents=True, exist_ok=True)
        cases.append(Case(f"{kind}:directory", argv_for(directory), (str(directory),), kind="file/directory"))

    # 2. Workload spec fields.
    base_spec = _spec_data()
    for label, path_keys, value, field_name in SPEC_MUTATIONS:
        spec_file = _write(files / "spec-fields" / f"{label}.yaml", _yaml(_set(base_spec, path_keys, value)))
        cases.append(Case(f"spec-field:{label}", ("plan", str(spec_file)), (field_name,), kind="spec-field"))

    chain = _write(files / "spec-fields" / "selectivity-product-overflow.yaml", _yaml(_selectivity_chain(60, 1e6)))
    cases.append(Case("spec-field:selectivity-product-overflow", ("plan", str(chain)), ("selectivity",),
                      kind="spec-field"))
    cases.append(Case("simulate-workload:selectivity-product-overflow", ("simulate", "--workload", str(chain),
                                                                        "--no-progress"), ("selectivity",),
                      kind="spec-field"))

    twice = _set(_set(base_spec, ("pipeline", "operators", 1, "vertex_id"), "a" * 32),
                 ("pipeline", "operators", 2, "vertex_id"), "A" * 32)
    spec_file = _write(files / "spec-fields" / "vertex-id-twice.yaml", _yaml(twice))
    cases.append(Case("spec-field:vertex-id-twice", ("plan", str(spec_file)), ("pipeline.operators[2].vertex_id",),
                      kind="spec-field"))

    # 3. Snapshot fields, through decide --snapshot, plan --from-profile and decide --history.
    base_snapshot = _snapshot_data()
    for label, mutate, field_name in SNAPSHOT_MUTATIONS:
        body = json.dumps(mutate(base_snapshot))
        snap = _write(files / "snapshot-fields" / f"{label}.json", body)
        cases.append(Case(f"snapshot-field:{label}", ("decide", "--snapshot", str(snap)), (field_name,),
                          kind="snapshot-field"))
        cases.append(Case(f"profile-field:{label}", ("plan", "--from-profile", str(snap), "--target", "1TB/day"),
                          (field_name,), kind="profile-field"))
        line = body.replace("\n", " ")
        history = _write(files / "history-fields" / f"{label}.jsonl", line + "\n")
        cases.append(Case(f"history-field:{label}", ("decide", "--snapshot", str(SNAPSHOT), "--history",
                                                     str(history)), (f"{history}:1",), kind="history-field"))
    rescale_bad = [
        ("rescale-string-time", {"requested_at": "noon", "completed_at": 5, "old_parallelism": {}}),
        ("rescale-nan-time", {"requested_at": float("nan"), "completed_at": 5}),
        ("rescale-parallelism-list", {"requested_at": 1, "completed_at": 5, "old_parallelism": [1]}),
        ("rescale-parallelism-string", {"requested_at": 1, "completed_at": 5, "new_parallelism": {"a": "x"}}),
        ("rescale-parallelism-float", {"requested_at": 1, "completed_at": 5, "new_parallelism": {"a": 1.5}}),
        ("rescale-missing-completed", {"requested_at": 1}),
        ("history-line-number", 5),
        ("history-line-list", [1, 2]),
    ]
    for label, record in rescale_bad:
        history = _write(files / "history-records" / f"{label}.jsonl", json.dumps(record) + "\n")
        cases.append(Case(f"history:{label}", ("decide", "--snapshot", str(SNAPSHOT), "--history", str(history)),
                          (f"{history}:1",), kind="history-field"))

    # 4. Scenario fields.
    base_scenario = _scenario_data()
    for label, path_keys, value, field_name in SCENARIO_MUTATIONS:
        data = _set(base_scenario, path_keys, value)
        scenario_file = _write(files / "scenario-fields" / f"{label}.yaml", _yaml(data))
        cases.append(Case(f"scenario-field:{label}", ("simulate", str(scenario_file), "--no-progress"), (field_name,),
                          kind="scenario-field"))
        if path_keys[0] == "trace":
            trace_file = _write(files / "load-trace-fields" / f"{label}.yaml", _yaml({"trace": data["trace"]}))
            cases.append(Case(f"load-trace-field:{label}", ("load", "--topic", "t", "--profile", str(trace_file),
                                                            "-d", "10s", "--bootstrap", NO_BROKER),
                              (field_name,), kind="load-trace-field"))

    zero = _write(files / "load-trace-fields" / "event-bytes-0.yaml",
                  _yaml({"event_bytes": 0, "trace": {"type": "constant", "rate": "1TB/day"}}))
    cases.append(Case("load-trace-field:event-bytes-0", ("load", "--topic", "t", "--profile", str(zero), "-d", "10s",
                                                         "--bootstrap", NO_BROKER), ("event_bytes",),
                      kind="load-trace-field"))

    # 5. Replay CSV, through simulate and load --profile.
    for label, content, field_name in CSV_BAD:
        csv_file = _write(files / "csv" / f"{label}.csv", content)
        trace = {"type": "replay", "csv": csv_file.name}
        scenario_file = _write(files / "csv" / f"{label}.yaml", _yaml({**base_scenario, "trace": trace}))
        cases.append(Case(f"simulate-{label}", ("simulate", str(scenario_file), "--no-progress"),
                          (field_name, str(csv_file)), kind="csv"))
        trace_file = _write(files / "csv" / f"{label}-trace.yaml", _yaml(trace))
        cases.append(Case(f"load-{label}", ("load", "--topic", "t", "--profile", str(trace_file), "-d", "10s",
                                            "--bootstrap", NO_BROKER), (field_name, str(csv_file)), kind="csv"))
    missing_csv = _write(files / "csv" / "missing-csv.yaml", _yaml({**base_scenario, "trace": {
        "type": "replay", "csv": "nowhere.csv"}}))
    cases.append(Case("simulate-csv-missing", ("simulate", str(missing_csv), "--no-progress"), ("trace.csv",),
                      kind="csv"))
    dir_csv = _write(files / "csv" / "dir-csv.yaml", _yaml({**base_scenario, "trace": {"type": "replay", "csv": "."}}))
    cases.append(Case("simulate-csv-directory", ("simulate", str(dir_csv), "--no-progress"), ("trace.csv",),
                      kind="csv"))

    # 6. lint inputs.
    for label, content in LINT_BAD:
        py = _write(files / "lint" / f"{label}.py", content)
        cases.append(Case(label, ("lint", str(py)), (str(py),), kind="lint"))
    lint_dir = files / "lint" / "pkg"
    lint_dir.mkdir(parents=True, exist_ok=True)
    cases.append(Case("lint-directory", ("lint", str(lint_dir)), (str(lint_dir),), kind="lint"))
    cases.append(Case("lint-missing", ("lint", str(files / "lint" / "nope.py")), (str(files / "lint" / "nope.py"),),
                      kind="lint"))

    cases.extend(_flag_cases(tmp))
    cases.extend(_output_cases(tmp))
    return cases


def _flag_cases(tmp: Path) -> list[Case]:
    state = str(tmp / "state")
    spec, snapshot, scenario = str(SPEC), str(SNAPSHOT), str(SCENARIO)
    load = ("load", "--topic", "t", "--bootstrap", NO_BROKER, "--state-dir", state)
    cases: list[Case] = []

    def add(label: str, argv: tuple[str, ...], *names: str) -> None:
        cases.append(Case(f"flag:{label}", argv, names, kind="flag"))

    for target in ("1e400/s", "1e400TB/day", "inf/s", "nan/s", "-5/s", "0/s", "abc", "1e300/s", "5k/fortnight",
                   "1TB/0"):
        add(f"plan-target-{target}", ("plan", "--from-profile", snapshot, "--target", target), "--target")
    for duration in ("1e400s", "100000d", "1e9d", "inf", "nan", "-5s", "0.5s", "abc", "1e308"):
        add(f"load-duration-{duration}", (*load, "--rate", "1k/s", "-d", duration), "--duration")
    for rate in ("1e400/s", "nan/s", "inf/s", "-1/s", "1TB/s", "x"):
        add(f"load-rate-{rate}", (*load, "--rate", rate, "-d", "10s"), "--rate")
    for zipf in ("nan", "inf", "-1", "1e400"):
        add(f"load-zipf-{zipf}", (*load, "--rate", "1k/s", "-d", "10s", "--zipf", zipf), "--zipf")
    for users in ("0", "-5", "abc", "1e3"):
        add(f"load-users-{users}", (*load, "--rate", "1k/s", "-d", "10s", "--users", users), "--users")
    add("load-seed-negative", (*load, "--rate", "1k/s", "-d", "10s", "--seed", "-1"), "--seed")
    add("load-seed-huge", (*load, "--rate", "1k/s", "-d", "10s", "--seed", str(2**80)), "--seed")
    add("load-first-id-huge", (*load, "--rate", "1k/s", "-d", "10s", "--first-id", str(2**70)), "--first-id")
    add("load-format", (*load, "--rate", "1k/s", "-d", "10s", "--format", "xml"), "--format")
    add("dashboard-host-empty", ("dashboard", str(tmp), "--port", "0", "--host", ""), "--host")
    sql = ("job", "submit", "clickstream-sql", "--print-sql")
    add("job-submit-cost-rounds-negative", (*sql, "--cost-rounds", "-1"), "--cost-rounds")
    add("job-submit-cost-rounds-huge", (*sql, "--cost-rounds", "999999999999"), "--cost-rounds")
    add("job-submit-topic-empty", (*sql, "--topic", ""), "--topic")
    add("job-submit-topic-newline", (*sql, "--topic", "clicks\nx"), "--topic")
    add("job-submit-agg-topic-slash", (*sql, "--agg-topic", "a/b"), "--agg-topic")
    add("job-submit-agg-dir-newline", (*sql, "--agg-dir", "file:///tmp/a\nb"), "--agg-dir")
    add("job-submit-events-dir-no-scheme", (*sql, "--events-dir", "/not/a/url"), "--events-dir")
    for name in ("", ".", "..", "bad topic", "bad/topic", "t" * 250):
        add(f"kafka-create-topic-{name[:12]!r}", ("kafka", "create", name, "--bootstrap", NO_BROKER), "TOPIC")
        add(f"shed-set-topic-{name[:12]!r}", ("shed", "set", "--topic", name, "--keep", "0.5", "--bootstrap",
                                              NO_BROKER), "--topic")
    # --format is checked before anything is published, listed or sent (shed set once published, then ignored it)
    kafka, rest = ("--bootstrap", NO_BROKER, "--state-dir", state), ("--rest", "http://127.0.0.1:9")
    for label, argv in (("shed-set", ("shed", "set", "--topic", "c", "--keep", "0.5", *kafka)),
                        ("shed-show", ("shed", "show", "--topic", "c", *kafka)),
                        ("kafka-topics", ("kafka", "topics", *kafka)),
                        ("job-list", ("job", "list", *rest)),
                        ("cluster-status", ("cluster", "status", *rest)),
                        ("shed-auto", ("shed", "auto", "--job", "a" * 32, "--control-topic", "c", *kafka, *rest))):
        add(f"{label}-format", (*argv, "--format", "xml"), "--format")
    for window in ("1e400s", "inf", "nan", "0s", "-1s", "100000d", "abc"):
        add(f"profile-window-{window}", ("profile", "--window", window, "--state-dir", state), "--window")
    for interval in ("1e400s", "nan", "0s"):
        add(f"profile-interval-{interval}", ("profile", "--interval", interval, "--state-dir", state), "--interval")
    for threshold in ("nan", "inf", "0.5", "-inf"):
        add(f"skew-threshold-{threshold}", ("skew", "--threshold", threshold, "--state-dir", state), "--threshold")
    for port in ("70000", "-1", "65536", "99999999999"):
        add(f"kafka-port-{port}", ("kafka", "up", "--port", port, "--state-dir", state), "--port")
        add(f"dashboard-port-{port}", ("dashboard", str(tmp), "--port", port), "--port")
        add(f"autoscale-dashboard-port-{port}", ("autoscale", "--job", "a" * 32, "--dashboard", "--run-dir",
                                                  str(tmp / "run"), "--dashboard-port", port, "--state-dir", state),
            "--dashboard-port")
        add(f"autoscale-metrics-port-{port}", ("autoscale", "--job", "a" * 32, "--metrics-port", port,
                                                "--state-dir", state), "--metrics-port")
        add(f"cluster-rest-port-{port}", ("cluster", "up", "--rest-port", port, "--state-dir", state),
            "--rest-port")
    for value in ("[1, 2", "{a: ", "a: b: c", "*alias", "!!python/name:os.system", "'unclosed"):
        add(f"simulate-set-yaml-{value}", ("simulate", scenario, "--no-progress", "--set",
                                           f"scenario.trace.before={value}"), "--set", "trace.before")
    for value in ("nan", "inf", "1e400/s", ".nan", ".inf"):
        add(f"simulate-set-value-{value}", ("simulate", scenario, "--no-progress", "--set",
                                            f"scenario.trace.after={value}"), "trace.after", "--set")
    add("simulate-set-duration-huge", ("simulate", scenario, "--no-progress", "--set", "scenario.duration=1e9d"),
        "duration")
    add("simulate-set-step-tiny", ("simulate", scenario, "--no-progress", "--set", "scenario.step=1ms"), "step")
    add("simulate-set-unknown-name", ("simulate", scenario, "--no-progress", "--set", "nobody.x=1"), "--set")
    add("simulate-set-index", ("simulate", scenario, "--no-progress", "--set",
                               "scenario.pipeline.vertices.99.capacity=1"), "pipeline.vertices.99")
    add("simulate-set-inside-value", ("simulate", scenario, "--no-progress", "--set", "scenario.name.x.y=1"),
        "name")
    add("simulate-policies-unknown", ("simulate", scenario, "--no-progress", "-p", "nobody"), "nobody")
    add("simulate-format", ("simulate", scenario, "--no-progress", "--format", "xml"), "--format")
    add("simulate-policy-setting-nan", ("simulate", scenario, "--no-progress", "-p", "flink-operator", "--set",
                                        "flink-operator.job.autoscaler.utilization.target=nan"),
        "job.autoscaler.utilization.target")
    add("decide-set-nan", ("decide", "--snapshot", snapshot, "--policy", "flink-operator", "--set",
                           "job.autoscaler.utilization.target=nan"), "job.autoscaler.utilization.target")
    add("decide-set-inf-window", ("decide", "--snapshot", snapshot, "--policy", "flink-operator", "--set",
                                  "job.autoscaler.metrics.window=1e400s"), "job.autoscaler.metrics.window")
    add("decide-set-no-equals", ("decide", "--snapshot", snapshot, "--set", "oops"), "--set")
    add("decide-set-unknown", ("decide", "--snapshot", snapshot, "--set", "nope=1"), "nope")
    add("decide-cpu-threshold-min-above-max", ("decide", "--snapshot", snapshot, "--policy", "cpu-threshold",
                                               "--set", "parallelism.min=8", "--set", "parallelism.max=2"),
        "parallelism.min")
    add("decide-policy-unknown", ("decide", "--snapshot", snapshot, "--policy", "nobody"), "--policy", "nobody")
    add("decide-format", ("decide", "--snapshot", snapshot, "--format", "xml"), "--format")
    add("plan-format", ("plan", spec, "--format", "xml"), "--format")
    add("plan-target-without-profile", ("plan", spec, "--target", "1TB/day"), "--target")
    add("plan-nothing", ("plan",), "SPEC")
    add("lint-partitions-0", ("lint", spec, "--partitions", "0"), "--partitions")
    add("lint-format", ("lint", spec, "--format", "xml"), "--format")
    for keep in ("nan", "inf", "0", "-1", "2", "abc", "nan%"):
        add(f"shed-set-keep-{keep}", ("shed", "set", "--topic", "c", "--keep", keep, "--bootstrap", NO_BROKER),
            "--keep")
    shed_auto = ("shed", "auto", "--job", "a" * 32, "--control-topic", "c", "--bootstrap", NO_BROKER,
                 "--rest", "http://127.0.0.1:9")
    for flag, value in (("--target-error", "nan"), ("--target-error", "nan%"), ("--confidence", "inf"),
                        ("--confidence", "100%"), ("--window-seconds", "nan"), ("--window-seconds", "0"),
                        ("--interval", "nan"), ("--interval", "inf"), ("--headroom", "nan"), ("--headroom", "5"),
                        ("--value-cv", "nan"), ("--value-cv", "-1"), ("--records-per-group", "nan"),
                        ("--records-per-group", "0"), ("--sustainable-rate", "nan"), ("--duration", "nan"),
                        ("--duration", "-5")):
        add(f"shed-auto{flag}-{value}", (*shed_auto, flag, value), flag)
    autoscale = ("autoscale", "--job", "a" * 32, "--state-dir", state)
    for flag, value in (("--interval", "1e400s"), ("--interval", "nan"), ("--duration", "1e400s"),
                        ("--max-task-managers", "0"), ("--shed-value-cv", "nan"), ("--shed-target-error", "nan"),
                        ("--set", "job.autoscaler.utilization.target=nan")):
        add(f"autoscale{flag}-{value}", (*autoscale, flag, value), flag, value.partition("=")[0])
    add("cluster-tms-0", ("cluster", "up", "--task-managers", "0", "--state-dir", state), "--task-managers")
    add("cluster-slots-0", ("cluster", "up", "--slots", "0", "--state-dir", state), "--slots")
    add("cluster-set-no-equals", ("cluster", "up", "--set", "oops", "--state-dir", state), "--set")
    add("cluster-set-line-break", ("cluster", "up", "--set", "a=b\nrest.address: 0.0.0.0", "--state-dir", state),
        "--set")
    # Values Flink cannot start with fail before anything is started (they reached the JVM, or a script's error)
    for label, args, field in (
            ("set-tm-memory-lots", ("--set", "taskmanager.memory.process.size=lots"),
             "taskmanager.memory.process.size"),
            ("tm-memory-1k", ("--tm-memory", "1k"), "taskmanager.memory.process.size"),
            ("jm-memory-0", ("--jm-memory", "0"), "jobmanager.memory.process.size"),
            ("set-slots-abc", ("--set", "taskmanager.numberOfTaskSlots=abc"), "taskmanager.numberOfTaskSlots"),
            ("set-rest-port-99999", ("--set", "rest.port=99999"), "rest.port"),
            ("set-parallelism-negative", ("--set", "parallelism.default=-3"), "parallelism.default")):
        add(f"cluster-{label}", ("cluster", "up", *args, "--state-dir", state), field)
    add("job-submit-parallelism-0", ("job", "submit", "clickstream", "--parallelism", "0", "--state-dir", state),
        "--parallelism")
    add("job-submit-cost-nan", ("job", "submit", "clickstream", "--cost-us", "nan", "--state-dir", state),
        "--cost-us")
    add("job-submit-cost-kind", ("job", "submit", "keyed-java", "--cost-kind", "burn", "--events-dir", "file:///o",
                                 "--state-dir", state), "--cost-kind")
    add("job-submit-window-0", ("job", "submit", "clickstream", "--window-seconds", "0", "--state-dir", state),
        "--window-seconds")
    add("kafka-create-partitions-0", ("kafka", "create", "t", "--partitions", "0", "--bootstrap", NO_BROKER),
        "--partitions")
    for bootstrap in ("127.0.0.1:\u00b2", "127.0.0.1:\u0669", "u:pw@127.0.0.1:9"):  # superscript 2, Arabic 9
        add(f"bootstrap-{bootstrap}", ("kafka", "topics", "--bootstrap", bootstrap), "--bootstrap")
        add(f"shed-bootstrap-{bootstrap}", ("shed", "show", "--topic", "c", "--bootstrap", bootstrap), "--bootstrap")
    for header in ("X-Key: caf\u2603", "K\u00e9y: v"):
        add(f"rest-header-{header}", ("job", "list", "--rest", "http://127.0.0.1:9", "--rest-header", header),
            "--rest-header")
    snapshot_only = ("decide", "--snapshot", snapshot, "--set")
    for setting, value in (("plan.block", "1e-9s"), ("forecast.horizon", "1e9d"),
                           ("vertex.max-parallelism", "999999999999")):
        add(f"decide-set-{setting}-{value}", (*snapshot_only, f"{setting}={value}"), setting)
    add("decide-set-min-above-max", (*snapshot_only, "vertex.min-parallelism=5", "--set",
                                     "vertex.max-parallelism=3"), "vertex.min-parallelism")
    for policies in (",", " , ", ""):
        add(f"simulate-policies-{policies!r}", ("simulate", scenario, "--no-progress", "--policies", policies),
            "--policies")
    add("decide-set-max-400-digits", (*snapshot_only, "vertex.max-parallelism=" + "9" * 400), "vertex.max-parallelism")
    add("decide-set-min-400-digits", (*snapshot_only, "vertex.min-parallelism=" + "9" * 400), "vertex.min-parallelism")
    return cases


def _output_cases(tmp: Path) -> list[Case]:
    out = tmp / "outputs"
    a_file = _write(out / "a-file.txt", "x")
    spec, scenario = str(SPEC), str(SCENARIO)
    cases: list[Case] = []
    # /proc refuses new entries even to root (permission bits would not stop a root test run).
    unwritable = Path("/proc/flinkscale-unwritable/sub")
    targets = [("is-a-file", a_file), ("below-a-file", a_file / "sub"), ("unwritable", unwritable),
               ("null-byte", Path(str(out) + "/bad\x00name"))]
    for label, target in targets:
        cases.append(Case(f"output:plan-emit-{label}", ("plan", spec, "--emit", str(target)), ("--emit",),
                          kind="output", exit_codes=(1, 2)))
        html = target if label != "is-a-file" else out
        cases.append(Case(f"output:simulate-html-{label}", ("simulate", scenario, "--no-progress", "--html",
                                                           str(html)), ("--html",), kind="output", exit_codes=(1, 2)))
        cases.append(Case(f"output:profile-output-{label}", ("profile", "--output", str(html), "--state-dir",
                                                             str(tmp / "state")), ("--output",), kind="output",
                          exit_codes=(1, 2)))
        cases.append(Case(f"output:load-manifest-{label}", ("load", "--topic", "t", "--rate", "1k/s", "-d", "10s",
                                                            "--manifest", str(html), "--bootstrap", NO_BROKER),
                          ("--manifest",), kind="output", exit_codes=(1, 2)))
        cases.append(Case(f"output:autoscale-run-dir-{label}", ("autoscale", "--job", "a" * 32, "--run-dir",
                                                                str(target), "--state-dir", str(tmp / "state")),
                          ("--run-dir",), kind="output", exit_codes=(1, 2)))
    return cases
