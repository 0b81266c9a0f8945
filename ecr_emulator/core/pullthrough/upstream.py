"""Which registry a rule's upstream is, and how the cache talks to it.

Every upstream is reached over its OCI distribution API (``client.RegistryClient``): at
``https://<host>``, or where ``--upstream-endpoint`` maps the host. One exception: an ECR upstream
(``<account>.dkr.ecr.<region>.amazonaws.com``) that no endpoint maps is a registry this emulator
serves itself (it serves every account and region), so it is read in-process (``LocalRegistry``),
as the rule's role (``customRoleArn``): a role declared with ``--iam-config`` with its identity
policies, otherwise the root of the role's account, as undeclared keys are. Across accounts the
upstream's repository or registry policy must allow ``ecr:BatchGetImage`` and
``ecr:GetDownloadUrlForLayer``, as ECR to ECR requires.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from ecr_emulator.core import access, errors, layers
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.images import query
from ecr_emulator.core.naming import Principal, Scope
from ecr_emulator.core.pullthrough import secrets
from ecr_emulator.core.pullthrough.client import CHUNK, DENIED, NOT_FOUND, RegistryClient, UpstreamError

ECR_HOST = re.compile(r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?")
PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")


def base_url(services: Services, host: str) -> str:
    """Where an upstream host is reached: its ``--upstream-endpoint``, else ``https://host``."""
    return services.settings.upstream_endpoints.get(host.lower(), f"https://{host}")


def local_scope(services: Services, host: str) -> Scope | None:
    """The registry of this emulator an ECR upstream host names, unless an endpoint maps the host."""
    m = ECR_HOST.fullmatch(host.lower())
    if m is None or host.lower() in services.settings.upstream_endpoints:
        return None
    return Scope(m["account"], m["region"])


def connect(services: Services, scope: Scope, host: str, credential_arn: str | None,
            role_arn: str | None) -> RegistryClient | LocalRegistry:
    """A client of the upstream, with the rule's credentials (the secret errors ECR names, or
    ``secrets.InvalidSecret``)."""
    upstream = local_scope(services, host)
    if upstream is not None:
        return LocalRegistry(services, upstream, role_principal(services, role_arn or ""))
    creds = secrets.credentials(services.settings.secrets_file, scope, credential_arn) if credential_arn else None
    return RegistryClient(base_url(services, host), creds, services.settings.upstream_timeout)


def role_principal(services: Services, role_arn: str) -> Principal:
    declared = services.iam.acting_as(role_arn)
    if declared is not None:
        return declared
    parts = role_arn.split(":")
    account = parts[4] if len(parts) > 5 else ""
    return Principal(account, "ecr-pull-through-cache")


class LocalRegistry:
    """An ECR registry of this emulator, answering what ``RegistryClient`` answers."""

    def __init__(self, services: Services, scope: Scope, principal: Principal) -> None:
        self.services, self.scope, self.principal = services, scope, principal

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _allowed(self, ctx: Context, repository: str) -> None:
        for action in PULL_ACTIONS:
            if not access.permits(ctx, access.Need(action, repository)):
                raise UpstreamError(DENIED, f"{self.principal.arn} may not {action} on {repository} in registry "
                                            f"{self.scope.account_id} ({self.scope.region})")

    def check(self) -> None:
        """The registry is this emulator: reachable, and the role is judged per repository."""

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str | None, str]:
        def read(ctx: Context) -> tuple[bytes, str | None, str]:
            self._allowed(ctx, repository)
            try:
                found = query.for_pull(ctx, repository, reference, ":" in reference)
            except errors.RepositoryNotFoundException:
                found = None
            except errors.UpstreamImageFailure as exc:  # the upstream is a cache whose own upstream failed
                raise UpstreamError(DENIED if exc.failure_code == "UpstreamAccessDenied" else NOT_FOUND,
                                    exc.message) from None
            if found is None or found.status != "ACTIVE":
                raise UpstreamError(NOT_FOUND, f"manifest {repository} {reference}: not in registry "
                                               f"{self.scope.account_id} ({self.scope.region})")
            return found.manifest, found.media_type, found.digest

        return self.services.run(self.scope, self.principal, read)

    @contextmanager
    def blob(self, repository: str, digest: str, size: int | None) -> Iterator[Iterator[bytes]]:
        def look(ctx: Context) -> int | None:
            self._allowed(ctx, repository)
            try:
                return layers.pull_blob(ctx, repository, digest, read_through=False).readable
            except errors.RepositoryNotFoundException:
                return None

        if self.services.run(self.scope, self.principal, look) is None:
            raise UpstreamError(NOT_FOUND, f"blob {repository}@{digest}: not in registry {self.scope.account_id}")
        with self.services.blobs.open(digest) as fh:
            yield iter(lambda: fh.read(CHUNK), b"")
