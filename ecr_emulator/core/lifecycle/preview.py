"""Lifecycle policy previews (dry runs): started IN_PROGRESS, completed by a durable job that
runs the same evaluator as execution, then read back filtered and paginated."""

from __future__ import annotations

from typing import Any

from ecr_emulator.core import errors, jobs, pagination, repositories
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.lifecycle.evaluate import Action, evaluate
from ecr_emulator.core.lifecycle.policy import parse
from ecr_emulator.core.lifecycle.snapshot import image_facts
from ecr_emulator.core.naming import Scope
from ecr_emulator.storage.models import LifecyclePreview, Repository

PAGE = 100


def start(ctx: Context, repository_name: str, text: str | None) -> LifecyclePreview:
    repo = repositories.get(ctx, repository_name, for_update=True)
    if text is None:
        if repo.lifecycle_policy_text is None:
            raise errors.LifecyclePolicyNotFoundException(repository_name, ctx.registry_id)
        text = repo.lifecycle_policy_text
    else:
        parse(text)
    preview = ctx.session.get(LifecyclePreview, repo.id)
    if preview is not None and preview.status == "IN_PROGRESS":
        raise errors.LifecyclePolicyPreviewInProgressException(repository_name, ctx.registry_id)
    if preview is None:
        preview = LifecyclePreview(repository_id=repo.id, policy_text=text, status="IN_PROGRESS", started_at=ctx.now)
        ctx.session.add(preview)
    else:
        preview.policy_text, preview.status, preview.started_at = text, "IN_PROGRESS", ctx.now
        preview.completed_at = preview.results = preview.summary = preview.failure = None
    ctx.session.flush()
    jobs.enqueue(ctx, "lifecycle_preview",
                 {"account": ctx.scope.account_id, "region": ctx.scope.region, "repository": repo.id})
    return preview


def result_entry(action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {
        "imageDigest": action.image.digest,
        "imagePushedAt": action.image.pushed_at,
        "action": {"type": action.kind.upper()},
        "appliedRulePriority": action.rule.priority,
        "storageClass": (action.image.storage_class or "standard").upper(),
    }
    if action.image.tags:
        out["imageTags"] = list(action.image.tags)
    if action.kind == "transition":
        out["action"]["targetStorageClass"] = "ARCHIVE"
    return out


def summary_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "expiringImageTotalCount": sum(1 for r in results if r["action"]["type"] == "EXPIRE")
    }
    transitioning = sum(1 for r in results if r["action"]["type"] == "TRANSITION")
    if transitioning:
        summary["transitioningImageTotalCounts"] = [{"targetStorageClass": "ARCHIVE",
                                                     "imageTotalCount": transitioning}]
    return summary


def compute(ctx: Context, repo: Repository, text: str) -> list[dict[str, Any]]:
    """The images the policy would act on now: the rules' own choices (referrers that would
    follow an expired subject are housekeeping, not a rule's result)."""
    actions = evaluate(parse(text), image_facts(ctx, repo), ctx.now)
    return [result_entry(a) for a in actions if not a.cascade]


@jobs.handler("lifecycle_preview")
def _run_preview(services: Services, payload: dict[str, Any]) -> None:
    with services.unit(Scope(payload["account"], payload["region"]), write=True) as ctx:
        preview = ctx.session.get(LifecyclePreview, payload["repository"])
        repo = ctx.session.get(Repository, payload["repository"])
        if preview is None or repo is None or preview.status != "IN_PROGRESS":
            return
        try:
            results = compute(ctx, repo, preview.policy_text)
        except errors.EcrError as exc:  # e.g. a stored policy this version no longer accepts
            preview.status, preview.failure = "FAILED", exc.message
        else:
            preview.results, preview.summary = results, summary_of(results)
            preview.status = "COMPLETE"
        preview.completed_at = ctx.now


def _wanted(entry: dict[str, Any], image_ids: list[dict[str, Any]] | None, tag_status: str) -> bool:
    tags = entry.get("imageTags") or []
    if tag_status == "TAGGED" and not tags:
        return False
    if tag_status == "UNTAGGED" and tags:
        return False
    if not image_ids:
        return True
    for wanted in image_ids:
        digest_ok = wanted.get("imageDigest") in (None, entry["imageDigest"])
        tag_ok = wanted.get("imageTag") is None or wanted["imageTag"] in tags
        if digest_ok and tag_ok:
            return True
    return False


def get(
    ctx: Context,
    repository_name: str,
    image_ids: list[dict[str, Any]] | None,
    filt: dict[str, Any] | None,
    next_token: str | None,
    max_results: int | None,
) -> dict[str, Any]:
    repo = repositories.get(ctx, repository_name)
    preview = ctx.session.get(LifecyclePreview, repo.id)
    if preview is None:
        raise errors.LifecyclePolicyPreviewNotFoundException(repository_name, ctx.registry_id)
    out: dict[str, Any] = {
        "registryId": ctx.registry_id,
        "repositoryName": repo.name,
        "lifecyclePolicyText": preview.policy_text,
        "status": preview.status,
    }
    if preview.status != "COMPLETE":
        return out
    tag_status = (filt or {}).get("tagStatus", "ANY")
    results = [r for r in preview.results or [] if _wanted(r, image_ids, tag_status)]
    page, token = pagination.page_list(results, next_token, max_results or PAGE, "GetLifecyclePolicyPreview")
    out.update(previewResults=page, summary=preview.summary, nextToken=token)
    return out
