"""Errors are types: one class per ECR error shape, carrying AWS-worded messages.

The API renders them as ``{"__type": <class name>, "message": ...}``; the registry maps the
same classes to OCI error codes through one table (``registry/errors.py``). Constructors take
the facts and build ECR's wording, so call sites never spell messages themselves.
"""

from __future__ import annotations

from typing import Any


class EcrError(Exception):
    """Base of every error a client can see. ``code`` is the ECR shape name."""

    http_status = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = {k: v for k, v in extra.items() if v is not None}

    @property
    def code(self) -> str:
        return type(self).__name__


def _image_id_text(image_id: dict[str, Any]) -> str:
    digest = image_id.get("imageDigest")
    tag = image_id.get("imageTag")
    d = f"'{digest}'" if digest is not None else "null"
    t = f"'{tag}'" if tag is not None else "null"
    return f"{{imageDigest:{d}, imageTag:{t}}}"


# ---- protocol-level errors (not in the ECR model, standard for AWS JSON services) ----


class SerializationException(EcrError):
    pass


class UnknownOperationException(EcrError):
    pass


class RequestTooLarge(EcrError):
    """A body over the API's limit (HTTP 413), refused before any of it is parsed."""

    http_status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body too large: the limit is {limit} bytes")

    @property
    def code(self) -> str:
        return "SerializationException"


class StorageFullException(EcrError):
    """The data directory (or the database) has no room left: writes fail and say so."""

    http_status = 500

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"ecr-emulator could not store the request's data: {detail}. Free space where its data "
            "directory (or database) lives and try again; reads keep working meanwhile."
        )

    @property
    def code(self) -> str:
        return "ServerException"


class MissingAuthenticationTokenException(EcrError):
    http_status = 403


class IncompleteSignatureException(EcrError):
    """A SigV4 ``Authorization`` header or query string that lacks parts or is garbled."""


class InvalidSignatureException(EcrError):
    """A SigV4 signature that does not verify, or is outside its time window."""

    http_status = 403

    @classmethod
    def mismatch(cls) -> InvalidSignatureException:
        return cls("The request signature we calculated does not match the signature you provided. Check your "
                   "AWS Secret Access Key and signing method. Consult the service documentation for details.")


class UnrecognizedClientException(EcrError):
    """An access key (or session token) nobody issued."""

    def __init__(self, message: str = "The security token included in the request is invalid.") -> None:
        super().__init__(message)


class NotImplementedException(EcrError):
    """An operation the model has and this emulator has not built yet (never a 500)."""

    http_status = 501

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"The operation '{operation}' is part of the Amazon ECR API but is not implemented "
            "by ecr-emulator yet."
        )


# ---- modelled ECR errors ----


class ServerException(EcrError):
    http_status = 500


class InvalidParameterException(EcrError):
    @classmethod
    def constraint(cls, where: str, reason: str) -> InvalidParameterException:
        return cls(f"Invalid parameter at '{where}' failed to satisfy constraint: '{reason}'")


class ValidationException(EcrError):
    pass


class RepositoryNotFoundException(EcrError):
    def __init__(self, name: str, registry_id: str) -> None:
        super().__init__(
            f"The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
        )


class RepositoryAlreadyExistsException(EcrError):
    def __init__(self, name: str, registry_id: str) -> None:
        super().__init__(
            f"The repository with name '{name}' already exists in the registry with id '{registry_id}'"
        )


class RepositoryNotEmptyException(EcrError):
    def __init__(self, name: str, registry_id: str) -> None:
        super().__init__(
            f"The repository with name '{name}' in registry with id '{registry_id}' cannot be deleted "
            "because it still contains images"
        )


class ImageNotFoundException(EcrError):
    def __init__(self, image_id: dict[str, Any], name: str, registry_id: str) -> None:
        super().__init__(
            f"The image with imageId {_image_id_text(image_id)} does not exist within the repository "
            f"with name '{name}' in the registry with id '{registry_id}'"
        )


class ImageAlreadyExistsException(EcrError):
    def __init__(self, digest: str, tag: str | None, name: str, registry_id: str) -> None:
        super().__init__(
            f"Image with digest '{digest}' and tag '{tag}' already exists in the repository with "
            f"name '{name}' in registry with id '{registry_id}'"
        )


class ImageTagAlreadyExistsException(EcrError):
    def __init__(self, tag: str, name: str, registry_id: str) -> None:
        super().__init__(
            f"The image tag '{tag}' already exists in the '{name}' repository and cannot be "
            "overwritten because the repository is immutable."
        )
        self.tag = tag
        self.repository = name


class ImageDigestDoesNotMatchException(EcrError):
    def __init__(self, given: str, actual: str) -> None:
        super().__init__(
            f"Invalid parameter at 'imageDigest' failed to satisfy constraint: 'The provided digest "
            f"{given} does not match the digest of the image manifest {actual}'"
        )


class LayersNotFoundException(EcrError):
    pass


class ReferencedImagesNotFoundException(EcrError):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            "The manifest list is referencing an image that does not exist: [" + ", ".join(missing) + "]"
        )
        self.missing = missing


class LimitExceededException(EcrError):
    pass


class TooManyTagsException(EcrError):
    pass


class InvalidTagParameterException(EcrError):
    pass


class KmsException(EcrError):
    pass


class UploadNotFoundException(EcrError):
    def __init__(self, upload_id: str, name: str, registry_id: str) -> None:
        super().__init__(
            f"Upload with id '{upload_id}' does not exist in the repository with name '{name}' "
            f"in the registry with id '{registry_id}'"
        )


class InvalidLayerPartException(EcrError):
    def __init__(self, message: str, *, registry_id: str, name: str, upload_id: str, last_valid: int) -> None:
        super().__init__(
            message,
            registryId=registry_id,
            repositoryName=name,
            uploadId=upload_id,
            lastValidByteReceived=last_valid,
        )
        self.last_valid = last_valid


class InvalidLayerException(EcrError):
    pass


class LayerPartTooSmallException(EcrError):
    pass


class LayerAlreadyExistsException(EcrError):
    pass


class EmptyUploadException(EcrError):
    pass


class LayerInaccessibleException(EcrError):
    pass


class ImageArchivedException(EcrError):
    pass


class ImageStorageClassUpdateNotSupportedException(EcrError):
    pass


class LifecyclePolicyNotFoundException(EcrError):
    def __init__(self, name: str, registry_id: str) -> None:
        super().__init__(
            f"Lifecycle policy does not exist for the repository with name '{name}' in the registry "
            f"with id '{registry_id}'"
        )


class LifecyclePolicyPreviewNotFoundException(EcrError):
    def __init__(self, name: str, registry_id: str) -> None:
        super().__init__(
            f"There is no dry run for this repository with name '{name}' in the registry with id "
            f"'{registry_id}'"
        )


class LifecyclePolicyPreviewInProgressException(EcrError):
    def __init__(self, name: str, registry_id: str) -> None:
        super().__init__(
            f"A lifecycle policy preview is already in progress for the repository with name '{name}' "
            f"in the registry with id '{registry_id}'"
        )


class RepositoryPolicyNotFoundException(EcrError):
    def __init__(self, name: str, registry_id: str) -> None:
        super().__init__(
            f"Repository policy does not exist for the repository with name '{name}' in the registry "
            f"with id '{registry_id}'"
        )


class RegistryPolicyNotFoundException(EcrError):
    def __init__(self, registry_id: str) -> None:
        super().__init__(f"Registry policy does not exist in the registry with id '{registry_id}'")


class ScanNotFoundException(EcrError):
    def __init__(self, image_id: dict[str, Any], name: str, registry_id: str) -> None:
        super().__init__(
            f"Image scan does not exist for the image with '{_image_id_text(image_id)}' in the "
            f"repository with name '{name}' in the registry with id '{registry_id}'"
        )


class UnsupportedImageTypeException(EcrError):
    pass


class ReplicationBackfillInProgressException(EcrError):
    pass


class ReplicationBackfillNotFoundException(EcrError):
    pass


class ReplicationBackfillInvalidStatusException(EcrError):
    pass


class ExclusionAlreadyExistsException(EcrError):
    pass


class ExclusionNotFoundException(EcrError):
    pass


class SigningConfigurationNotFoundException(EcrError):
    def __init__(self, registry_id: str) -> None:
        super().__init__(f"Signing configuration does not exist in the registry with id '{registry_id}'")


class TemplateAlreadyExistsException(EcrError):
    pass


class TemplateNotFoundException(EcrError):
    pass


class PullThroughCacheRuleAlreadyExistsException(EcrError):
    pass


class PullThroughCacheRuleNotFoundException(EcrError):
    pass


class UnsupportedUpstreamRegistryException(EcrError):
    pass


class SecretNotFoundException(EcrError):
    pass


class UnableToAccessSecretException(EcrError):
    pass


class UnableToDecryptSecretValueException(EcrError):
    pass


class UnableToGetUpstreamImageException(EcrError):
    pass


class UnableToGetUpstreamLayerException(EcrError):
    pass


class UpstreamImageFailure(EcrError):
    """A pull through cache could not get an image from its upstream registry. Not an API error by
    itself: BatchGetImage reports it per image with ``failure_code`` (ECR's ``ImageFailureCode``), the
    registry as an OCI error (``registry/errors.py``)."""

    def __init__(self, failure_code: str, message: str) -> None:
        super().__init__(message)
        self.failure_code = failure_code  # ImageNotFound | UpstreamAccessDenied | UpstreamTooManyRequests | ...


# ---- registry-only situations that have no API twin ----


class AccessDeniedException(EcrError):
    http_status = 400


class BlobUnknown(EcrError):
    """A blob the repository does not hold (registry only; the API says LayersNotFound)."""


def from_storage_failure(exc: BaseException) -> EcrError | None:
    """The client-facing error for a failure of the disk or database underneath a request, or
    None if ``exc`` is something else (a bug, reported as an internal error)."""
    import errno

    from ecr_emulator.storage.blobstore import BlobStoreError

    if isinstance(exc, BlobStoreError):
        failure = ServerException(f"ecr-emulator could not use its blob store: {exc}. Try again when the "
                                  "object store is reachable.")
        failure.registry_status = 503  # type: ignore[attr-defined]
        return failure
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullException(f"no space left on device ({exc.filename or 'data directory'})")
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    text = str(orig if orig is not None else exc).lower()
    if state in ("53100", "53400") or "database or disk is full" in text or "disk i/o error" in text:
        return StorageFullException(f"the database could not write ({str(orig or exc).strip()})")
    return None


def all_error_classes() -> dict[str, type[EcrError]]:
    """Every concrete error by ECR shape name, for tests that check them against the model."""
    out: dict[str, type[EcrError]] = {}
    stack = [EcrError]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            out[sub.__name__] = sub
            stack.append(sub)
    return out
