"""Image scanning operations: registry configuration, StartImageScan, DescribeImageScanFindings.

PutImageScanningConfiguration (the deprecated repository-level flag) lives with the other
repository settings in ``repositories.py``.
"""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core import errors, repositories
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import repository_arn
from ecr_emulator.core.scanning import configuration, scans


@operation("PutRegistryScanningConfiguration")
def put_registry_scanning_configuration(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    document = configuration.put_registry_configuration(ctx, p.get("scanType"), p.get("rules"))
    return {"registryScanningConfiguration": document}


@operation("GetRegistryScanningConfiguration", write=False)
def get_registry_scanning_configuration(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ctx.registry_id, "scanningConfiguration": configuration.registry_configuration(ctx)}


@operation("BatchGetRepositoryScanningConfiguration", write=False)
def batch_get_repository_scanning_configuration(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    config = configuration.registry_configuration(ctx)
    found, failures = [], []
    for name in dict.fromkeys(p["repositoryNames"]):
        repo = repositories.find(ctx, name)
        if repo is None:
            failures.append({
                "repositoryName": name,
                "failureCode": "REPOSITORY_NOT_FOUND",
                "failureReason": errors.RepositoryNotFoundException(name, ctx.registry_id).message,
            })
            continue
        setting = configuration.effective(ctx, repo, config)
        found.append({
            "repositoryArn": repository_arn(ctx.scope, repo.name),
            "repositoryName": repo.name,
            "scanOnPush": setting.frequency == "SCAN_ON_PUSH",
            "scanFrequency": setting.frequency,
            "appliedScanFilters": setting.applied,
        })
    return {"scanningConfigurations": found, "failures": failures}


@operation("StartImageScan")
def start_image_scan(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return scans.start(ctx, p["repositoryName"], p["imageId"])


@operation("DescribeImageScanFindings", write=False)
def describe_image_scan_findings(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return scans.describe_findings(ctx, p["repositoryName"], p["imageId"], p.get("nextToken"), p.get("maxResults"))
