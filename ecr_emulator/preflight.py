"""Checks a command makes before it starts, so a setup mistake is one line, not a traceback.

Each check raises ``SetupError`` with one line that names the setting (its flag and variable)
and says what to do; the CLI prints it and exits with status 2. Only the causes a user can fix
are translated here: anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from ecr_emulator.config import Settings, flag_and_variable
from ecr_emulator.storage.db import Database

DRIVERS = {"psycopg": "postgres", "psycopg2": "postgres"}  # driver module -> the extra that installs it


class SetupError(Exception):
    """A setting this command cannot run with; the message is one line naming it and the fix."""


def check_data_dir(settings: Settings) -> Path:
    """The data directory exists, or can be created in an existing parent; and it is writable."""
    name = flag_and_variable("data_dir")
    path = settings.data_path
    if path.exists() and not path.is_dir():
        raise SetupError(f"{name} {path}: exists and is not a directory; choose a directory")
    if not path.exists():
        if not path.parent.is_dir():
            raise SetupError(f"{name} {path}: its parent directory {path.parent} does not exist; "
                             "create it first or choose another data directory")
        try:
            path.mkdir()
        except OSError as exc:
            raise SetupError(f"{name} {path}: cannot create it ({exc.strerror}); choose a writable location") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SetupError(f"{name} {path}: not writable by this user; fix its permissions or choose another")
    return path


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return " ".join(text.split())


def check_database(settings: Settings) -> None:
    """Open the database once (the URL parses, the driver is installed, the server answers)."""
    name = flag_and_variable("database_url")
    url = settings.effective_database_url
    usage = "use sqlite:///path/to/ecr.db or postgresql+psycopg://user:password@host/database"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SetupError(f"{name} {url!r}: not a database URL; {usage}") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise SetupError(f"{name} {shown}: unsupported database; {usage}")
    try:
        db = Database(url, pool_size=1)
    except NoSuchModuleError:
        raise SetupError(f"{name} {shown}: unknown database driver; {usage}") from None
    except ImportError as exc:
        extra = DRIVERS.get((exc.name or "").split(".")[0])
        hint = f"pip install 'ecr-emulator[{extra}]'" if extra else f"install the {exc.name} module"
        raise SetupError(f"{name} {shown}: its database driver is not installed; {hint}") from None
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (DBAPIError, OSError) as exc:
        raise SetupError(f"{name} {shown}: cannot connect ({_one_line(exc)}); check that the database "
                         "is running and the URL is right") from None
    finally:
        db.dispose()


def check_ports(settings: Settings) -> None:
    """Both listeners can bind (probed with the options the server binds with)."""
    ports = [("api_port", settings.api_port), ("registry_port", settings.registry_port)]
    if settings.api_port and settings.api_port == settings.registry_port:
        raise SetupError(f"{flag_and_variable('api_port')} and {flag_and_variable('registry_port')} are both "
                         f"{settings.api_port}; give the two listeners different ports")
    host = settings.host.strip("[]")
    for setting, port in ports:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                 flags=socket.AI_PASSIVE)[0]
        except socket.gaierror as exc:
            raise SetupError(f"{flag_and_variable('host')} {settings.host!r}: not an address of this machine "
                             f"({exc.strerror}); use 127.0.0.1, 0.0.0.0 or a local address") from None
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise SetupError(f"{flag_and_variable(setting)} {port}: already in use on {settings.host}; "
                                     "stop what listens there or choose another port (0 picks a free one)") from None
                if exc.errno == errno.EACCES:
                    raise SetupError(f"{flag_and_variable(setting)} {port}: this user may not listen on it; "
                                     "choose a port above 1023") from None
                raise SetupError(f"{flag_and_variable('host')} {settings.host!r}: cannot listen there "
                                 f"({exc.strerror}); use 127.0.0.1, 0.0.0.0 or an address of this machine") from None
