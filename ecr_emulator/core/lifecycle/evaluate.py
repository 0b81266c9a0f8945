"""The lifecycle evaluator: a pure function of (policy, the repository's images, now).

Preview and execution both call ``evaluate``; nothing here touches the database. The
semantics (ECR-BEHAVIOUR 7.4) in one place:

* every rule sees the same snapshot; a rule's candidates are computed from *every* image its
  selection matches, including images earlier rules matched or acted on;
* an image may only be acted on by the first rule (lowest ``rulePriority``) whose selection
  matches it, acted on or not;
* tag lists are an AND over entries and an ANY over an image's tags; patterns are globs over
  the whole tag, prefixes are ``startswith``;
* images an index of the repository references are never expired or archived while it exists
  (they still count); referrers of an expired or archived subject follow it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from ecr_emulator.core.lifecycle.policy import Policy, Rule
from ecr_emulator.core.naming import wildcard_regex


@dataclass(frozen=True)
class ImageFacts:
    """What the evaluator may know about one image."""

    id: int
    digest: str
    tags: tuple[str, ...]
    pushed_at: float
    status: str = "ACTIVE"  # ACTIVE | ARCHIVED | ACTIVATING
    last_pulled_at: float | None = None
    last_archived_at: float | None = None
    last_activated_at: float | None = None
    protected: bool = False  # referenced by an index of the repository
    subject: str | None = None  # digest of the OCI subject, for referrers

    @property
    def storage_class(self) -> str | None:
        """standard / archive; an image being restored belongs to neither until it is done."""
        return {"ACTIVE": "standard", "ARCHIVED": "archive"}.get(self.status)

    @property
    def age_from(self) -> float:
        """Push time, or the restore time of an image brought back from the archive."""
        if self.last_activated_at is not None and self.last_activated_at > self.pushed_at:
            return self.last_activated_at
        return self.pushed_at

    @property
    def pulled_from(self) -> float:
        """Last recorded pull; never pulled -> push time; restored and not pulled since -> restore time."""
        if self.last_activated_at is not None and (
            self.last_pulled_at is None or self.last_pulled_at < self.last_activated_at
        ):
            return self.last_activated_at
        return self.last_pulled_at if self.last_pulled_at is not None else self.pushed_at


@dataclass(frozen=True)
class Action:
    image: ImageFacts
    rule: Rule
    kind: str  # expire | transition
    cascade: bool = False  # a referrer following its subject, not chosen by a rule itself


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    return wildcard_regex(pattern)


def selects(rule: Rule, image: ImageFacts) -> bool:
    if image.storage_class != rule.storage_class:
        return False
    if rule.tag_status == "any":
        return True
    if rule.tag_status == "untagged":
        return not image.tags
    if not image.tags:
        return False
    if rule.prefixes:
        return all(any(t.startswith(p) for t in image.tags) for p in rule.prefixes)
    return all(any(_glob(p).fullmatch(t) for t in image.tags) for p in rule.patterns)


def candidates(rule: Rule, matches: list[ImageFacts], now: float) -> list[ImageFacts]:
    if rule.count_type == "imageCountMoreThan":
        newest_first = sorted(matches, key=lambda i: (i.age_from, i.id), reverse=True)
        return newest_first[rule.count_number:]
    limit = now - rule.age_seconds
    if rule.count_type == "sinceImagePushed":
        return [i for i in matches if i.age_from < limit]
    if rule.count_type == "sinceImagePulled":
        return [i for i in matches if i.pulled_from < limit]
    if rule.count_type == "sinceImageTransitioned":
        return [i for i in matches if i.last_archived_at is not None and i.last_archived_at < limit]
    raise ValueError(f"unknown countType {rule.count_type}")


def evaluate(policy: Policy, images: Iterable[ImageFacts], now: float) -> list[Action]:
    """Every action the policy takes now, oldest images first; referrer cascades included."""
    images = list(images)
    claimed: set[int] = set()
    actions: list[Action] = []
    for rule in policy.rules:
        matches = [i for i in images if selects(rule, i)]
        for image in candidates(rule, matches, now):
            if image.id not in claimed and not image.protected:
                actions.append(Action(image, rule, rule.action))
        claimed.update(i.id for i in matches)
    actions.sort(key=lambda a: (a.image.age_from, a.image.id))
    return actions + _cascade(actions, images)


def _cascade(actions: list[Action], images: list[ImageFacts]) -> list[Action]:
    """Referrers (signatures, SBOMs...) go where their subject goes, recursively."""
    by_subject: dict[str, list[ImageFacts]] = {}
    for image in images:
        if image.subject:
            by_subject.setdefault(image.subject, []).append(image)
    acted = {a.image.id for a in actions}
    out: list[Action] = []
    queue = list(actions)
    while queue:
        parent = queue.pop(0)
        for ref in by_subject.get(parent.image.digest, []):
            if ref.id in acted or ref.protected:
                continue
            if parent.kind == "transition" and ref.storage_class != "standard":
                continue
            action = Action(ref, parent.rule, parent.kind, cascade=True)
            acted.add(ref.id)
            out.append(action)
            queue.append(action)
    return out
