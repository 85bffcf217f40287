"""`make bench`: every benchmark, one after the other, printing its figures."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    ["bench.state_backend"],
    ["bench.state_backend", "--backends", "postgres", "--servers", "2"],
    ["bench.queue", "--slots", "4"],
    ["bench.queue", "--slots", "16"],
    ["bench.engine"],
    ["bench.webhooks"],
    ["bench.change_detection"],
    ["bench.pr_latency"],
    ["bench.controlplane", "--tenants", "1000"],
]


def main() -> None:
    for args in BENCHMARKS:
        print(f"$ python -m {' '.join(args)}", flush=True)
        subprocess.run([sys.executable, "-m", *args], check=True)


if __name__ == "__main__":
    main()
