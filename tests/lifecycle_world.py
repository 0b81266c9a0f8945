"""Lifecycle tests' world: a live server with background workers off (nothing happens unless a
test asks), a fixed 'now', images pushed over the registry protocol at chosen ages, and small
builders for policy rules. The fixtures ``lserver`` (one server per test module) and ``w`` in conftest.py build it."""

from __future__ import annotations

import json

import requests

from tests.images import push_via_registry
from tests.server import LiveServer, make_client

DAY = 86400
REPO = "lc/app"


class World:
    """One test's view: a fixed 'now' (T0) and helpers to push at an age and to run things."""

    def __init__(self, server: LiveServer):
        self.server = server
        self.ecr = make_client(server)
        self.t0 = server.control("clock")["now"]

    def at(self, days_ago: float) -> None:
        self.server.control("clock", {"set": self.t0 - days_ago * DAY})

    def now(self) -> None:
        self.server.control("clock", {"set": self.t0})

    def session(self) -> requests.Session:
        s = requests.Session()
        token = self.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        s.headers["Authorization"] = f"Basic {token}"
        return s

    def push(self, image, tag=None, days_ago: float = 0, repo: str = REPO) -> str:
        self.at(days_ago)
        return push_via_registry(self.session(), self.server.registry_url, repo, image, tag)

    def tag(self, image, tag: str, repo: str = REPO) -> None:
        self.ecr.put_image(repositoryName=repo, imageManifest=image.manifest.decode(), imageTag=tag)

    def policy(self, *rules, repo: str = REPO) -> str:
        text = json.dumps({"rules": [
            {"rulePriority": i, "selection": sel, "action": act}
            for i, (sel, act) in enumerate(rules, start=1)
        ]})
        self.ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
        return text

    def preview(self, repo: str = REPO, **kw) -> dict:
        started = self.ecr.start_lifecycle_policy_preview(repositoryName=repo)
        assert started["status"] == "IN_PROGRESS"
        assert self.ecr.get_lifecycle_policy_preview(repositoryName=repo)["status"] == "IN_PROGRESS"
        self.server.run_jobs()
        out = self.ecr.get_lifecycle_policy_preview(repositoryName=repo, **kw)
        assert out["status"] == "COMPLETE"
        return out

    def run(self, repo: str = REPO) -> dict:
        return self.server.control("lifecycle/run", {"repository": repo})["runs"][0]

    def digests(self, repo: str = REPO, status: str = "ACTIVE") -> set[str]:
        details = self.ecr.describe_images(repositoryName=repo, filter={"imageStatus": status})["imageDetails"]
        return {d["imageDigest"] for d in details}


def tagged(patterns, **count):
    return {"tagStatus": "tagged", "tagPatternList": patterns, **count}


COUNT1 = {"countType": "imageCountMoreThan", "countNumber": 1}
EXPIRE = {"type": "expire"}
ARCHIVE = {"type": "transition", "targetStorageClass": "archive"}


def since(days, kind="sinceImagePushed"):
    return {"countType": kind, "countUnit": "days", "countNumber": days}
