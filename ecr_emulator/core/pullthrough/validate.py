"""ValidatePullThroughCacheRule: reach the upstream with the rule's credentials, for real.

The check runs outside the request's transaction (``OutsideWork``); it reads the secret as a pull
would (ECR "will retrieve the contents of the Secrets Manager secret, verify the syntax, and then
validate that authentication to the upstream registry is successful") and answers ``isValid``
with the reason in ``failure``, never an error.
"""

from __future__ import annotations

from typing import Any

from ecr_emulator.core import errors
from ecr_emulator.core.context import Context, OutsideWork, Services
from ecr_emulator.core.naming import Scope
from ecr_emulator.core.pullthrough import secrets, upstream
from ecr_emulator.core.pullthrough.client import UpstreamError
from ecr_emulator.storage.models import PullThroughRule


def check(services: Services, scope: Scope, url: str, credential_arn: str | None, role_arn: str | None) -> str | None:
    """Why the upstream cannot be used with these credentials, or None."""
    try:
        with upstream.connect(services, scope, url, credential_arn, role_arn) as client:
            client.check()
    except errors.EcrError as exc:
        return f"{exc.code}: {exc.message}"
    except (secrets.InvalidSecret, UpstreamError) as exc:
        return str(exc)
    return None


def result(ctx: Context, row: PullThroughRule) -> dict[str, Any]:
    """``isValid`` and ``failure`` for the rule (the check itself runs outside the transaction)."""
    key = ("pull-through-validate", ctx.scope, row.key)
    if key not in ctx.carry:
        services, scope, url, arn, role = (ctx.services, ctx.scope, row.upstream_url, row.credential_arn,
                                           row.custom_role_arn)

        def work(carry: dict[Any, Any]) -> None:
            carry[key] = check(services, scope, url, arn, role)

        raise OutsideWork(work)
    reason = ctx.carry[key]
    return {"isValid": reason is None, "failure": reason}
