"""Repositories: create, describe, delete, settings, and the ECR ``Repository`` view of one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy import delete as sql_delete

from ecr_emulator.core import errors, pagination
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import partition_for, repository_arn, wildcard_regex
from ecr_emulator.storage.models import Image, Repository, ResourceTag, Upload
from ecr_emulator.storage.prepared import Prepared, columns, loaded
from ecr_emulator.storage.sql import insert_loaded, insert_rows

MUTABILITY_WITH_EXCLUSION = ("IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")
MAX_REPOSITORIES_PER_REGION = 100_000
MAX_RESOURCE_TAGS = 50

# Statements of the hot paths are built once, with bound parameters: building a SELECT with
# SQLAlchemy's expression language cost about 0.3 ms per statement here, more than running it.
_IN_SCOPE = (Repository.account_id == bindparam("account")) & (Repository.region == bindparam("region"))
ROW = columns(Repository)  # a repository's row, as get reads it
_BY_NAME_SQL = select(*ROW).where(_IN_SCOPE, Repository.name == bindparam("name"))
_BY_NAME, _BY_NAME_LOCKED = Prepared(_BY_NAME_SQL), Prepared(_BY_NAME_SQL.with_for_update())
_BY_NAMES = Prepared(select(*ROW).where(_IN_SCOPE, Repository.name.in_(bindparam("names", expanding=True))))
# Whether the name is taken, and how many repositories the registry holds, in one pass over the
# (account, region, name) index.
_TAKEN_AND_COUNT = Prepared(select(func.max(case((Repository.name == bindparam("name"), Repository.id))),
                                   func.count(Repository.id)).where(_IN_SCOPE))
_FIRST_IMAGE = Prepared(select(Image.id).where(Image.repository_id == bindparam("repository")).limit(1))
_UPLOADS = Prepared(select(Upload.id).where(Upload.repository_id == bindparam("repository")))
_DELETE = Prepared(sql_delete(Repository).where(Repository.id == bindparam("repository")))


def in_scope(ctx: Context, **params: Any) -> dict[str, Any]:
    """Parameters of a statement over the caller's registry (``_IN_SCOPE``)."""
    return {"account": ctx.scope.account_id, "region": ctx.scope.region, **params}


def get(ctx: Context, name: str, *, for_update: bool = False) -> Repository:
    """The named repository of the caller's registry, or RepositoryNotFoundException.

    ``for_update`` locks the row (PostgreSQL) so concurrent pushes to one repository
    serialise; SQLite already serialises writers.
    """
    row = ctx.memo.pop((_READ_AHEAD, ctx.scope, name), None)
    if row is None or (for_update and not ctx.services.db.is_sqlite):
        repo = (_BY_NAME_LOCKED if for_update else _BY_NAME).object(ctx.session, Repository, in_scope(ctx, name=name))
    else:
        repo = loaded(ctx.session, Repository, row)
    if repo is None:
        raise errors.RepositoryNotFoundException(name, ctx.registry_id)
    return repo


_READ_AHEAD = "repositories:read-ahead"


def read_ahead(ctx: Context, name: str, row: tuple[Any, ...]) -> None:
    """Keep the row of repository ``name`` (its ``ROW`` columns), just read in this unit by
    another statement (authorization reads it with the policies), for this unit's next ``get``
    of the name, which then runs no statement of its own. Used once: a later ``get`` reads the
    row again. A lock (``for_update``) is still taken by a statement where the database has row
    locks; SQLite's writer already holds the whole database."""
    ctx.memo[(_READ_AHEAD, ctx.scope, name)] = row


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
    taken, count = _TAKEN_AND_COUNT.one(ctx.session, in_scope(ctx, name=name))
    if taken is not None:
        raise errors.RepositoryAlreadyExistsException(name, ctx.registry_id)
    if count >= MAX_REPOSITORIES_PER_REGION:
        raise errors.LimitExceededException(
            "The operation did not succeed because it would have exceeded a service limit for your account. "
            "For more information, see Amazon ECR service quotas in the Amazon Elastic Container Registry User Guide."
        )
    repo = insert_loaded(ctx.session, Repository, {
        "account_id": ctx.scope.account_id, "region": ctx.scope.region, "name": name, "created_at": ctx.now,
        "tag_mutability": mode, "tag_mutability_filters": filters,
        "scan_on_push": bool((scanning or {}).get("scanOnPush", False)), "encryption_type": etype,
        "kms_key": kms_key, "policy_text": None, "lifecycle_policy_text": None, "lifecycle_evaluated_at": None,
        "image_count": 0,
    })
    insert_rows(ctx.session, ResourceTag, [{"repository_id": repo.id, "key": t["Key"], "value": t["Value"],
                                            "position": i} for i, t in enumerate(_last_of_each_key(tags or []))])
    return repo


def _last_of_each_key(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    """Tags in first-seen key order, the last value given for a key winning (as TagResource applies them)."""
    by_key: dict[str, dict[str, str]] = {}
    for t in tags:
        by_key[t["Key"]] = t  # a key seen again keeps its place
    return list(by_key.values())


def describe(
    ctx: Context, names: list[str] | None, next_token: str | None, max_results: int | None
) -> tuple[list[Repository], str | None]:
    if names:
        if next_token is not None or max_results is not None:
            raise errors.InvalidParameterException(
                "Invalid parameter: maxResults and nextToken cannot be specified with repositoryNames"
            )
        found = {r.name: r for r in _BY_NAMES.objects(ctx.session, Repository, in_scope(ctx, names=names))}
        for n in names:
            if n not in found:
                raise errors.RepositoryNotFoundException(n, ctx.registry_id)
        seen: dict[str, Repository] = {}
        for n in names:
            seen.setdefault(n, found[n])
        return list(seen.values()), None
    base = select(Repository).where(
        Repository.account_id == ctx.scope.account_id, Repository.region == ctx.scope.region
    )
    return pagination.page_by_id(ctx, base, Repository.id, next_token, max_results, "DescribeRepositories")


def delete(ctx: Context, name: str, force: bool) -> dict[str, Any]:
    repo = get(ctx, name, for_update=True)
    has_images = _FIRST_IMAGE.scalar(ctx.session, {"repository": repo.id})
    if has_images is not None and not force:
        raise errors.RepositoryNotEmptyException(name, ctx.registry_id)
    out = view(ctx, repo)
    upload_ids = [upload_id for upload_id, in _UPLOADS.all(ctx.session, {"repository": repo.id})]
    # Its images, tags, links, uploads and settings go with it (ON DELETE CASCADE), in one
    # statement rather than the ORM loading each collection to delete it.
    _DELETE.run(ctx.session, {"repository": repo.id})
    ctx.session.expunge(repo)
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
