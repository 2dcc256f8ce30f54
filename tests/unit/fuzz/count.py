"""Count how the fuzz corpus fares: tracebacks, hangs, multi-line errors, wrong exit codes, unnamed fields.

Run it against any source tree (the one on PYTHONPATH is the one measured):

    PYTHONPATH=src:. python tests/unit/fuzz/count.py [--timeout 20] [--verbose] [--only SUBSTRING]

To measure the code before a change, export that commit's ``src`` somewhere (``git archive COMMIT src | tar -x
-C /tmp/before``) and put ``/tmp/before/src`` first on PYTHONPATH; the corpus itself comes from this checkout.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.unit.fuzz._contract import run_cli, violations
from tests.unit.fuzz.corpus import build_corpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds before a case counts as a hang")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every failing case")
    parser.add_argument("--only", default="", help="run only cases whose id contains this")
    args = parser.parse_args()
    import flinkscale

    print(f"measuring {flinkscale.__file__}")
    with tempfile.TemporaryDirectory() as tmp:
        cases = [c for c in build_corpus(Path(tmp)) if args.only in c.id]
        tally: collections.Counter[str] = collections.Counter()
        by_kind: collections.Counter[str] = collections.Counter()
        slowest = 0.0
        for case in cases:
            outcome = run_cli(case.argv, timeout=args.timeout)
            slowest = max(slowest, outcome.seconds)
            problems = violations(case, outcome)
            for problem in problems:
                label = problem.split(" (")[0] if problem.startswith("exit code") else problem
                label = "wrong exit code" if label.startswith("exit code") else label
                label = "multi-line" if label.endswith("error lines") and not label.startswith("0") else label
                label = "no error line" if label.startswith("0 error") else label
                label = "does not name the field/file/flag" if label.startswith("the error does not") else label
                label = "overlong line" if "character error line" in label else label
                tally[label] += 1
            if problems:
                tally["cases failing"] += 1
                by_kind[case.kind] += 1
                if args.verbose:
                    first = (outcome.escaped or outcome.stderr).strip().splitlines()
                    print(f"  FAIL {case.id}: {'; '.join(problems)} | {first[-1][:200] if first else ''}", flush=True)
    print(f"{len(cases)} cases; slowest {slowest:.1f}s")
    for label in ("cases failing", "traceback", "hang", "multi-line", "no error line", "wrong exit code",
                  "does not name the field/file/flag", "overlong line"):
        print(f"  {label:36s} {tally.get(label, 0)}")
    if by_kind:
        print("failing cases by class: " + ", ".join(f"{k}={v}" for k, v in by_kind.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
