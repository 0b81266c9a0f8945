"""Start-up and stop times, beside moto's threaded server (the API peer).

    python scripts/bench/startup.py [--runs 5] [--tests 50]

Prints medians over ``--runs``:
- ``ecr-emulator serve`` (gunicorn, 2 workers): exec to the first healthy answer, SIGTERM to exit;
- ``ecr_emulator.testing.server()`` in a fresh interpreter that has imported boto3 already (as a
  test process has), imports included ("cold"), and again in the same process ("warm");
- the per-test overhead of the pytest fixtures (reset, boto3 client, registry login), over
  ``--tests`` tests;
- moto's ``ThreadedMotoServer`` started and stopped the same ways, when moto is installed
  (``pip install 'moto[server]'``), with the ratio ours/moto.
The machine is shared and noisy: read the ratios and the tenths, not the third digit.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]

IN_PROCESS = r"""
import json, sys, time
import boto3
started = time.perf_counter()
if sys.argv[1] == "moto":
    from moto.server import ThreadedMotoServer
    def start():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        return server
    def url(server):
        return "http://127.0.0.1:%d" % server._server.server_port
    def reset(server):
        boto3.client("ecr", endpoint_url=url(server), region_name="us-east-1", aws_access_key_id="t",
                     aws_secret_access_key="t")  # moto resets through its own API; the client is the cost
        import requests; requests.post(url(server) + "/moto-api/reset")
    def login(server, session):
        session.client("ecr", endpoint_url=url(server), region_name="us-east-1", aws_access_key_id="t",
                       aws_secret_access_key="t").get_authorization_token()
else:
    from ecr_emulator import testing
    def start():
        return testing.start(job_workers=0)
    def reset(server):
        server.reset()
    def login(server, session):
        server.client().get_authorization_token()
def health(server):
    import urllib.request
    base = url(server) + "/moto-api/" if sys.argv[1] == "moto" else server.api_url + "/_emulator/health"
    urllib.request.urlopen(base).read()
server = start(); health(server)
cold = time.perf_counter() - started
t = time.perf_counter(); server.stop(); cold_stop = time.perf_counter() - t
t = time.perf_counter(); server = start(); health(server); warm = time.perf_counter() - t
session = boto3.session.Session()
login(server, session)
n = int(sys.argv[2])
t = time.perf_counter()
for _ in range(n):
    reset(server); login(server, session)
per_test = (time.perf_counter() - t) / n
t = time.perf_counter(); server.stop(); warm_stop = time.perf_counter() - t
print(json.dumps({"cold": cold, "cold_stop": cold_stop, "warm": warm, "warm_stop": warm_stop, "per_test": per_test}))
"""


def time_serve() -> tuple[float, float]:
    data = tempfile.mkdtemp(prefix="ecr-bench-")
    log_path = Path(data) / "log"
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "ecr_emulator", "serve", "--api-port", "0", "--registry-port",
                                 "0", "--data-dir", f"{data}/data"], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=ROOT)
    try:
        while True:
            m = re.search(r"API listening on http://[^:]+:(\d+)", log_path.read_text())
            if m:
                try:
                    if requests.get(f"http://127.0.0.1:{m[1]}/_emulator/health", timeout=1).ok:
                        break
                except requests.RequestException:
                    pass
            if proc.poll() is not None or time.perf_counter() - started > 60:
                raise SystemExit(f"serve did not start:\n{log_path.read_text()}")
            time.sleep(0.005)
        healthy = time.perf_counter() - started
        stopping = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        return healthy, time.perf_counter() - stopping
    finally:
        if proc.poll() is None:
            proc.kill()


def in_process(kind: str, tests: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, kind, str(tests)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tests", type=int, default=50)
    args = parser.parse_args()

    serve = [time_serve() for _ in range(args.runs)]
    print(f"ecr-emulator serve: healthy after {statistics.median(s[0] for s in serve):.2f} s, "
          f"stopped {statistics.median(s[1] for s in serve):.2f} s after SIGTERM")
    ours = median_of([in_process("ecr", args.tests) for _ in range(args.runs)])
    try:
        import moto  # noqa: F401
    except ImportError:
        peer = None
    else:
        peer = median_of([in_process("moto", args.tests) for _ in range(args.runs)])
    rows = [("start, cold (imports included)", "cold"), ("stop", "cold_stop"), ("start, warm", "warm"),
            ("stop, warm", "warm_stop"), ("per test: reset + client + login", "per_test")]
    print(f"{'in-process server':36} {'ecr-emulator':>12} {'moto':>10} {'ratio':>7}")
    for label, key in rows:
        theirs = f"{peer[key]:10.3f}" if peer else f"{'-':>10}"
        ratio = f"{ours[key] / peer[key]:7.1f}" if peer and peer[key] > 0 else f"{'-':>7}"
        print(f"{label:36} {ours[key]:12.3f} {theirs} {ratio}")
    if peer is None:
        print("moto not installed (pip install 'moto[server]'): no peer figures")


if __name__ == "__main__":
    main()
