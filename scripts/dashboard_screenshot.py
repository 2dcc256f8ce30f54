"""Screenshot the live dashboard of a finished (or running) autoscale run, e.g. a real `flinkscale demo`.

Serves ``RUN_DIR`` with ``serve_dashboard`` on a free port and has headless Chromium (Debian's package)
render the page, giving its scripts a virtual-time budget to fetch and draw the run, then writes the PNG.
This is how docs/dashboard.png is taken from a real demo run:

    .venv/bin/flinkscale demo --output /tmp/demo-full
    .venv/bin/python scripts/dashboard_screenshot.py /tmp/demo-full/run docs/dashboard.png
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from flinkscale.report.dashboard import serve_dashboard


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--size", default="1400,1200", help="window width,height in pixels")
    parser.add_argument("--budget-ms", type=int, default=15000, help="virtual time the page gets to draw")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 2
    if not (args.run_dir / "snapshots.jsonl").exists():
        print(f"{args.run_dir}: no snapshots.jsonl (not an autoscale run directory)", file=sys.stderr)
        return 2
    with serve_dashboard(args.run_dir) as server, tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={args.size}",
                        f"--virtual-time-budget={args.budget_ms}", f"--screenshot={args.output.resolve()}",
                        server.url], check=True, capture_output=True, timeout=120)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
