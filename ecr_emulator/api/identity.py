"""Who is calling and where: the SigV4 ``Authorization`` header names the access key and region.

Signatures are not verified (the emulator has no secret keys to check them against); the
access key decides the account: a 12-digit key id *is* the account, a configured key maps to
its account, any other key belongs to the default account.
"""

from __future__ import annotations

import re

from ecr_emulator.config import Settings
from ecr_emulator.core import errors
from ecr_emulator.core.naming import Principal, Scope

# AWS region names (us-east-1, us-gov-west-1, eu-isoe-west-1, eusc-de-east-1...). A credential
# scope naming anything else is refused as AWS refuses it, before the name is stored anywhere.
ACCESS_KEY = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}")
REGION = re.compile(r"[a-z]{2,4}(-[a-z]{1,10}){1,3}-[0-9]{1,2}")
_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/\s,]+)/(?P<date>\d{8})/(?P<region>[^/\s,]+)/(?P<service>[^/\s,]+)/")


def account_for_key(settings: Settings, access_key_id: str) -> str:
    if re.fullmatch(r"[0-9]{12}", access_key_id):
        return access_key_id
    return settings.access_key_accounts.get(access_key_id, settings.default_account)


def identify(settings: Settings, authorization: str | None) -> tuple[Principal, Scope]:
    if not authorization:
        raise errors.MissingAuthenticationTokenException("Missing Authentication Token")
    if not authorization.startswith("AWS4-HMAC-SHA256"):
        raise errors.MissingAuthenticationTokenException(
            "Authorization header requires a SigV4 'AWS4-HMAC-SHA256 Credential=...' value"
        )
    m = _CREDENTIAL.search(authorization)
    if not m:
        raise errors.MissingAuthenticationTokenException(
            "Authorization header requires 'Credential' parameter of the form KEY/DATE/REGION/SERVICE/aws4_request"
        )
    key, region = m["key"], m["region"]
    if not ACCESS_KEY.fullmatch(key):
        raise errors.UnrecognizedClientException()
    if not REGION.fullmatch(region):
        raise errors.InvalidSignatureException(f"Credential should be scoped to a valid region, not '{region}'. ")
    account = account_for_key(settings, key)
    return Principal(account, key), Scope(account, region)
