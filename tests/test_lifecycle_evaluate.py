"""The evaluator as a pure function: the User Guide's worked examples and every count type."""

from __future__ import annotations

import json

from ecr_emulator.core.lifecycle.evaluate import ImageFacts, evaluate
from ecr_emulator.core.lifecycle.policy import parse

DAY = 86400.0
NOW = 2_000_000_000.0


def policy(*rules: dict) -> str:
    out = []
    for i, rule in enumerate(rules, start=1):
        rule = dict(rule)
        action = rule.pop("action", {"type": "expire"})
        out.append({"rulePriority": rule.pop("priority", i), "selection": rule, "action": action})
    return json.dumps({"rules": out})


def img(i: int, tags: list[str], days: float, **kw) -> ImageFacts:
    return ImageFacts(id=i, digest=f"sha256:{i:064x}", tags=tuple(tags), pushed_at=NOW - days * DAY, **kw)


def expired(text: str, images: list[ImageFacts], now: float = NOW) -> list[str]:
    names = {i.id: chr(ord("A") + i.id - 1) for i in images}
    return sorted(names[a.image.id] for a in evaluate(parse(text), images, now) if a.kind == "expire")


def tagged(patterns=None, prefixes=None, **kw) -> dict:
    sel = {"tagStatus": "tagged", **kw}
    if patterns:
        sel["tagPatternList"] = patterns
    if prefixes:
        sel["tagPrefixList"] = prefixes
    return sel


COUNT1 = {"countType": "imageCountMoreThan", "countNumber": 1}


def test_example_a_first_rule_claims_its_matches():
    images = [img(1, ["beta-1", "prod-1"], 10), img(2, ["beta-2", "prod-2"], 9), img(3, ["beta-3"], 8)]
    text = policy(tagged(["prod*"], **COUNT1), tagged(["beta*"], **COUNT1))
    assert expired(text, images) == ["A"]


def test_example_b_order_of_rules_matters():
    images = [img(1, ["beta-1", "prod-1"], 10), img(2, ["beta-2", "prod-2"], 9), img(3, ["beta-3"], 8)]
    text = policy(tagged(["beta*"], **COUNT1), tagged(["prod*"], **COUNT1))
    assert expired(text, images) == ["A", "B"]


def test_example_c_every_pattern_must_match_some_tag():
    images = [img(1, ["alpha-1"], 12), img(2, ["beta-1"], 11), img(3, ["alpha-2", "beta-2"], 10),
              img(4, ["alpha-3"], 4), img(5, ["beta-3"], 3), img(6, ["alpha-4", "beta-4"], 2)]
    text = policy(tagged(["alpha*", "beta*"], countType="sinceImagePushed", countUnit="days", countNumber=5))
    assert expired(text, images) == ["C"]


def test_example_d_keep_the_newest_of_the_matches():
    images = [img(1, ["alpha-1", "beta-1", "gamma-1"], 10), img(2, ["alpha-2", "beta-2"], 9),
              img(3, ["alpha-3", "beta-3", "gamma-2"], 8)]
    assert expired(policy(tagged(["alpha*", "beta*"], **COUNT1)), images) == ["A", "B"]


def test_example_e_any_counts_everything():
    images = [img(1, ["alpha-1"], 4), img(2, [], 3), img(3, [], 2), img(4, ["alpha-2"], 1)]
    assert expired(policy({"tagStatus": "any", **COUNT1}), images) == ["A", "B", "C"]


def test_example_f_three_rules():
    images = [img(1, ["alpha-1", "beta-1"], 4), img(2, [], 3), img(3, ["alpha-2"], 2),
              img(4, ["git hash"], 23 / 24), img(5, [], 23 / 24 - 0.001)]
    text = policy(
        tagged(["alpha*"], **COUNT1),
        {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
        {"tagStatus": "any", **COUNT1},
    )
    assert expired(text, images) == ["A", "B", "D"]


def test_prefix_lists_and_whole_tag_globs():
    images = [img(1, ["prod"], 5), img(2, ["production-team1"], 5), img(3, ["repo-production"], 5),
              img(4, ["pro"], 5)]
    since = {"countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}
    assert expired(policy(tagged(["prod*"], **since)), images) == ["A", "B"]
    assert expired(policy(tagged(["*prod*"], **since)), images) == ["A", "B", "C"]
    assert expired(policy(tagged(prefixes=["prod"], **since)), images) == ["A", "B"]
    assert expired(policy(tagged(["pro"], **since)), images) == ["D"]  # whole tag, no implied *


def test_a_protecting_rule_shields_from_a_later_any_rule():
    images = [img(1, ["prod-1"], 30), img(2, ["dev-1"], 30), img(3, [], 30)]
    text = policy(
        tagged(["prod*"], countType="sinceImagePushed", countUnit="days", countNumber=10000),
        {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
    )
    assert expired(text, images) == ["B", "C"]


def test_retag_keeps_the_push_time():
    promoted = img(1, ["prod"], 40)  # retagged yesterday, pushed 40 days ago
    fresh = img(2, ["prod-2"], 1)
    text = policy(tagged(["prod*"], countType="sinceImagePushed", countUnit="days", countNumber=30))
    assert expired(text, [promoted, fresh]) == ["A"]


def test_children_of_an_index_count_but_are_never_expired():
    index = img(1, ["multi"], 1)
    children = [img(2, [], 20, protected=True), img(3, [], 20, protected=True)]
    loose = img(4, [], 20)
    text = policy({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 5})
    assert expired(text, [index, *children, loose]) == ["D"]
    count = policy({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2})
    # newest two: index (1d) and loose (20d, highest id among the 20d images); children counted, not expired
    assert expired(count, [index, *children, loose]) == []


def test_referrers_follow_an_expired_subject():
    subject = img(1, ["old"], 50)
    sig = img(2, [], 0.1, subject=subject.digest)
    sig_of_sig = img(3, [], 0.1, subject=sig.digest)
    other = img(4, [], 0.1, subject="sha256:" + "f" * 64)
    text = policy(tagged(["old"], countType="sinceImagePushed", countUnit="days", countNumber=30))
    actions = evaluate(parse(text), [subject, sig, sig_of_sig, other], NOW)
    assert [(a.image.id, a.cascade) for a in actions] == [(1, False), (2, True), (3, True)]


def test_since_image_pulled_uses_push_time_when_never_pulled_and_restore_time_after_archive():
    never = img(1, ["a"], 40)
    pulled_recently = img(2, ["b"], 40, last_pulled_at=NOW - 2 * DAY)
    pulled_long_ago = img(3, ["c"], 40, last_pulled_at=NOW - 35 * DAY)
    restored = img(4, ["d"], 100, last_pulled_at=NOW - 90 * DAY, last_activated_at=NOW - 3 * DAY)
    text = json.dumps({"rules": [{"rulePriority": 1, "selection": {
        "tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30},
        "action": {"type": "transition", "targetStorageClass": "archive"}}]})
    acts = evaluate(parse(text), [never, pulled_recently, pulled_long_ago, restored], NOW)
    assert sorted(a.image.id for a in acts) == [1, 3]
    assert {a.kind for a in acts} == {"transition"}


def test_since_image_transitioned_only_sees_archived_images():
    archived_long = img(1, [], 300, status="ARCHIVED", last_archived_at=NOW - 120 * DAY)
    archived_recent = img(2, [], 300, status="ARCHIVED", last_archived_at=NOW - 10 * DAY)
    active_old = img(3, [], 300)
    text = json.dumps({"rules": [{"rulePriority": 1, "selection": {
        "tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days",
        "countNumber": 90}, "action": {"type": "expire"}}]})
    assert [a.image.id for a in evaluate(parse(text), [archived_long, archived_recent, active_old], NOW)] == [1]


def test_restored_image_counts_from_its_restore_time():
    restored = img(1, [], 100, last_activated_at=NOW - 1 * DAY)
    old = img(2, [], 50)
    text = policy({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30})
    assert expired(text, [restored, old]) == ["B"]


def test_activating_images_are_left_alone():
    moving = img(1, [], 100, status="ACTIVATING", last_archived_at=NOW - 200 * DAY)
    text = policy({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1})
    assert expired(text, [moving]) == []


def test_expiry_order_is_oldest_first():
    images = [img(3, [], 5), img(1, [], 30), img(2, [], 10)]
    text = policy({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1})
    assert [a.image.id for a in evaluate(parse(text), images, NOW)] == [1, 2, 3]
