"""OCI distribution errors: every code registered once with its status, and the one table that
maps ``core`` exceptions onto them. Bodies are ``{"errors": [{"code", "message", "detail"}]}``."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from ecr_emulator.core import errors
from ecr_emulator.core.images.delete import ImageReferencedByIndex

STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "RANGE_INVALID": 416,
    "UNKNOWN": 500,  # Distribution's code for failures of the registry itself (a full disk)
}


class OciError(Exception):
    def __init__(self, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}
        self.status = status or STATUS[code]


def http_oci_error(status: int, message: str) -> OciError:
    """An HTTP-level refusal (bad method, bad request line, oversized body) as an OCI error."""
    code = {405: "UNSUPPORTED", 413: "SIZE_INVALID", 416: "RANGE_INVALID"}.get(status, "UNSUPPORTED")
    return OciError(code, message, status=status if 400 <= status < 500 else 400)


# core exception -> OCI code. The message is the exception's own ECR wording unless overridden.
CORE_TO_OCI: dict[type[errors.EcrError], tuple[str, str | None]] = {
    errors.RepositoryNotFoundException: ("NAME_UNKNOWN", None),
    errors.ImageNotFoundException: ("MANIFEST_UNKNOWN", "Requested image not found"),
    errors.LayersNotFoundException: ("MANIFEST_BLOB_UNKNOWN", None),
    errors.ReferencedImagesNotFoundException: ("MANIFEST_BLOB_UNKNOWN", None),
    errors.ImageTagAlreadyExistsException: ("TAG_INVALID", None),
    errors.InvalidParameterException: ("MANIFEST_INVALID", None),
    errors.ImageDigestDoesNotMatchException: ("DIGEST_INVALID", None),
    errors.InvalidLayerException: ("DIGEST_INVALID", None),
    errors.UploadNotFoundException: ("BLOB_UPLOAD_UNKNOWN", None),
    errors.LimitExceededException: ("DENIED", None),
    errors.AccessDeniedException: ("DENIED", None),
    errors.ImageArchivedException: ("MANIFEST_UNKNOWN", None),
    errors.BlobUnknown: ("BLOB_UNKNOWN", None),
    errors.ImageAlreadyExistsException: ("MANIFEST_INVALID", None),
    errors.LayerAlreadyExistsException: ("BLOB_UPLOAD_INVALID", None),
    errors.EmptyUploadException: ("BLOB_UPLOAD_INVALID", None),
    errors.InvalidLayerPartException: ("BLOB_UPLOAD_INVALID", None),
    ImageReferencedByIndex: ("UNSUPPORTED", None),
    errors.UnableToGetUpstreamImageException: ("DENIED", None),
    errors.UnableToGetUpstreamLayerException: ("BLOB_UNKNOWN", None),
}

# A pull through cache that could not get an image from upstream (ECR-BEHAVIOUR 11.2): the image is
# not there, or the caller may not import it, as ECR's "Requested image not found"; an upstream that
# refused our credentials as ECR's observed "denied: The authentication to the upstream registry
# failed..."; the rest name the cause after ECR's words.
UPSTREAM_TO_OCI = {
    "ImageNotFound": "MANIFEST_UNKNOWN",
    "UpstreamAccessDenied": "DENIED",
    "UpstreamTooManyRequests": "TOOMANYREQUESTS",
    "UpstreamUnavailable": "MANIFEST_UNKNOWN",
}


def from_core(exc: errors.EcrError) -> OciError:
    if isinstance(exc, errors.UpstreamImageFailure):
        return OciError(UPSTREAM_TO_OCI.get(exc.failure_code, "MANIFEST_UNKNOWN"), exc.message)
    for cls in type(exc).__mro__:
        if cls in CORE_TO_OCI:
            code, message = CORE_TO_OCI[cls]
            return OciError(code, message or exc.message)
    return OciError("UNSUPPORTED", exc.message)


def response(err: OciError, method: str = "GET") -> Response:
    body = {"errors": [{"code": err.code, "message": err.message, "detail": err.detail}]}
    text = "" if method == "HEAD" else json.dumps(body)
    resp = Response(text, status=err.status, content_type="application/json; charset=utf-8")
    for k, v in err.headers.items():
        resp.headers[k] = v
    return resp

