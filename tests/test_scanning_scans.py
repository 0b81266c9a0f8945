"""Starting scans, their quota and status, scan on push, findings pages, DescribeImages, ENHANCED."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, make_client
from tests.errors import error_of
from tests.images import build_artifact, build_image, build_index, push_via_api, push_via_registry, tar_layer
from tests.scan_images import (
    ALPINE_320,
    SITE,
    alpine_image,
    apk_installed,
    dist_info,
    npm_package,
    python_image,
    scan_and_wait,
    wait_for_scan,
)
from tests.server import start_server

ON_PUSH = [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "scanned", "filterType": "WILDCARD"}]}]




def _id(image):
    return {"imageDigest": image.digest}


def test_no_scan_yet_is_scan_not_found(ecr, repo):
    image = python_image()
    push_via_api(ecr, repo, image, "v1")
    with pytest.raises(ClientError) as e:
        ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})
    assert error_of(e) == (
        "ScanNotFoundException",
        f"Image scan does not exist for the image with '{{imageDigest:null, imageTag:'v1'}}' in the repository "
        f"with name '{repo}' in the registry with id '{ACCOUNT}'",
    )
    detail = ecr.describe_images(repositoryName=repo)["imageDetails"][0]
    assert "imageScanStatus" not in detail and "imageScanFindingsSummary" not in detail


def test_start_scan_waiter_and_rolling_24h_quota(ecr, server, repo):
    image = python_image()
    push_via_api(ecr, repo, image, "v1")
    out = ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
    assert out["registryId"] == ACCOUNT and out["repositoryName"] == repo
    assert out["imageId"] == {"imageDigest": image.digest, "imageTag": "v1"}
    assert out["imageScanStatus"] == {"status": "IN_PROGRESS"}
    ecr.get_waiter("image_scan_complete").wait(
        repositoryName=repo, imageId={"imageTag": "v1"}, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    result = ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})
    assert result["imageScanStatus"] == {"status": "COMPLETE", "description": "The scan was completed successfully."}
    for advance in (0, 23 * 3600):
        server.advance_clock(advance)
        with pytest.raises(ClientError) as e:
            ecr.start_image_scan(repositoryName=repo, imageId=_id(image))
        assert error_of(e) == ("LimitExceededException",
                               "The scan quota per image has been exceeded. Wait and try again.")
    server.advance_clock(3600)  # 24 h after the first scan started
    assert ecr.start_image_scan(repositoryName=repo, imageId=_id(image))["imageScanStatus"]["status"] == "IN_PROGRESS"
    assert wait_for_scan(ecr, server, repo, image.digest)["imageScanStatus"]["status"] == "COMPLETE"


def test_unsupported_image_types_and_missing_images(ecr, repo):
    child = python_image()
    index = build_index([child])
    push_via_api(ecr, repo, index, "multi")
    artifact = build_artifact(child, "application/vnd.example.sbom", b"{}")
    push_via_api(ecr, repo, artifact)
    for image in (index, artifact):
        with pytest.raises(ClientError) as e:
            ecr.start_image_scan(repositoryName=repo, imageId=_id(image))
        assert error_of(e)[0] == "UnsupportedImageTypeException"
    with pytest.raises(ClientError) as e:
        ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "nope"})
    assert error_of(e)[0] == "ImageNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.start_image_scan(repositoryName="nope", imageId={"imageTag": "x"})
    assert error_of(e)[0] == "RepositoryNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "nope"})
    assert error_of(e)[0] == "ImageNotFoundException"


def test_scan_on_push_through_the_api_and_the_registry(ecr, server, reg):
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=ON_PUSH)
    for name in ("scanned-api", "scanned-registry", "manual"):
        ecr.create_repository(repositoryName=name)
    first, second, third = python_image(), alpine_image(), python_image()
    push_via_api(ecr, "scanned-api", first, "v1")
    push_via_registry(reg, reg.base, "scanned-registry", second, "v1")
    push_via_api(ecr, "manual", third, "v1")
    assert wait_for_scan(ecr, server, "scanned-api", first.digest)["imageScanStatus"]["status"] == "COMPLETE"
    assert wait_for_scan(ecr, server, "scanned-registry", second.digest)["imageScanStatus"]["status"] == "COMPLETE"
    with pytest.raises(ClientError) as e:  # the scan on push counts against the daily quota
        ecr.start_image_scan(repositoryName="scanned-api", imageId=_id(first))
    assert error_of(e)[0] == "LimitExceededException"
    with pytest.raises(ClientError) as e:
        ecr.describe_image_scan_findings(repositoryName="manual", imageId=_id(third))
    assert error_of(e)[0] == "ScanNotFoundException"


def test_repository_scan_on_push_flag_and_indexes(ecr, server):
    ecr.create_repository(repositoryName="legacy", imageScanningConfiguration={"scanOnPush": True})
    child = python_image()
    index = build_index([child])
    push_via_api(ecr, "legacy", index, "multi")
    assert wait_for_scan(ecr, server, "legacy", child.digest)["imageScanStatus"]["status"] == "COMPLETE"
    with pytest.raises(ClientError) as e:  # the index itself is not an image that can be scanned
        ecr.describe_image_scan_findings(repositoryName="legacy", imageId=_id(index))
    assert error_of(e)[0] == "ScanNotFoundException"


def _many_findings_image():
    files = {"etc/os-release": ALPINE_320, "lib/apk/db/installed": apk_installed(("musl", "1.2.5-r0", "musl"))}
    files.update(dist_info(SITE, "pip", "23.1.2"))
    files.update(dist_info(SITE, "setuptools", "65.5.1"))
    files.update(npm_package("srv", "semver", "7.5.1"))
    files.update(npm_package("srv", "ip", "1.1.8"))
    return build_image([tar_layer(files)])


def test_findings_pages_repeat_status_and_summary(ecr, server, repo):
    image = _many_findings_image()
    push_via_api(ecr, repo, image, "v1")
    full = scan_and_wait(ecr, server, repo, image.digest)["imageScanFindings"]
    assert len(full["findings"]) == 5
    pages, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = ecr.describe_image_scan_findings(repositoryName=repo, imageId=_id(image), maxResults=2, **kwargs)
        assert page["imageScanStatus"]["status"] == "COMPLETE"
        assert page["imageScanFindings"]["findingSeverityCounts"] == {"HIGH": 3, "MEDIUM": 2}
        pages.append(page["imageScanFindings"]["findings"])
        token = page.get("nextToken")
        if token is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [f for p in pages for f in p] == full["findings"]
    paginated = ecr.get_paginator("describe_image_scan_findings").paginate(
        repositoryName=repo, imageId=_id(image), PaginationConfig={"PageSize": 3})
    assert [f for p in paginated for f in p["imageScanFindings"]["findings"]] == full["findings"]
    # Most severe first.
    assert [f["severity"] for f in full["findings"]] == ["HIGH", "HIGH", "HIGH", "MEDIUM", "MEDIUM"]


def test_describe_images_shows_status_and_summary(ecr, server, repo):
    image = _many_findings_image()
    push_via_api(ecr, repo, image, "v1")
    result = scan_and_wait(ecr, server, repo, image.digest)
    detail = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["imageDetails"][0]
    assert detail["imageScanStatus"] == {"status": "COMPLETE", "description": "The scan was completed successfully."}
    summary = detail["imageScanFindingsSummary"]
    assert summary["findingSeverityCounts"] == {"HIGH": 3, "MEDIUM": 2}
    assert summary["imageScanCompletedAt"] == result["imageScanFindings"]["imageScanCompletedAt"]
    # The newest `modified` among the loaded records (ALPINE-CVE-2025-26519, 2026-07-08T04:32:24.548Z).
    assert summary["vulnerabilitySourceUpdatedAt"].timestamp() == pytest.approx(1783485144.548, abs=0.01)


def test_deleting_the_image_deletes_its_scan(ecr, server, repo):
    image = python_image()
    push_via_api(ecr, repo, image, "v1")
    scan_and_wait(ecr, server, repo, image.digest)
    ecr.batch_delete_image(repositoryName=repo, imageIds=[_id(image)])
    push_via_api(ecr, repo, image, "v1")  # the same digest again is a new image, never scanned
    with pytest.raises(ClientError) as e:
        ecr.describe_image_scan_findings(repositoryName=repo, imageId=_id(image))
    assert error_of(e)[0] == "ScanNotFoundException"


def test_enhanced_scanning_shape_and_switching_back(ecr, server, repo):
    image = _many_findings_image()
    push_via_api(ecr, repo, image, "v1")
    basic = scan_and_wait(ecr, server, repo, image.digest)
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[
        {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "cont", "filterType": "WILDCARD"}]},
        {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "ap", "filterType": "WILDCARD"}]},
    ])
    with pytest.raises(ClientError) as e:  # basic results are not shown under enhanced scanning
        ecr.describe_image_scan_findings(repositoryName=repo, imageId=_id(image))
    assert error_of(e)[0] == "ScanNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.start_image_scan(repositoryName=repo, imageId=_id(image))
    assert error_of(e)[0] == "ValidationException"

    pushed = python_image()
    push_via_api(ecr, repo, pushed, "v2")
    result = wait_for_scan(ecr, server, repo, pushed.digest)
    assert result["imageScanStatus"]["status"] == "COMPLETE"
    findings = result["imageScanFindings"]["enhancedFindings"]
    assert "findings" not in result["imageScanFindings"]
    assert {f["title"] for f in findings} == {"CVE-2024-6345 - setuptools", "CVE-2023-5752 - pip"}
    setuptools = next(f for f in findings if f["title"].startswith("CVE-2024-6345"))
    assert setuptools["awsAccountId"] == ACCOUNT and setuptools["type"] == "PACKAGE_VULNERABILITY"
    assert setuptools["status"] == "ACTIVE" and setuptools["severity"] == "HIGH" and setuptools["fixAvailable"] == "YES"
    assert setuptools["findingArn"].startswith(f"arn:aws:inspector2:us-east-1:{ACCOUNT}:finding/")
    assert setuptools["score"] == 8.8
    assert setuptools["scoreDetails"]["cvss"]["scoringVector"] == "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"
    details = setuptools["packageVulnerabilityDetails"]
    assert details["vulnerabilityId"] == "CVE-2024-6345" and details["source"] == "GHSA"
    assert details["vulnerablePackages"] == [{
        "name": "setuptools", "version": "65.5.1", "epoch": 0, "filePath":
        f"{SITE}/setuptools-65.5.1.dist-info/METADATA", "packageManager": "PYTHONPKG",
        "sourceLayerHash": pushed.layers[0].digest, "fixedInVersion": "70.0.0",
    }]
    assert details["cvss"] == [{"baseScore": 8.8, "scoringVector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
                                "source": "GHSA-cx63-2mw6-8hw5", "version": "3.1"}]
    assert details["sourceUrl"] == "https://nvd.nist.gov/vuln/detail/CVE-2024-6345"
    assert setuptools["remediation"]["recommendation"]["text"] == "Upgrade setuptools to version 70.0.0 or later."
    resource = setuptools["resources"][0]
    assert resource["type"] == "AWS_ECR_CONTAINER_IMAGE"
    assert resource["details"]["awsEcrContainerImage"]["imageHash"] == pushed.digest
    assert resource["details"]["awsEcrContainerImage"]["imageTags"] == ["v2"]
    assert resource["details"]["awsEcrContainerImage"]["architecture"] == "amd64"

    ecr.put_registry_scanning_configuration(scanType="BASIC")  # the basic results come back
    again = ecr.describe_image_scan_findings(repositoryName=repo, imageId=_id(image))
    assert again["imageScanFindings"]["findings"] == basic["imageScanFindings"]["findings"]


def test_continuous_scanning_is_active(ecr, server):
    ecr.put_registry_scanning_configuration(scanType="ENHANCED")
    ecr.create_repository(repositoryName="cont")
    image = python_image()
    push_via_api(ecr, "cont", image, "v1")
    result = wait_for_scan(ecr, server, "cont", image.digest)
    assert result["imageScanStatus"] == {"status": "ACTIVE", "description": "Continuous scan is selected for image."}
    assert len(result["imageScanFindings"]["enhancedFindings"]) == 2


def test_continuous_scanning_rescans_after_a_vulnerability_database_import(tmp_path):
    """ENHANCED continuous scans are redone once newer vulnerability data is imported."""
    live = start_server(tmp_path / "data")
    try:
        ecr = make_client(live)
        ecr.put_registry_scanning_configuration(scanType="ENHANCED")
        ecr.create_repository(repositoryName="cont")
        image = python_image()
        push_via_api(ecr, "cont", image, "v1")
        assert len(wait_for_scan(ecr, live, "cont", image.digest)["imageScanFindings"]["enhancedFindings"]) == 2
        # A test-only record (not a real advisory) about the image's wheel 0.40.0, newer than the fixtures.
        record = {"id": "TEST-WHEEL-0001", "modified": "2030-01-01T00:00:00Z", "summary": "test-only record",
                  "affected": [{"package": {"ecosystem": "PyPI", "name": "wheel"},
                                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.41"}]}]}]}
        (tmp_path / "TEST-WHEEL-0001.json").write_text(json.dumps(record))
        proc = subprocess.run([sys.executable, "-m", "ecr_emulator", "vulndb", "import",
                               str(tmp_path / "TEST-WHEEL-0001.json"), *live.storage_args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        live.advance_clock(3601)  # the continuous-scan sweep is hourly on the emulator clock
        deadline, names = time.time() + 30, set()
        while "TEST-WHEEL-0001" not in names and time.time() < deadline:  # a worker may hold the rescan
            live.run_jobs()
            result = ecr.describe_image_scan_findings(repositoryName="cont", imageId=_id(image))
            names = {f["packageVulnerabilityDetails"]["vulnerabilityId"]
                     for f in result["imageScanFindings"]["enhancedFindings"]}
        assert names == {"CVE-2023-5752", "CVE-2024-6345", "TEST-WHEEL-0001"}
        assert result["imageScanStatus"]["status"] == "ACTIVE"
    finally:
        live.stop()
