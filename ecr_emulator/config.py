"""One Settings object, read from flags, then ``ECR_EMULATOR_*`` variables, then defaults.

Every setting is declared once in ``SETTINGS`` so that ``--help``, the environment and the
README can never disagree about its name, default or meaning.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "ECR_EMULATOR_"


@dataclass(frozen=True)
class Setting:
    name: str  # attribute name; flag is --name-with-dashes, env is ECR_EMULATOR_NAME
    default: Any
    help: str
    kind: type = str


SETTINGS: list[Setting] = [
    Setting("host", "127.0.0.1", "address both listeners bind to"),
    Setting("api_port", 5001, "port of the ECR JSON API (0 picks a free port and prints it)", int),
    Setting("registry_port", 5000, "port of the registry endpoint (0 picks a free port and prints it)", int),
    Setting("data_dir", "./.ecr-emulator", "directory holding the database, blobs and upload staging"),
    Setting(
        "registry_host",
        "",
        "host[:port] that repositoryUri and proxyEndpoint name for the default registry; may contain "
        "{account} and {region}; default localhost:<registry port>",
    ),
    Setting("default_account", "123456789012", "account used when the access key is not a 12-digit id"),
    Setting("default_region", "us-east-1", "region of the default registry (used when a request names none)"),
    Setting(
        "access_keys",
        "",
        "comma-separated ACCESS_KEY_ID=ACCOUNT pairs mapping access keys to accounts",
    ),
    Setting("database_url", "", "SQLAlchemy URL; default sqlite:///<data-dir>/ecr.db (WAL)"),
    Setting("token_secret", "", "secret that signs registry passwords; default: generated once into the data dir"),
    Setting("token_ttl", 43200, "seconds an authorization token stays valid (ECR: 12 hours)", int),
    Setting("workers", 2, "server worker processes; they share the database and the blob store",
            int),
    Setting("threads", 8, "request threads per worker process", int),
    Setting("graceful_timeout", 30, "seconds SIGTERM waits for in-flight requests to finish", int),
    Setting("job_workers", 2, "background job threads (0 disables them; run jobs from the CLI instead)", int),
    Setting("job_poll_interval", 1.0, "seconds between background job polls", float),
    Setting("upload_gc_age", 86400, "seconds after which an abandoned upload is removed", int),
    Setting("lifecycle_interval", 3600.0, "seconds (emulator clock) between lifecycle policy runs over every "
            "repository", float),
    Setting("lifecycle_after_push", True, "also run a repository's lifecycle policy right after each push", bool),
    Setting("archive_restore_seconds", 1200.0, "seconds (emulator clock) an archived image stays ACTIVATING "
            "before it is ACTIVE again", float),
    Setting("control_api", True, "serve the test-control API under /_emulator on the API listener", bool),
    Setting("control_token", "", "shared secret the test-control API then requires in an X-Emulator-Token "
            "header (default: none; the API still refuses cross-site requests)"),
    Setting(
        "vulndb_seed",
        "auto",
        "OSV folder or zip loaded into an empty vulnerability database at start-up; 'auto' loads the real "
        "advisories shipped in fixtures/osv, '' loads nothing",
    ),
    Setting(
        "scan_max_unpacked_bytes",
        8 * 1024**3,
        "most bytes an image scan decompresses before the scan fails (decompression-bomb guard)",
        int,
    ),
    Setting("log_level", "info", "log level: debug, info, warning, error"),
    # ---- where blob bytes live (storage/blobstore.py)
    Setting("blob_store", "", "where blobs and in-flight uploads are stored: '' for the data directory, or "
            "s3://bucket/prefix for an S3-compatible object store (replicas on several hosts share it)"),
    Setting("s3_endpoint_url", "", "endpoint of the S3-compatible store, e.g. http://127.0.0.1:9000 (default: "
            "AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)"),
    Setting("s3_region", "", "region of the bucket (default: AWS_REGION / AWS_DEFAULT_REGION)"),
    Setting("s3_access_key_id", "", "access key for the object store (default: the AWS credential chain, "
            "e.g. AWS_ACCESS_KEY_ID)"),
    Setting("s3_secret_access_key", "", "secret key for the object store (default: the AWS credential chain, "
            "e.g. AWS_SECRET_ACCESS_KEY)"),
    Setting("s3_path_style", False, "address the bucket in the path (http://host/bucket/key), as most "
            "self-hosted stores want, rather than as a virtual host", bool),
    Setting("blob_redirect", False, "answer blob GETs with a 307 redirect to a presigned object-store URL "
            "(valid 20 minutes) and return such URLs from GetDownloadUrlForLayer, instead of streaming the "
            "bytes through the emulator (s3 blob store only)", bool),
]


@dataclass
class Settings:
    host: str = "127.0.0.1"
    api_port: int = 5001
    registry_port: int = 5000
    data_dir: str = "./.ecr-emulator"
    registry_host: str = ""
    default_account: str = "123456789012"
    default_region: str = "us-east-1"
    access_keys: str = ""
    database_url: str = ""
    token_secret: str = ""
    token_ttl: int = 43200
    workers: int = 2
    threads: int = 8
    graceful_timeout: int = 30
    job_workers: int = 2
    job_poll_interval: float = 1.0
    upload_gc_age: int = 86400
    lifecycle_interval: float = 3600.0
    lifecycle_after_push: bool = True
    archive_restore_seconds: float = 1200.0
    control_api: bool = True
    control_token: str = ""
    log_level: str = "info"
    vulndb_seed: str = "auto"
    scan_max_unpacked_bytes: int = 8 * 1024**3
    blob_store: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_path_style: bool = False
    blob_redirect: bool = False
    access_key_accounts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.access_key_accounts = parse_access_keys(self.access_keys)
        if not re.fullmatch(r"[0-9]{12}", self.default_account):
            raise ValueError(f"default account must be 12 digits, got {self.default_account!r}")
        if self.blob_store and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^?#]*)?", self.blob_store):
            raise ValueError(f"blob store must be empty (the data directory) or s3://bucket[/prefix], "
                             f"got {self.blob_store!r}")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'ecr.db'}"

    def default_registry_host(self) -> str:
        return self.registry_host or f"localhost:{self.registry_port}"


def parse_access_keys(text: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, account = item.partition("=")
        if not sep or not re.fullmatch(r"[0-9]{12}", account.strip()):
            raise ValueError(f"access key mapping {item!r} must be KEY=12-digit-account")
        mapping[key.strip()] = account.strip()
    return mapping


def _coerce(setting: Setting, raw: str) -> Any:
    if setting.kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{setting.name} expects true/false, got {raw!r}")
    return setting.kind(raw)


def add_arguments(parser: argparse.ArgumentParser, names: list[str] | None = None) -> None:
    """Declare each setting as a flag whose help names its variable and default."""
    for s in SETTINGS:
        if names is not None and s.name not in names:
            continue
        flag = "--" + s.name.replace("_", "-")
        env = ENV_PREFIX + s.name.upper()
        shown = "" if s.default == "" else f" (default: {s.default})"
        help_text = f"{s.help}{shown} [env {env}]"
        if s.kind is bool:
            parser.add_argument(flag, dest=s.name, default=None, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=s.name, default=None, type=s.kind, help=help_text)


def settings_epilog() -> str:
    return "Every flag can also be set through its ECR_EMULATOR_* variable; flags win over variables."


def load(args: argparse.Namespace | None = None, environ: dict[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    for s in SETTINGS:
        value = getattr(args, s.name, None) if args is not None else None
        if value is None and (ENV_PREFIX + s.name.upper()) in environ:
            value = _coerce(s, environ[ENV_PREFIX + s.name.upper()])
        if value is None:
            value = s.default
        if s.name in known:
            values[s.name] = value
    return Settings(**values)
