"""Who is calling and where: the SigV4 credential names the access key and the region.

A key declared with ``--iam-config`` acts as its IAM user or role. Any other key is the root of
the account it maps to: a 12-digit key id *is* the account, a ``--access-keys`` key maps to its
account, any other key belongs to the default account. With ``--verify-signatures`` the signature
(header or presigned query string) is verified against the declared secret on the emulator clock,
a declared session token must come with it, and undeclared keys are refused as AWS refuses keys it
never issued.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re

import botocore

from ecr_emulator.config import Settings
from ecr_emulator.core import access, errors
from ecr_emulator.core.context import Services
from ecr_emulator.core.iam import sigv4
from ecr_emulator.core.naming import Principal, Scope

_ACCESS_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, as every AWS access key id is
_REGION_LENGTH = 32


def account_for_key(settings: Settings, access_key_id: str) -> str:
    if re.fullmatch(r"[0-9]{12}", access_key_id):
        return access_key_id
    return settings.access_key_accounts.get(access_key_id, settings.default_account)


@functools.cache
def _regions() -> re.Pattern[str]:
    """Every partition's region shape, from botocore's endpoint data."""
    with open(os.path.join(os.path.dirname(botocore.__file__), "data", "endpoints.json")) as fh:
        partitions = json.load(fh)["partitions"]
    return re.compile("|".join(f"(?:{p['regionRegex']})" for p in partitions), re.ASCII)


def _check_region(region: str) -> None:
    if len(region) > _REGION_LENGTH or not _regions().match(region):
        raise errors.InvalidSignatureException("Credential should be scoped to a valid region. ")


def identify(services: Services, wire: sigv4.SignedRequest, body: bytes) -> tuple[Principal, Scope]:
    settings = services.settings
    verify = settings.verify_signatures
    cred = sigv4.read(wire, strict=verify)
    if not _ACCESS_KEY.match(cred.access_key):
        raise errors.UnrecognizedClientException()
    _check_region(cred.region)
    declared = services.iam.get(cred.access_key)
    if verify:
        if declared is None or (declared.session_token or None) != (cred.security_token or None):
            raise errors.UnrecognizedClientException()
        signed = dataclasses.replace(wire, body_sha256=hashlib.sha256(body).hexdigest())
        sigv4.verify(signed, cred, declared.secret, services.clock.now())
    if declared is not None:
        principal = declared.principal
    else:
        principal = access.root_of(account_for_key(settings, cred.access_key), cred.access_key, cred.region)
    return principal, Scope(principal.account_id, cred.region)
