"""IAM wildcards (``*`` any run, ``?`` one character) and policy variables (``${aws:username}``).

Policy variables exist only in documents of Version ``2012-10-17``; elsewhere ``${`` is plain text.
``${*}``, ``${?}`` and ``${$}`` stand for a literal ``*``, ``?`` and ``$``; ``${key, 'default'}``
falls back to the default when the request has no such key. A variable naming a key the request
lacks (and with no default) makes the value match nothing, as in IAM.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*([^,\s]+)\s*,\s*'([^']*)'\s*$")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}

Lookup = Callable[[str], "str | list[str] | None"]


class MissingVariable(Exception):
    """A policy variable names a key the request does not have."""


def has_variables(text: str) -> bool:
    return "${" in text and _VARIABLE.search(text) is not None


def check_variables(text: str) -> str | None:
    """Why the variables in ``text`` are malformed, or None."""
    for m in _VARIABLE.finditer(text):
        inner = m[1].strip()
        if inner in _ESCAPES:
            continue
        d = _DEFAULT.match(inner)
        key = d[1] if d else inner
        if not key or "," in key or " " in key:
            return f"malformed policy variable '{m[0]}'"
    return None


def _resolve_one(inner: str, lookup: Lookup) -> str:
    inner = inner.strip()
    if inner in _ESCAPES:
        return _ESCAPES[inner]
    d = _DEFAULT.match(inner)
    key, default = (d[1], d[2]) if d else (inner, None)
    value = lookup(key.lower())
    if isinstance(value, list):  # a multi-valued key cannot stand in a single value
        value = None
    if value is None:
        if default is None:
            raise MissingVariable(key)
        return default
    return value


def _pieces(text: str, lookup: Lookup | None) -> list[tuple[bool, str]]:
    """(is_literal_from_variable, text) pieces: substituted text never acts as a wildcard."""
    if lookup is None:
        return [(False, text)]
    out: list[tuple[bool, str]] = []
    pos = 0
    for m in _VARIABLE.finditer(text):
        out.append((False, text[pos:m.start()]))
        out.append((True, _resolve_one(m[1], lookup)))
        pos = m.end()
    out.append((False, text[pos:]))
    return out


def substitute(text: str, lookup: Lookup | None) -> str:
    """``text`` with its variables replaced (raises MissingVariable)."""
    return "".join(piece for _, piece in _pieces(text, lookup))


def _glob_source(pieces: list[tuple[bool, str]]) -> str:
    out = []
    for literal, piece in pieces:
        if literal:
            out.append(re.escape(piece))
            continue
        for ch in piece:
            out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _compiled(source: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(source, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(pattern: str, *, ignore_case: bool = False, lookup: Lookup | None = None) -> re.Pattern[str]:
    """A regex that fullmatches what the IAM wildcard pattern matches (raises MissingVariable)."""
    return _compiled(_glob_source(_pieces(pattern, lookup)), ignore_case)


def glob_any(patterns: list[str] | tuple[str, ...], *, ignore_case: bool = False) -> re.Pattern[str]:
    """One regex matching any of several variable-free patterns."""
    source = "|".join(f"(?:{_glob_source([(False, p)])})" for p in patterns)
    return _compiled(source, ignore_case)
