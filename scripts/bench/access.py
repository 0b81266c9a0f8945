#!/usr/bin/env python3
"""Access-control benchmark: the cost of policy evaluation on the two hottest reads.

    python scripts/bench/access.py [--duration 4] [--connections 8] [--calls 100] [--rounds 5]

One ecr-emulator (``--iam-config``, default registry = account A) serves both sides of the
comparison, rounds interleaved:

- **no policies**: the root of account A (an undeclared key) reads A's repository, which has no
  repository policy; the registry has no registry policy.
- **policies**: a user of account B, declared with a 10-statement identity policy, reads the same
  repository across accounts through a 20-statement repository policy. That is the worst case of
  the evaluator: every Deny statement of both documents is checked (several with conditions), the
  identity policy allows only in its last statement and the repository policy grants only in its
  last one, both behind conditions.

Measured: manifest GETs per second from ``--connections`` keep-alive connections (the registry's
hottest path) and sequential boto3 DescribeImages calls per second, and for both the server's CPU
time per request (read from /proc around each run: steadier than rates when other work shares the
CPUs). Last, the same authorization runs in process without HTTP (``core.access.authorize``, its
SQL statement and the evaluation), timed in CPU seconds: the steady figure. The goal, under 10 %
overhead, is judged on it, as the extra CPU of the policies' side over a request's server CPU;
client and server share the machine's CPUs, so the live rates swing with whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from registry_clients import children, python_rps
from registry_targets import REPO, TAG, Target

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.images import build_image, push_via_api  # noqa: E402
from tests.server import start_server  # noqa: E402

A, B, C = "111111111111", "222222222222", "333333333333"
REGION = "us-east-1"
USER = {"accessKeyId": "AKIABENCHMARKUSER001", "secretAccessKey": "bench-secret",
        "arn": f"arn:aws:iam::{B}:user/bench"}
READ = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability", "ecr:DescribeImages"]
ARN_A = f"arn:aws:ecr:{REGION}:{A}:repository"


def identity_policy() -> dict:
    """Ten statements; the one that allows these reads comes last."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "ecr:DeleteRepository", "Resource": "*"},
        {"Effect": "Deny", "Action": "ecr:*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}},
        {"Effect": "Deny", "Action": ["ecr:PutImage", "ecr:BatchDeleteImage"], "Resource": f"{ARN_A}/prod/*"},
        {"Effect": "Allow", "Action": "ecr:CreateRepository", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/team": "bench"}}},
        {"Effect": "Allow", "Action": "ecr:TagResource", "Resource": f"arn:aws:ecr:*:{B}:repository/*",
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}},
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Effect": "Allow", "Action": "ecr:Describe*", "Resource": f"arn:aws:ecr:*:{B}:repository/*"},
        {"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": f"arn:aws:ecr:*:{C}:repository/*"},
        {"Effect": "Allow", "Action": "ecr:ListImages", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "bench"}}},
        {"Effect": "Allow", "Action": READ, "Resource": f"{ARN_A}/bench/*",
         "Condition": {"StringLike": {"aws:PrincipalArn": f"arn:aws:iam::{B}:user/*"}}},
    ]}


def repository_policy() -> dict:
    """Twenty statements: three Denies that do not apply (one conditional), sixteen grants to
    others, and last the grant to account B."""
    statements: list[dict] = [
        {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": ["ecr:BatchDeleteImage",
                                                                            "ecr:DeleteRepository"]},
        {"Sid": "Blocked", "Effect": "Deny", "Principal": "*", "Action": "ecr:*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/blocked": "true"}}},
        {"Sid": "NotFromAfar", "Effect": "Deny", "Principal": "*", "Action": "ecr:*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8", "::1/128"]}}},
    ]
    for i in range(16):
        account = f"{400000000000 + i}"
        statements.append({
            "Sid": f"Team{i}", "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{account}:role/puller", f"arn:aws:iam::{account}:user/ci"]},
            "Action": READ,
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account}},
        })
    statements.append({"Sid": "BenchAccount", "Effect": "Allow", "Principal": {"AWS": B}, "Action": READ,
                       "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}})
    assert len(statements) == 20
    return {"Version": "2012-10-17", "Statement": statements}


def ecr_client(server, key: str, secret: str = "bench"):
    return boto3.client("ecr", endpoint_url=server.api_url, region_name=REGION, aws_access_key_id=key,
                        aws_secret_access_key=secret)


def registry_target(server, ecr, name: str) -> Target:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return Target(name, "127.0.0.1", server.registry_port, {"Authorization": f"Basic {token}"})


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server: the gunicorn arbiter and its workers."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in [pid, *children(pid)]:
        fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


@dataclass
class Sample:
    per_second: float
    cpu_us: float  # server CPU per request


def measured(pid: int, run: Callable[[], tuple[float, float]]) -> Sample:
    """``run`` returns (requests, seconds); the server's CPU is read around it."""
    cpu = server_cpu(pid)
    count, seconds = run()
    return Sample(count / seconds, (server_cpu(pid) - cpu) / count * 1e6)


def manifest_load(target: Target, duration: float, connections: int) -> tuple[float, float]:
    started = time.perf_counter()
    per_second = python_rps(target, duration, connections)
    seconds = time.perf_counter() - started
    return per_second * seconds, seconds


def describe_loop(describe: Callable[[], Any], calls: int) -> tuple[float, float]:
    started = time.perf_counter()
    for _ in range(calls):
        describe()
    return calls, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4, help="seconds of each manifest GET run (4)")
    parser.add_argument("--connections", type=int, default=8, help="manifest GET connections (8)")
    parser.add_argument("--calls", type=int, default=100, help="DescribeImages calls per run (100)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per side (5)")
    args = parser.parse_args()
    results: dict[str, dict[str, list[Sample]]] = {side: {"get": [], "describe": []} for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="ecr-bench-access-") as tmp:
        config = Path(tmp) / "iam.json"
        config.write_text(json.dumps({"principals": [{**USER, "policies": [identity_policy()]}]}))
        server = start_server(Path(tmp) / "data", "--iam-config", str(config), "--default-account", A,
                              "--job-workers", "0", env={"ECR_EMULATOR_LOG_LEVEL": "warning"})
        try:
            admin = ecr_client(server, "AKIAUNDECLAREDADMIN1")
            user = ecr_client(server, USER["accessKeyId"], USER["secretAccessKey"])
            admin.create_repository(repositoryName=REPO)
            push_via_api(admin, REPO, build_image(), TAG)
            policy_text = json.dumps(repository_policy())
            sides = {
                "none": (registry_target(server, admin, "no policies"),
                         lambda: admin.describe_images(repositoryName=REPO)),
                "policies": (registry_target(server, user, "policies"),
                             lambda: user.describe_images(registryId=A, repositoryName=REPO)),
            }
            pid = server.process.pid
            for _ in range(args.rounds):
                for side, (target, describe) in sides.items():
                    if side == "policies":
                        admin.set_repository_policy(repositoryName=REPO, policyText=policy_text)
                    else:
                        _clear_policy(admin)
                    results[side]["get"].append(
                        measured(pid, lambda t=target: manifest_load(t, args.duration, args.connections)))
                    results[side]["describe"].append(measured(pid, lambda d=describe: describe_loop(d, args.calls)))
        finally:
            server.stop()
        steady = authorize_cpu(config, Path(tmp) / "in-process", policy_text)
    report(results, steady, args)
    return 0


SIDES = ("none", "policies")


def authorize_cpu(config: Path, data: Path, policy_text: str, calls: int = 2000, rounds: int = 5) -> dict[str, float]:
    """CPU microseconds of one ``core.access.authorize`` (its SQL statement and the evaluation), in
    process and without HTTP, for each side: the steady part of the comparison."""
    from ecr_emulator.config import Settings
    from ecr_emulator.core import access, policies, repositories
    from ecr_emulator.core.bootstrap import build_services
    from ecr_emulator.core.naming import Scope

    services = build_services(Settings(data_dir=str(data), vulndb_seed="", iam_config=str(config),
                                       default_account=A))
    scope = Scope(A, REGION)
    with services.unit(scope, write=True) as ctx:
        for name in (REPO, "bench/plain"):
            repositories.create(ctx, name)
        policies.set_repository_policy(ctx, REPO, policy_text, force=True)  # no source IP in process: its NotIpAddress Deny holds
    user = services.iam.get(USER["accessKeyId"])
    assert user is not None
    sides = {"none": (access.root_of(A, "AKIAUNDECLAREDADMIN1", REGION), "bench/plain"),
             "policies": (user.principal, REPO)}
    samples: dict[str, list[float]] = {side: [] for side in SIDES}
    for _ in range(rounds):
        for side, (principal, repository) in sides.items():
            need = [access.Need("ecr:BatchGetImage", repository)]
            with services.unit(scope, principal) as ctx:
                started = time.process_time()
                for _ in range(calls):
                    ctx.memo.clear()
                    access.authorize(ctx, need, access.Origin("127.0.0.1"))
                samples[side].append((time.process_time() - started) / calls * 1e6)
    services.db.dispose()
    return {side: statistics.median(values) for side, values in samples.items()}


def report(results: dict[str, dict[str, list[Sample]]], steady: dict[str, float], args: argparse.Namespace) -> None:
    rows = [(f"manifest GET, {args.connections} connections", "get", "req/s"),
            ("DescribeImages, sequential boto3", "describe", "calls/s")]
    width = max(len(f"{label} server CPU us/request") for label, _, _ in rows)
    print(f"{'':<{width}}  {'no policies':>11}  {'policies':>9}  overhead")
    for label, key, unit in rows:
        for what, attr, lower_is_better in ((unit, "per_second", False), ("server CPU us/request", "cpu_us", True)):
            base = statistics.median(getattr(x, attr) for x in results["none"][key])
            with_policies = statistics.median(getattr(x, attr) for x in results["policies"][key])
            overhead = ((with_policies - base) if lower_is_better else (base - with_policies)) / base * 100
            print(f"{label + ' ' + what:<{width}}  {base:11.0f}  {with_policies:9.0f}  {overhead:7.1f}%")
    for side in SIDES:
        for key, samples in results[side].items():
            print(f"  {side:>8} {key:>8}: " + ", ".join(f"{x.per_second:.0f}/s {x.cpu_us:.0f}us" for x in samples))
    extra = steady["policies"] - steady["none"]
    print(f"{'authorize() in process, CPU us/request':<{width}}  {steady['none']:11.0f}  {steady['policies']:9.0f}  "
          f"{extra:+6.0f}us")
    verdicts = []
    for label, key in ((rows[0][0], "get"), (rows[1][0], "describe")):
        request_cpu = statistics.median(x.cpu_us for x in results["none"][key])
        verdicts.append(extra / request_cpu < 0.10)
        print(f"  the policies' extra authorize() CPU is {extra / request_cpu * 100:.1f}% of a {label.split(',')[0]}")
    print("goal: under 10 % overhead (judged on the steady in-process figure): "
          + ("PASS" if all(verdicts) else "FAIL"))
    print(f"(20-statement repository policy, 10-statement identity policy, cross-account; medians of {args.rounds} "
          "interleaved rounds; rates and even /proc CPU swing with other work on a shared machine)")


def _clear_policy(admin) -> None:
    try:
        admin.delete_repository_policy(repositoryName=REPO)
    except admin.exceptions.RepositoryPolicyNotFoundException:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
