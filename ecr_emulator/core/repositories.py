"""Repositories: create, describe, delete, settings, and the ECR ``Repository`` view of one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ecr_emulator.core import errors, pagination
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import partition_for, repository_arn, wildcard_regex
from ecr_emulator.storage.models import Image, Repository, ResourceTag, Upload

MUTABILITY_WITH_EXCLUSION = ("IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")
MAX_REPOSITORIES_PER_REGION = 100_000
MAX_RESOURCE_TAGS = 50


def get(ctx: Context, name: str, *, for_update: bool = False) -> Repository:
    """The named repository of the caller's registry, or RepositoryNotFoundException.

    ``for_update`` locks the row (PostgreSQL) so concurrent pushes to one repository
    serialise; SQLite already serialises writers.
    """
    stmt = select(Repository).where(
        Repository.account_id == ctx.scope.account_id,
        Repository.region == ctx.scope.region,
        Repository.name == name,
    )
    if for_update:
        stmt = stmt.with_for_update()
    repo = ctx.session.scalars(stmt).first()
    if repo is None:
        raise errors.RepositoryNotFoundException(name, ctx.registry_id)
    return repo


def find(ctx: Context, name: str, *, for_update: bool = False) -> Repository | None:
    try:
        return get(ctx, name, for_update=for_update)
    except errors.RepositoryNotFoundException:
        return None


def name_page(ctx: Context, n: int, last: str | None) -> tuple[list[str], bool]:
    """The registry's catalog: up to ``n`` repository names of the registry after ``last``, in
    order, and whether more follow."""
    stmt = select(Repository.name).where(Repository.account_id == ctx.scope.account_id,
                                         Repository.region == ctx.scope.region)
    return pagination.page_after(ctx, stmt, Repository.name, n, last)


def view(ctx: Context, repo: Repository) -> dict[str, Any]:
    """The ECR ``Repository`` structure."""
    out: dict[str, Any] = {
        "repositoryArn": repository_arn(ctx.scope, repo.name),
        "registryId": repo.account_id,
        "repositoryName": repo.name,
        "repositoryUri": ctx.hosts.repository_uri(ctx.scope, repo.name),
        "createdAt": repo.created_at,
        "imageTagMutability": repo.tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": bool(repo.scan_on_push)},
        "encryptionConfiguration": {"encryptionType": repo.encryption_type},
    }
    if repo.tag_mutability_filters:
        out["imageTagMutabilityExclusionFilters"] = repo.tag_mutability_filters
    if repo.kms_key:
        out["encryptionConfiguration"]["kmsKey"] = repo.kms_key
    return out


def check_mutability(mode: str, filters: list[dict[str, str]] | None) -> list[dict[str, str]] | None:
    """Exclusion filters are required with the *_WITH_EXCLUSION modes and refused otherwise."""
    if mode in MUTABILITY_WITH_EXCLUSION:
        if not filters:
            raise errors.InvalidParameterException.constraint(
                "imageTagMutabilityExclusionFilters",
                f"ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set as {mode}",
            )
        return [{"filterType": f["filterType"], "filter": f["filter"]} for f in filters]
    if filters:
        raise errors.InvalidParameterException.constraint(
            "imageTagMutabilityExclusionFilters",
            f"ImageTagMutabilityExclusionFilters can only be set when imageTagMutability is set as "
            f"IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, not {mode}",
        )
    return None


def is_tag_immutable(repo: Repository, tag: str) -> bool:
    """Whether ``tag`` may not be moved once it exists in this repository (ECR section 9)."""
    mode = repo.tag_mutability
    if mode == "MUTABLE":
        return False
    if mode == "IMMUTABLE":
        return True
    excluded = any(wildcard_regex(f["filter"]).fullmatch(tag) for f in repo.tag_mutability_filters or [])
    if mode == "IMMUTABLE_WITH_EXCLUSION":
        return not excluded
    return excluded  # MUTABLE_WITH_EXCLUSION


def check_tag_key(key: str) -> None:
    if key.lower().startswith("aws:"):
        raise errors.InvalidTagParameterException("Tag keys starting with 'aws:' are reserved for AWS use.")


def check_resource_tags(tags: list[dict[str, str]], existing_keys: set[str] | None = None) -> None:
    """Lengths, reserved keys, and the 50-tag limit counted over the keys the repository ends with."""
    for t in tags:
        key, value = t["Key"], t["Value"]
        if not 1 <= len(key) <= 128:
            raise errors.InvalidTagParameterException(
                "Tag key must have a length between 1 and 128 characters, inclusive."
            )
        if len(value) > 256:
            raise errors.InvalidTagParameterException("Tag value must have a length of at most 256 characters.")
        check_tag_key(key)
    if len((existing_keys or set()) | {t["Key"] for t in tags}) > MAX_RESOURCE_TAGS:
        raise errors.TooManyTagsException(
            f"A repository cannot have more than {MAX_RESOURCE_TAGS} tags."
        )


def apply_resource_tags(repo: Repository, tags: list[dict[str, str]]) -> None:
    by_key = {t.key: t for t in repo.tags}
    next_pos = max((t.position for t in repo.tags), default=-1) + 1
    for t in tags:
        if t["Key"] in by_key:
            by_key[t["Key"]].value = t["Value"]
        else:
            rt = ResourceTag(key=t["Key"], value=t["Value"], position=next_pos)
            next_pos += 1
            repo.tags.append(rt)
            by_key[t["Key"]] = rt


def encryption_settings(ctx: Context, config: dict[str, Any] | None) -> tuple[str, str | None]:
    if not config:
        return "AES256", None
    etype = config["encryptionType"]
    key = config.get("kmsKey")
    if etype == "AES256":
        if key:
            raise errors.InvalidParameterException.constraint(
                "encryptionConfiguration.kmsKey", "kmsKey can only be specified when encryptionType is KMS or KMS_DSSE"
            )
        return etype, None
    if not key:  # the AWS managed key of the registry, named by its alias ARN
        key = f"arn:{partition_for(ctx.scope.region)}:kms:{ctx.scope.region}:{ctx.registry_id}:alias/aws/ecr"
    return etype, key


def create(
    ctx: Context,
    name: str,
    *,
    tags: list[dict[str, str]] | None = None,
    mutability: str | None = None,
    mutability_filters: list[dict[str, str]] | None = None,
    scanning: dict[str, Any] | None = None,
    encryption: dict[str, Any] | None = None,
) -> Repository:
    mode = mutability or "MUTABLE"
    filters = check_mutability(mode, mutability_filters)
    check_resource_tags(tags or [])
    etype, kms_key = encryption_settings(ctx, encryption)
    if find(ctx, name) is not None:
        raise errors.RepositoryAlreadyExistsException(name, ctx.registry_id)
    count = ctx.session.scalar(
        select(func.count(Repository.id)).where(
            Repository.account_id == ctx.scope.account_id, Repository.region == ctx.scope.region
        )
    )
    if count >= MAX_REPOSITORIES_PER_REGION:
        raise errors.LimitExceededException(
            "The operation did not succeed because it would have exceeded a service limit for your account. "
            "For more information, see Amazon ECR service quotas in the Amazon Elastic Container Registry User Guide."
        )
    repo = Repository(
        account_id=ctx.scope.account_id,
        region=ctx.scope.region,
        name=name,
        created_at=ctx.now,
        tag_mutability=mode,
        tag_mutability_filters=filters,
        scan_on_push=bool((scanning or {}).get("scanOnPush", False)),
        encryption_type=etype,
        kms_key=kms_key,
    )
    apply_resource_tags(repo, tags or [])
    ctx.session.add(repo)
    ctx.session.flush()
    return repo


def describe(
    ctx: Context, names: list[str] | None, next_token: str | None, max_results: int | None
) -> tuple[list[Repository], str | None]:
    base = select(Repository).where(
        Repository.account_id == ctx.scope.account_id, Repository.region == ctx.scope.region
    )
    if names:
        if next_token is not None or max_results is not None:
            raise errors.InvalidParameterException(
                "Invalid parameter: maxResults and nextToken cannot be specified with repositoryNames"
            )
        found = {r.name: r for r in ctx.session.scalars(base.where(Repository.name.in_(names)))}
        for n in names:
            if n not in found:
                raise errors.RepositoryNotFoundException(n, ctx.registry_id)
        seen: dict[str, Repository] = {}
        for n in names:
            seen.setdefault(n, found[n])
        return list(seen.values()), None
    return pagination.page_by_id(ctx, base, Repository.id, next_token, max_results, "DescribeRepositories")


def delete(ctx: Context, name: str, force: bool) -> dict[str, Any]:
    repo = get(ctx, name, for_update=True)
    has_images = ctx.session.scalar(select(Image.id).where(Image.repository_id == repo.id).limit(1))
    if has_images is not None and not force:
        raise errors.RepositoryNotEmptyException(name, ctx.registry_id)
    out = view(ctx, repo)
    upload_ids = list(ctx.session.scalars(select(Upload.id).where(Upload.repository_id == repo.id)))
    ctx.session.delete(repo)
    blobs = ctx.blobs
    ctx.after_commit.append(lambda: [blobs.staging.discard(u) for u in upload_ids])
    return out


def put_tag_mutability(
    ctx: Context, name: str, mode: str, filters: list[dict[str, str]] | None
) -> Repository:
    checked = check_mutability(mode, filters)
    repo = get(ctx, name, for_update=True)
    repo.tag_mutability = mode
    repo.tag_mutability_filters = checked
    return repo


def put_scanning_configuration(ctx: Context, name: str, scan_on_push: bool) -> Repository:
    repo = get(ctx, name, for_update=True)
    repo.scan_on_push = scan_on_push
    return repo
