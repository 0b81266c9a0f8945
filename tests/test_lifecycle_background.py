"""Lifecycle on the default server, whose background workers run policies by themselves:
after a push, and on the emulator clock's interval."""

from __future__ import annotations

import json
import time

from tests.images import build_image, push_via_api


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def policy(selection, action=None):
    return json.dumps({"rules": [{"rulePriority": 1, "selection": selection,
                                  "action": action or {"type": "expire"}}]})


def digests(ecr, repo):
    return {d["imageDigest"] for d in ecr.describe_images(repositoryName=repo)["imageDetails"]}


def test_preview_waiter_succeeds(ecr):
    ecr.create_repository(repositoryName="waiter")
    push_via_api(ecr, "waiter", build_image(), "v1")
    ecr.start_lifecycle_policy_preview(
        repositoryName="waiter",
        lifecyclePolicyText=policy({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}),
    )
    ecr.get_waiter("lifecycle_policy_preview_complete").wait(
        repositoryName="waiter", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert ecr.get_lifecycle_policy_preview(repositoryName="waiter")["status"] == "COMPLETE"


def test_policy_runs_after_each_push(ecr):
    ecr.create_repository(repositoryName="after-push")
    ecr.put_lifecycle_policy(
        repositoryName="after-push",
        lifecyclePolicyText=policy({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2}),
    )
    images = [build_image() for _ in range(3)]
    for image in images:
        push_via_api(ecr, "after-push", image)
    wait_for(lambda: digests(ecr, "after-push") == {images[1].digest, images[2].digest})


def test_policy_runs_on_the_clock(ecr, server):
    ecr.create_repository(repositoryName="on-clock")
    image = build_image()
    push_via_api(ecr, "on-clock", image, "v1")
    ecr.put_lifecycle_policy(
        repositoryName="on-clock",
        lifecyclePolicyText=policy({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days",
                                    "countNumber": 1}),
    )
    server.run_jobs()  # the sweep's schedule starts now
    time.sleep(1.5)
    assert digests(ecr, "on-clock") == {image.digest}  # a fresh image stays
    server.advance_clock(2 * 86400)  # the image is now two days old and the sweep is due
    wait_for(lambda: digests(ecr, "on-clock") == set())
    evaluated = ecr.get_lifecycle_policy(repositoryName="on-clock")["lastEvaluatedAt"].timestamp()
    assert evaluated > time.time() + 86400  # evaluated on the emulator clock
