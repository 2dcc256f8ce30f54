"""Submit a Flink SQL script to a remote cluster through the Table API: ``python sql_runner.py [options] SCRIPT``.

Run as its own process (it starts PyFlink's client JVM, as ``flink run`` would; flinkscale's own process stays
free of a JVM). ``execution.target: remote`` with ``rest.address``/``rest.port`` makes the TableEnvironment
submit to the cluster instead of running a local mini cluster; ``pipeline.jars`` carries the connector and UDF
jars to it (and onto this client's class loader, which needs the connector factories to plan). ``SET 'k' = 'v';``
statements go to the table configuration, every other statement to ``execute_sql``; the last statement that
starts a job (an INSERT or EXECUTE STATEMENT SET) prints ``JobID <id>``, which ``flink.submit`` reads.
``--explain`` prints the job's compiled plan (``COMPILE PLAN``-style JSON of the last INSERT/statement set)
instead of submitting it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

from flinkscale.core.sql_script import split_statements

_SET = re.compile(r"^\s*SET\s+'([^']+)'\s*=\s*'((?:[^']|'')*)'\s*$", re.IGNORECASE | re.DOTALL)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="submit a Flink SQL script through the Table API")
    parser.add_argument("script", type=Path)
    parser.add_argument("--rest-url", required=True)
    parser.add_argument("--jars", default="", help="';'-separated file:// URLs (pipeline.jars)")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--savepoint", default="")
    parser.add_argument("--vertex-parallelism", default="", help="pipeline.jobvertex-parallelism-overrides")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    url = urlparse(args.rest_url)
    base = {"execution.target": "remote", "rest.address": url.hostname or "localhost",
            "rest.port": str(url.port or 8081), "parallelism.default": str(args.parallelism)}
    if args.jars:
        base["pipeline.jars"] = args.jars
    if args.savepoint:
        base["execution.state-recovery.path"] = args.savepoint
    if args.vertex_parallelism:
        base["pipeline.jobvertex-parallelism-overrides"] = args.vertex_parallelism
    config = Configuration()
    for key, value in base.items():
        config.set_string(key, value)
    t_env = TableEnvironment.create(EnvironmentSettings.new_instance().in_streaming_mode()
                                    .with_configuration(config).build())
    table_config = t_env.get_config()
    for key, value in base.items():
        table_config.set(key, value)
    job_id = None
    for statement in split_statements(args.script.read_text()):
        found = _SET.match(statement.text)
        if found:
            table_config.set(found.group(1), found.group(2).replace("''", "'"))
            continue
        result = t_env.execute_sql(statement.text)
        client = result.get_job_client()
        if client is not None:
            job_id = str(client.get_job_id())
    if job_id is None:
        print("the script started no job (no INSERT or EXECUTE STATEMENT SET)", file=sys.stderr)
        return 1
    print(f"JobID {job_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
