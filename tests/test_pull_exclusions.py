"""Pull-time update exclusions: the operations with ECR's errors and limits, and pulls by an
excluded principal (declared with --iam-config) that leave lastRecordedPullTime alone, through
the registry and BatchGetImage alike."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from botocore.exceptions import ClientError

from tests.errors import error_of
from tests.iam_world import ADMIN_KEY, CI, client, start_iam_server
from tests.images import build_image, push_via_api
from tests.server import eventually


@pytest.fixture(scope="module")
def server(tmp_path_factory):  # type: ignore[no-untyped-def]
    live = start_iam_server(tmp_path_factory, "pull-exclusions")
    yield live
    live.stop()


@pytest.fixture
def admin(server):  # type: ignore[no-untyped-def]
    server.reset()
    return client(server, ADMIN_KEY)


def test_register_list_deregister_with_ecr_errors_and_limits(admin):
    arns = [f"arn:aws:iam::111111111111:role/scanner-{i:03d}" for i in range(100)]
    made = admin.register_pull_time_update_exclusion(principalArn=arns[0])
    assert made["principalArn"] == arns[0] and made["createdAt"]
    with pytest.raises(ClientError) as e:
        admin.register_pull_time_update_exclusion(principalArn=arns[0])
    assert error_of(e)[0] == "ExclusionAlreadyExistsException"
    for arn in arns[1:]:
        admin.register_pull_time_update_exclusion(principalArn=arn)
    with pytest.raises(ClientError) as e:
        admin.register_pull_time_update_exclusion(principalArn="arn:aws:iam::111111111111:user/one-too-many")
    assert error_of(e)[0] == "LimitExceededException"
    page = admin.list_pull_time_update_exclusions(maxResults=60)
    rest = admin.list_pull_time_update_exclusions(nextToken=page["nextToken"])
    assert page["pullTimeUpdateExclusions"] + rest["pullTimeUpdateExclusions"] == sorted(arns)
    assert "nextToken" not in rest
    assert admin.deregister_pull_time_update_exclusion(principalArn=arns[5])["principalArn"] == arns[5]
    with pytest.raises(ClientError) as e:
        admin.deregister_pull_time_update_exclusion(principalArn=arns[5])
    assert error_of(e)[0] == "ExclusionNotFoundException"
    for bad in ("arn:aws:iam::111111111111:root", "arn:aws:iam::1111:user/x", "not-an-arn"):
        with pytest.raises(ClientError) as e:
            admin.register_pull_time_update_exclusion(principalArn=bad)
        assert error_of(e)[0] == "InvalidParameterException"


def _pulled_at(admin, repo: str) -> float | None:  # type: ignore[no-untyped-def]
    detail = admin.describe_images(repositoryName=repo)["imageDetails"][0]
    value = detail.get("lastRecordedPullTime")
    return value.timestamp() if value is not None else None


def _pull_through_registry(server, who, repo: str, tag: str) -> None:  # type: ignore[no-untyped-def]
    token = client(server, who).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    auth = tuple(base64.b64decode(token).decode().split(":", 1))
    r = requests.get(f"{server.registry_url}/v2/{repo}/manifests/{tag}", auth=auth, timeout=30,
                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200, r.text


def test_pulls_by_an_excluded_principal_leave_the_pull_time_alone(server, admin):
    admin.create_repository(repositoryName="app-excluded")
    push_via_api(admin, "app-excluded", build_image(), "v1")
    admin.register_pull_time_update_exclusion(principalArn=CI.arn)
    ci = client(server, CI)
    ci.batch_get_image(repositoryName="app-excluded", imageIds=[{"imageTag": "v1"}])
    _pull_through_registry(server, CI, "app-excluded", "v1")
    time.sleep(0.5)  # more than the pull-time writer needs to write a note
    assert _pulled_at(admin, "app-excluded") is None

    admin.batch_get_image(repositoryName="app-excluded", imageIds=[{"imageTag": "v1"}])  # the root: not excluded
    first = eventually(lambda: _pulled_at(admin, "app-excluded"))
    server.advance_clock(86400)
    _pull_through_registry(server, CI, "app-excluded", "v1")
    time.sleep(0.5)
    assert _pulled_at(admin, "app-excluded") == first

    admin.deregister_pull_time_update_exclusion(principalArn=CI.arn)
    _pull_through_registry(server, CI, "app-excluded", "v1")
    eventually(lambda: (_pulled_at(admin, "app-excluded") or 0) > first + 86000)
