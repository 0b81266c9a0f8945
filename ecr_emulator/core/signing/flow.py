"""Signing on push: the ``ImagePushed`` subscriber, the durable signing job, and the statuses.

A push to a repository that signing rules cover marks the image ``IN_PROGRESS`` once per distinct
signing profile and queues a ``sign-image`` job, in the push's own transaction. Which pushes sign:

- a new image, and an archived image pushed again (a restore: its old signatures may be archived
  with it), and a tag put on an image that this profile has not signed yet (an image pushed before
  the configuration existed, or whose signing failed); a tag on an image the profile already signed
  (COMPLETE, its signature still there) signs nothing again;
- never a replicated copy: ECR signs with the identity of the principal that pushed, and replication
  is no principal's push. The source's signatures are referrers and travel with their subject;
- never a Notary Project signature itself (it would sign its own signatures without end).

Whether the pusher may sign is judged at push time, with the push's own request context, as ECR's
call to AWS Signer uses the pusher's identity: ``signer:SignPayload`` on the profile ARN, by the
pusher's identity policies (``--iam-config``; an account root may). The job then either records
that failure, or makes the Notary Project signature and stores it as an OCI referrer through the
same code a push runs (blobs staged and committed as an upload is, the manifest through
``put_image``), and marks the status COMPLETE, in one transaction.

ECR does not document its signing failure codes; ours, each with a ``failureReason`` naming the
cause, are ``ACCESS_DENIED`` (the pusher may not ``signer:SignPayload`` the profile, which includes
a profile of another account: the emulator models no Signer profile permissions),
``SIGNING_PROFILE_NOT_FOUND`` (the profile is in another region or partition: Signer is regional),
``IMAGE_ARCHIVED`` (the image was archived before its signing ran) and ``LIMIT_EXCEEDED`` (the
repository holds the maximum number of images, signatures count too).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from ecr_emulator import __version__
from ecr_emulator.core import access, errors, jobs, repositories, uploads
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.events import ImagePushed
from ecr_emulator.core.images import lookup
from ecr_emulator.core.images import put as image_put
from ecr_emulator.core.manifests import sha256_digest
from ecr_emulator.core.naming import Principal, Scope
from ecr_emulator.core.signing import config, keys, notation
from ecr_emulator.storage.models import Image, ImageSigning, Repository

log = logging.getLogger(__name__)
JOB = "sign-image"
SIGN_ACTION = "signer:SignPayload"
ACCESS_DENIED = "ACCESS_DENIED"
PROFILE_NOT_FOUND = "SIGNING_PROFILE_NOT_FOUND"
IMAGE_ARCHIVED = "IMAGE_ARCHIVED"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
AGENT = f"ecr-emulator/{__version__}"


def on_push(ctx: Context, event: ImagePushed) -> None:
    repo, image = event.repository, event.image
    if event.kind == "replicated" or image.status != "ACTIVE" or image.artifact_type == notation.SIGNATURE_ARTIFACT_TYPE:
        return
    for arn in config.profiles_for(ctx, repo.name):
        row = ctx.session.get(ImageSigning, (image.id, arn))
        if row is not None and row.status == "COMPLETE" and _signature_kept(ctx, repo, image, row):
            continue
        if row is None:
            row = ImageSigning(image_id=image.id, profile_arn=arn)
            ctx.session.add(row)
        row.status, row.failure_code, row.failure_reason = "IN_PROGRESS", None, None
        row.signature_digest, row.updated_at = None, ctx.now
        ctx.session.flush()
        payload = {"account": ctx.scope.account_id, "region": ctx.scope.region, "image": image.id, "profile": arn,
                   "failure": _refusal(ctx, arn)}
        jobs.enqueue(ctx, JOB, payload, dedupe_key=f"sign:{image.id}:{arn}")


def _signature_kept(ctx: Context, repo: Repository, image: Image, row: ImageSigning) -> bool:
    """Whether the signature this profile made is still an active referrer of the image."""
    if row.signature_digest is None:
        return False
    signature = lookup.by_digest(ctx, repo, row.signature_digest)
    return signature is not None and signature.status == "ACTIVE" and signature.subject_digest == image.digest


def _refusal(ctx: Context, arn: str) -> list[str] | None:
    """[failure code, reason] if the pusher cannot have the image signed with ``arn``, else None."""
    profile = keys.parse_profile(arn)
    if profile is None or not profile.reachable_from(ctx.scope):
        return [PROFILE_NOT_FOUND, f"Signing profile {arn} was not found in region {ctx.scope.region}: AWS Signer "
                                   "signing profiles are regional, and pushes are signed in the registry's region."]
    decision = access.decide_foreign(ctx, SIGN_ACTION, arn, profile.account_id)
    if not decision.allowed:
        return [ACCESS_DENIED, decision.message]
    return None


def statuses(ctx: Context, repository_name: str, image_id: dict[str, Any]) -> dict[str, Any]:
    """DescribeImageSigningStatus: one status per signing profile the image was sent to."""
    repo = repositories.get(ctx, repository_name)
    image = lookup.require(ctx, repo, image_id)
    rows = ctx.session.scalars(select(ImageSigning).where(ImageSigning.image_id == image.id)
                               .order_by(ImageSigning.profile_arn))
    out = []
    for row in rows:
        status: dict[str, Any] = {"signingProfileArn": row.profile_arn, "status": row.status}
        if row.status == "FAILED":
            status["failureCode"], status["failureReason"] = row.failure_code, row.failure_reason
        out.append(status)
    return {"repositoryName": repo.name, "imageId": lookup.echo_id(image, image_id), "registryId": ctx.registry_id,
            "signingStatuses": out}


# ---- the job ----


class SigningFailed(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _pending(ctx: Context, payload: dict[str, Any]) -> tuple[Image, ImageSigning] | None:
    """The image and its status row, if the image still waits for this signing."""
    image = ctx.session.get(Image, payload["image"])
    row = ctx.session.get(ImageSigning, (payload["image"], payload["profile"]))
    if image is None or row is None or row.status != "IN_PROGRESS":
        return None  # deleted meanwhile (its status went with it), or a reset
    return image, row


def _store_blob(ctx: Context, repo: Repository, data: bytes) -> dict[str, Any]:
    """Put ``data`` in the repository the way a client's upload gets there (staged, verified,
    placed under the blob's lock, linked); returns its descriptor fields."""
    upload = uploads.begin(ctx, repo)
    uploads.upload_part(ctx, repo.name, upload.id, 0, len(data) - 1, data)
    digest = uploads.commit(ctx, repo, upload, sha256_digest(data), exists_ok=True)
    return {"digest": digest, "size": len(data)}


def _sign(ctx: Context, payload: dict[str, Any], material: keys.SigningMaterial) -> None:
    pending = _pending(ctx, payload)
    if pending is None:
        return
    image, row = pending
    if image.status != "ACTIVE":
        raise SigningFailed(IMAGE_ARCHIVED, f"The image with digest '{image.digest}' was archived before it could be "
                                            "signed; push it again to have it signed.")
    repo = repositories.get(ctx, ctx.session.get(Repository, image.repository_id).name, for_update=True)
    target = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
    envelope = notation.envelope(material, target, ctx.now, AGENT)
    _store_blob(ctx, repo, notation.EMPTY_CONFIG)
    layer = {"mediaType": notation.ENVELOPE_MEDIA_TYPE, **_store_blob(ctx, repo, envelope)}
    manifest = notation.signature_manifest(target, layer, material.thumbprints(), ctx.now)
    stored = image_put.put_image(ctx, repo.name, manifest, notation.OCI_MANIFEST, idempotent=True)
    row.status, row.signature_digest, row.updated_at = "COMPLETE", stored.image.digest, ctx.now


def _fail(ctx: Context, payload: dict[str, Any], code: str, reason: str) -> None:
    pending = _pending(ctx, payload)
    if pending is not None:
        _, row = pending
        row.status, row.failure_code, row.failure_reason, row.updated_at = "FAILED", code, reason, ctx.now


@jobs.handler(JOB)
def _sign_job(services: Services, payload: dict[str, Any]) -> None:
    scope = Scope(payload["account"], payload["region"])
    failure = payload.get("failure")
    if failure is None:
        profile = keys.parse_profile(payload["profile"])
        assert profile is not None  # checked when the push queued this job
        material = keys.material(services, profile)
        try:
            services.run(scope, Principal(scope.account_id, "signing"), lambda ctx: _sign(ctx, payload, material),
                         write=True)
            return
        except SigningFailed as exc:
            failure = [exc.code, exc.reason]
        except errors.LimitExceededException as exc:
            failure = [LIMIT_EXCEEDED, exc.message]
    log.info("signing image %s with %s failed: %s", payload["image"], payload["profile"], failure[1])
    services.run(scope, None, lambda ctx: _fail(ctx, payload, failure[0], failure[1]), write=True)
