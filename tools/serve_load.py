"""A bounded load run of ``condfip serve`` on 127.0.0.1: N concurrent intervention requests, latency p50/p95.

Starts ``condfip serve`` (default: the Sachs demo data) as a user would, waits for its printed address, sends
``--requests`` POST /api/intervene requests at once from as many threads (each a different hard value of PKC,
``n`` generated rows as the page asks), checks that every one is answered with 200 and prints the latency
percentiles. A measurement, not a test: nothing is asserted beyond "all answered".

    nice -n 15 .venv/bin/python tools/serve_load.py --requests 50
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np


def run_one(url: str, args, k: int, barrier: threading.Barrier) -> tuple[int, float]:
    """POST one intervention request (do(node = 1 + 0.05 k)) once all threads wait at ``barrier``: (status,
    seconds); status 0 when it was not answered."""
    body = json.dumps({"interventions": [{"node": args.node, "kind": "do", "value": 1.0 + 0.05 * k}],
                       "n": args.rows, "seed": 0}).encode()
    request = urllib.request.Request(url + "api/intervene", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    barrier.wait()
    start = time.perf_counter()
    status = 0
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
            status = response.status
    except Exception as err:  # noqa: BLE001 - counted as not answered
        print(f"request {k}: {err}", file=sys.stderr)
    return status, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="concurrent intervention requests")
    parser.add_argument("--rows", type=int, default=1000, help="generated rows per request (the page's n)")
    parser.add_argument("--node", default="PKC", help="the intervened node (default: PKC of the demo data)")
    parser.add_argument("serve_args", nargs="*", help="arguments for condfip serve (default: none, the demo)")
    args = parser.parse_args()

    process = subprocess.Popen([sys.executable, "-c", "from condfip.cli import run; run()", "serve",
                                *args.serve_args], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith("condfip serve: "):
            print(f"condfip serve did not start: {line!r}", file=sys.stderr)
            return 1
        url = line.split()[2]
        print(line.strip())
        latencies: list[float] = [0.0] * args.requests
        statuses: list[int] = [0] * args.requests
        barrier = threading.Barrier(args.requests)

        def one(k: int) -> None:
            statuses[k], latencies[k] = run_one(url, args, k, barrier)

        alone = []
        for _ in range(5):  # one request at a time first (the first also fills the observational cache)
            alone.append(run_one(url, args, 0, threading.Barrier(1))[1])
        print(f"one request at a time: median {np.median(alone[1:]):.2f} s over {len(alone) - 1} (after a first "
              f"of {alone[0]:.2f} s)")
        threads = [threading.Thread(target=one, args=(k,)) for k in range(args.requests)]
        wall = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - wall
        answered = sum(1 for s in statuses if s == 200)
        p50, p95 = np.percentile(latencies, [50, 95])
        print(f"{answered}/{args.requests} concurrent intervention requests answered (200), {args.rows} rows each: "
              f"latency p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s; all done in {wall:.2f} s")
        return 0 if answered == args.requests else 1
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    sys.exit(main())
