"""What an API call asks permission for, and of which registry.

Every operation asks for ``ecr:<Operation>`` on the resource ECR's authorization reference names:
the repository ARN when the input names a repository (``repositoryName``, each of
``repositoryNames``, the repository of ``resourceArn``), every repository (``repository/*``) when
an operation that takes repository names is given none, and ``*`` for registry-level operations.
Tags in the input become ``aws:RequestTag/<key>`` and ``aws:TagKeys``.

The registry addressed is the one ``registryId`` names (so account B can use account A's
repository when A's policy allows), else the one ``resourceArn`` names, else the caller's own.
"""

from __future__ import annotations

import functools
from typing import Any

from ecr_emulator.api import protocol
from ecr_emulator.core.access import EVERY_REPOSITORY, Need
from ecr_emulator.core.naming import Scope, parse_repository_arn


def registry_scope(caller: Scope, params: dict[str, Any]) -> Scope:
    registry_id = params.get("registryId")
    if registry_id:
        return Scope(registry_id, caller.region)
    parsed = parse_repository_arn(params["resourceArn"]) if "resourceArn" in params else None
    if parsed is not None:
        return Scope(parsed[0].account_id, caller.region)
    return caller


@functools.cache
def _takes_repository_names(op_name: str) -> bool:
    shape = protocol.operation_model(op_name).input_shape
    return shape is not None and "repositoryNames" in shape.members


def _repositories(op_name: str, params: dict[str, Any]) -> list[str | None]:
    if "repositoryName" in params:
        return [params["repositoryName"]]
    if params.get("repositoryNames"):
        return list(dict.fromkeys(params["repositoryNames"]))
    if _takes_repository_names(op_name):
        return [EVERY_REPOSITORY]
    if "resourceArn" in params and (parsed := parse_repository_arn(params["resourceArn"])) is not None:
        return [parsed[1]]
    return [None]


def needs(op_name: str, params: dict[str, Any]) -> list[Need]:
    tags = params.get("tags") or []
    request_tags = tuple((t["Key"], t.get("Value", "")) for t in tags)
    tag_keys = tuple(k for k, _ in request_tags) if tags else params.get("tagKeys")
    action = f"ecr:{op_name}"
    return [Need(action, repo, request_tags, tuple(tag_keys) if tag_keys is not None else None)
            for repo in _repositories(op_name, params)]
