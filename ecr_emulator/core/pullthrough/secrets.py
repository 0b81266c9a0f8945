"""Upstream credentials: the Secrets Manager secrets ``credentialArn`` names, from ``--secrets-file``.

The file stands in for Secrets Manager: a JSON object mapping each secret ARN to the secret's
value, either the object ECR reads (``{"username": ..., "accessToken": ...}``) or that object as
the JSON text Secrets Manager stores (``SecretString``). It is read again whenever it changed, so
credentials can be rotated (or broken, for a test) while the server runs. What ECR requires of a
secret, and the errors it names when one cannot be used:

- the secret is in the registry's own account and region, else ``UnableToAccessSecretException``;
- it exists, else ``SecretNotFoundException``; the file cannot be read at all:
  ``UnableToAccessSecretException``;
- its value is a JSON object, else ``UnableToDecryptSecretValueException`` (nothing here is
  encrypted; a value that cannot be read as a secret is the nearest thing);
- the object holds string ``username`` and ``accessToken``; checked when the credentials are
  used (``InvalidSecret``), as ECR checks "the syntax" in ValidatePullThroughCacheRule.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any

from ecr_emulator.core import errors
from ecr_emulator.core.naming import Scope


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


class InvalidSecret(Exception):
    """The secret exists but does not hold ``username`` and ``accessToken``."""


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}  # path -> ((mtime in ns, size), parsed)


def load_file(path: str) -> dict[str, Any]:
    """The file's secrets; ValueError (worded for the user) if it is missing or not a JSON object."""
    try:
        stat = os.stat(path)
        key = (stat.st_mtime_ns, stat.st_size)
        with _lock:
            cached = _cache.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must be a JSON object mapping secret ARNs to their values")
    with _lock:
        _cache[path] = (key, data)
    return data


def _region_and_account(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    return (parts[3], parts[4]) if len(parts) > 6 else ("", "")


def value(path: str, scope: Scope, arn: str) -> dict[str, Any]:
    """The secret's value as a JSON object, or the error ECR names."""
    region, account = _region_and_account(arn)
    if (account, region) != (scope.account_id, scope.region):
        raise errors.UnableToAccessSecretException(
            f"The secret '{arn}' is not in the account and region of the registry ({scope.account_id}, "
            f"{scope.region}); pull through cache secrets must be."
        )
    if not path:
        raise errors.SecretNotFoundException(
            f"The secret '{arn}' was not found: no secrets are configured (serve --secrets-file)."
        )
    try:
        secrets = load_file(path)
    except ValueError as exc:
        raise errors.UnableToAccessSecretException(f"The secret '{arn}' could not be read: {exc}") from None
    if arn not in secrets:
        raise errors.SecretNotFoundException(f"The secret '{arn}' was not found.")
    found = secrets[arn]
    if isinstance(found, str):
        try:
            found = json.loads(found)
        except ValueError:
            found = None
    if not isinstance(found, dict):
        raise errors.UnableToDecryptSecretValueException(
            f"The value of the secret '{arn}' could not be read: it is not a JSON object."
        )
    return found


def credentials(path: str, scope: Scope, arn: str) -> Credentials:
    """The username and access token the secret holds; InvalidSecret if it holds no such pair."""
    found = value(path, scope, arn)
    username, token = found.get("username"), found.get("accessToken")
    if not isinstance(username, str) or not isinstance(token, str) or not username or not token:
        raise InvalidSecret(f"The secret '{arn}' must hold a JSON object with the string fields 'username' and "
                            "'accessToken'.")
    return Credentials(username, token)
