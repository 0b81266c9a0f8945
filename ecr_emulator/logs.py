"""Log records as escaped text lines or as JSON objects, for our loggers and gunicorn's alike.

Text (the default) is one line per record: the message's control characters are escaped, so a
``%0a`` in a URL (which arrives decoded in ``PATH_INFO``) cannot start a forged line; request
paths are logged percent-encoded; a traceback's lines are indented, so a line that starts at
column 0 is always a real record. JSON is one object per line (``time``, ``level``, ``logger``,
``pid``, ``message``, the request fields, ``exception``). Both formatters are small subclasses
of ``logging.Formatter`` over the standard library's ``json``, which is all this needs.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from gunicorn import glogging

TEXT_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
FIELDS = "fields"  # the attribute (set through ``extra``) holding a record's structured fields


def printable(text: str) -> str:
    """``text`` with every non-printable character (CR, LF, ESC, NEL, U+2028...) escaped."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return "".join(out)


def url_path(path_info: str) -> str:
    """A WSGI ``PATH_INFO`` (bytes decoded as latin-1, percent-escapes already undone) as it would
    appear in a URL: spaces, controls, ``%`` and non-ASCII bytes percent-encoded again."""
    return quote(path_info.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        return _indent(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _indent(stack_info)


def _indent(text: str) -> str:
    return "\n".join("    " + printable(line) for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, FIELDS, None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(level: str, log_format: str) -> None:
    """Our loggers: one handler on the root logger, to stderr, in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def gunicorn_logger(log_format: str) -> type[glogging.Logger]:
    """gunicorn's logger class, with its error log (boot, worker and signal messages, errors it
    catches itself) in the same format as ours."""

    class Logger(glogging.Logger):
        def setup(self, cfg) -> None:  # type: ignore[no-untyped-def]
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(formatter(log_format))

    return Logger
