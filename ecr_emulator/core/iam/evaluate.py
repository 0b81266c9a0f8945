"""The one evaluator: IAM's documented decision for one request, as a pure function.

1. An explicit Deny in any policy that applies wins.
2. In the resource's own account, an Allow from an identity policy *or* a resource-based policy
   (the repository policy, the registry policy) suffices. A resource-based policy that names only
   the account (``"AWS": "<account>"`` or ``...:root``) delegates to the account's identity
   policies and grants nothing by itself, except to the account root.
3. Across accounts, the caller's identity policy *and* a resource-based policy must both allow.

The account root of an undeclared access key is not judged by identity policies: it may do
anything its account's resource-based policies do not explicitly deny. ``ecr:GetAuthorizationToken``
is judged by identity policies alone. Under ``REGISTRY_POLICY_SCOPE`` V1 the registry policy
speaks only for ``ecr:ReplicateImage``, ``ecr:BatchImportUpstreamImage`` and ``ecr:CreateRepository``;
under V2 it applies to every request like a resource policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ecr_emulator.core.iam.conditions import Keys
from ecr_emulator.core.iam.policy import ACCOUNT, DIRECT, Policy, Request
from ecr_emulator.core.naming import Principal

ALLOW = "allow"
EXPLICIT_IDENTITY = "explicit-identity-deny"
EXPLICIT_RESOURCE = "explicit-resource-deny"
NO_IDENTITY = "no-identity-allow"
NO_RESOURCE = "no-resource-allow"
_WHY = {  # IAM's words for each kind of denial (ECR-BEHAVIOUR 1.2a)
    EXPLICIT_IDENTITY: "with an explicit deny in an identity-based policy",
    EXPLICIT_RESOURCE: "with an explicit deny in a resource-based policy",
    NO_IDENTITY: "because no identity-based policy allows the {action} action",
    NO_RESOURCE: "because no resource-based policy allows the {action} action",
}

IDENTITY_ONLY = frozenset({"ecr:getauthorizationtoken"})
V1_REGISTRY_ACTIONS = frozenset({"ecr:replicateimage", "ecr:batchimportupstreamimage", "ecr:createrepository"})


@dataclass(frozen=True)
class Decision:
    outcome: str
    principal_arn: str
    action: str
    resource: str

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOW

    @property
    def message(self) -> str:
        """The AccessDenied text, as IAM words it."""
        return (f"User: {self.principal_arn} is not authorized to perform: {self.action} on resource: "
                f"{self.resource} " + _WHY[self.outcome].format(action=self.action))


def _denies(policies: Sequence[Policy], request: Request) -> bool:
    return any(st.applies(request) for p in policies for st in p.for_action(request.action)[0])


def _identity_allows(policies: Sequence[Policy], request: Request) -> bool:
    return any(st.applies(request) for p in policies for st in p.for_action(request.action)[1])


def _resource_grant(policies: Sequence[Policy], request: Request) -> str | None:
    best = None
    for p in policies:
        for st in p.for_action(request.action)[1]:
            if named := st.applies(request):
                if named == DIRECT or request.principal.is_root:
                    return DIRECT
                best = ACCOUNT
    return best


def decide(
    principal: Principal,
    action: str,
    resource: str,
    resource_account: str,
    keys: Keys,
    identity: Sequence[Policy] | None,
    repository: Policy | None = None,
    registry: Policy | None = None,
    registry_scope: str = "V2",
) -> Decision:
    """Allow or deny ``action`` on ``resource`` (an ARN, or ``*``) for ``principal``.

    ``identity`` is None for the account root (not judged by identity policies), else the
    principal's identity policies (possibly none).
    """
    request = Request(principal, action.lower(), resource, keys)

    def verdict(outcome: str) -> Decision:
        return Decision(outcome, principal.arn, action, resource)

    resource_policies: list[Policy] = []
    if request.action not in IDENTITY_ONLY:
        if repository is not None:
            resource_policies.append(repository)
        if registry is not None and (registry_scope != "V1" or request.action in V1_REGISTRY_ACTIONS):
            resource_policies.append(registry)
    if identity and _denies(identity, request):
        return verdict(EXPLICIT_IDENTITY)
    if _denies(resource_policies, request):
        return verdict(EXPLICIT_RESOURCE)
    identity_allows = identity is None or _identity_allows(identity, request)
    if principal.account_id == resource_account:
        if identity_allows or _resource_grant(resource_policies, request) == DIRECT:
            return verdict(ALLOW)
        return verdict(NO_IDENTITY)
    if not identity_allows:
        return verdict(NO_IDENTITY)
    if _resource_grant(resource_policies, request) is not None:
        return verdict(ALLOW)
    return verdict(NO_RESOURCE)
