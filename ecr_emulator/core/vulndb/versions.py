"""Version ordering per ecosystem, each the way its own package manager orders versions.

A range in an OSV record ("introduced 0, fixed 3.0.2-0ubuntu1.8") only means something under the
ecosystem's ordering: dpkg's for Debian and Ubuntu (``python-debian``), PEP 440 for PyPI
(``packaging``), semver for npm (``semver``). Alpine's apk ordering has no maintained Python
implementation that accepts every apk version (``_git``/``_svn``/``_hg``/``_cvs`` suffixes are
common in Alpine, e.g. ``1.2.4_git20230717-r5``), so ``ApkVersion`` implements apk-tools' own
token comparison. A version the ordering cannot parse yields ``None``: its ranges are then not
evaluated and only the record's explicit ``versions`` list can match it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import semver
from debian.debian_support import Version as DebianVersion
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version

# ---- apk (Alpine) ----

# Token kinds, in the order apk-tools ranks them when one version runs out before the other.
_INVALID, _DIGIT_OR_ZERO, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _REVISION_NO, _END = range(-1, 7)
_PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
_POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")
_APK_SHAPE = re.compile(r"[0-9]+(\.[0-9]+)*[a-z]?(_[a-z]+[0-9]*)*(-r[0-9]+)?")


class _ApkTokens:
    """Walks an apk version string token by token (digits, letter, _suffix, suffix number, -rN)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.kind = _DIGIT

    def _next_kind(self) -> None:
        text, prev = self.text, self.kind
        if self.pos >= len(text):
            self.kind = _END
            return
        ch = text[self.pos]
        if prev in (_DIGIT, _DIGIT_OR_ZERO) and ch.islower():
            kind = _LETTER
        elif prev == _LETTER and ch.isdigit():
            kind = _DIGIT
        elif prev == _SUFFIX and ch.isdigit():
            kind = _SUFFIX_NO
        else:
            kind = {".": _DIGIT_OR_ZERO, "_": _SUFFIX}.get(ch, _INVALID)
            if ch == "-" and text[self.pos + 1 : self.pos + 2] == "r":
                kind = _REVISION_NO
                self.pos += 1
            self.pos += 1
        allowed_backwards = {(_DIGIT_OR_ZERO, _DIGIT), (_SUFFIX, _SUFFIX_NO), (_DIGIT, _LETTER)}
        if kind < prev and (kind, prev) not in allowed_backwards:
            kind = _INVALID
        self.kind = kind

    def peek(self) -> int:
        """The value of the current token, without advancing."""
        probe = _ApkTokens(self.text)
        probe.pos, probe.kind = self.pos, self.kind
        return probe.take()

    def take(self) -> int:
        """The value of the current token; advances to the next one."""
        text, kind = self.text, self.kind
        if self.pos >= len(text):
            self.kind = _END
            return 0
        start, value, next_kind = self.pos, 0, _INVALID
        if kind == _DIGIT_OR_ZERO:
            while self.pos < len(text) and text[self.pos] == "0":
                self.pos += 1
            value, next_kind = -(self.pos - start), _DIGIT
        elif kind in (_DIGIT, _SUFFIX_NO, _REVISION_NO):
            while self.pos < len(text) and text[self.pos].isdigit():
                value = value * 10 + int(text[self.pos])
                self.pos += 1
        elif kind == _LETTER:
            value = ord(text[self.pos])
            self.pos += 1
        elif kind == _SUFFIX:
            rest = text[self.pos :]
            pre = next((i for i, s in enumerate(_PRE_SUFFIXES) if rest.startswith(s)), None)
            post = next((i for i, s in enumerate(_POST_SUFFIXES) if rest.startswith(s)), None)
            if pre is not None:
                value = pre - len(_PRE_SUFFIXES)
                self.pos += len(_PRE_SUFFIXES[pre])
            elif post is not None:
                value = post
                self.pos += len(_POST_SUFFIXES[post])
            else:
                self.kind = _INVALID
                return -1
        else:
            self.kind = _INVALID
            return -1
        if self.pos >= len(text):
            self.kind = _END
        elif next_kind != _INVALID:
            self.kind = next_kind
        else:
            self._next_kind()
        return value


def apk_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as apk-tools orders the two versions (pre-release suffixes sort first)."""
    ta, tb = _ApkTokens(a), _ApkTokens(b)
    va = vb = 0
    while ta.kind == tb.kind and ta.kind not in (_END, _INVALID) and va == vb:
        va, vb = ta.take(), tb.take()
    if va != vb:
        return -1 if va < vb else 1
    if ta.kind == tb.kind:
        return 0
    # Equal so far and one goes on: it is newer, unless what follows is a pre-release suffix.
    if ta.kind == _SUFFIX and ta.peek() < 0:
        return -1
    if tb.kind == _SUFFIX and tb.peek() < 0:
        return 1
    if ta.kind > tb.kind:
        return -1
    if tb.kind > ta.kind:
        return 1
    return 0


@functools.total_ordering
class ApkVersion:
    """An apk version with apk-tools' ordering, usable as a sort key."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        if not _APK_SHAPE.fullmatch(text):
            raise ValueError(f"not an apk version: {text!r}")
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApkVersion) and apk_compare(self.text, other.text) == 0

    def __lt__(self, other: ApkVersion) -> bool:
        return apk_compare(self.text, other.text) < 0

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"ApkVersion({self.text!r})"


# ---- the parser for each ecosystem ----


def _dpkg(text: str) -> Any:
    return DebianVersion(text)


def _pep440(text: str) -> Any:
    return Pep440Version(text)


def _semver(text: str) -> Any:
    return semver.Version.parse(text.strip().lstrip("=v"))


PARSERS: dict[str, Callable[[str], Any]] = {
    "Debian": _dpkg,
    "Ubuntu": _dpkg,
    "Alpine": ApkVersion,
    "PyPI": _pep440,
    "npm": _semver,
}


def family(ecosystem: str) -> str:
    """``Ubuntu:22.04:LTS`` -> ``Ubuntu``: the part of an OSV ecosystem that decides the ordering."""
    return ecosystem.split(":", 1)[0]


@functools.lru_cache(maxsize=200_000)
def parse(ecosystem_family: str, text: str) -> Any | None:
    """The comparable form of ``text`` under the family's ordering, or None if it is not valid there."""
    parser = PARSERS.get(ecosystem_family)
    if parser is None or not text:
        return None
    try:
        return parser(text)
    except (ValueError, TypeError, InvalidVersion):
        return None
