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
    repeat: bool = False  # the flag may be given several times (the variable separates values by commas)


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
    Setting(
        "iam_config",
        "",
        "JSON file declaring principals (access keys acting as IAM users and roles, with their identity "
        "policies); undeclared keys act as the root of their account",
    ),
    Setting(
        "verify_signatures",
        False,
        "verify SigV4 signatures of API requests against the secrets in --iam-config (undeclared keys are "
        "then refused)",
        bool,
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
    Setting("log_format", "text", "log format: text (one escaped line per record) or json (one JSON object per "
            "line)"),
    Setting("vulndb_url", "https://osv-vulnerabilities.storage.googleapis.com",
            "base URL of the OSV data exports that 'vulndb update' downloads <url>/<Ecosystem>/all.zip from"),
    Setting(
        "registry_port_map",
        "",
        "comma-separated ACCOUNT/REGION=PORT entries: serve that account's registry in that region on its "
        "own port too, so its repositoryUri is <registry host name>:PORT/name (0 picks a free port)",
    ),
    Setting("tls", False, "serve both listeners over HTTPS with a certificate from a local CA made once per "
            "data directory (tls/ca.crt); proxyEndpoint then says https://", bool),
    Setting("tls_cert", "", "PEM certificate (chain) to serve instead of the local CA's; implies --tls"),
    Setting("tls_key", "", "PEM private key of --tls-cert"),
    Setting("allow_missing_layers", False, "accept images whose layers and config were never uploaded, as moto "
            "does (real ECR refuses them with LayersNotFoundException); for tests written against moto", bool),
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
    # ---- pull through cache (core/pullthrough/)
    Setting("upstream_endpoint", "", "HOST=URL: fetch what pull through cache rules name upstream registry HOST "
            "(e.g. registry-1.docker.io) from URL instead (e.g. http://127.0.0.1:5555, a registry on loopback); "
            "repeat the flag, or separate entries with commas in the variable; other hosts are reached "
            "over https://HOST", repeat=True),
    Setting("secrets_file", "", "JSON file standing in for Secrets Manager: {\"<secret ARN>\": {\"username\": ..., "
            "\"accessToken\": ...}}, read at each use, for the credentialArn of pull through cache rules"),
    Setting("upstream_timeout", 30.0, "seconds to wait for an upstream registry to connect or to send more of "
            "a response", float),
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
    iam_config: str = ""
    verify_signatures: bool = False
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
    log_format: str = "text"
    vulndb_url: str = "https://osv-vulnerabilities.storage.googleapis.com"
    registry_port_map: str = ""
    tls: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    allow_missing_layers: bool = False
    blob_store: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_path_style: bool = False
    blob_redirect: bool = False
    upstream_endpoint: str = ""
    secrets_file: str = ""
    upstream_timeout: float = 30.0
    access_key_accounts: dict[str, str] = field(default_factory=dict)
    registry_ports: dict[tuple[str, str], int] = field(default_factory=dict)
    upstream_endpoints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.access_key_accounts = parse_access_keys(self.access_keys)
        self.registry_ports = parse_registry_port_map(self.registry_port_map)
        self.upstream_endpoints = parse_upstream_endpoints(self.upstream_endpoint)
        if (self.default_account, self.default_region) in self.registry_ports:
            raise ValueError(f"--registry-port-map names the default registry ({self.default_account}/"
                             f"{self.default_region}), which is served on --registry-port already")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key go together: give both files or neither")
        self.tls = self.tls or bool(self.tls_cert)
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


def parse_registry_port_map(text: str) -> dict[tuple[str, str], int]:
    """``ACCOUNT/REGION=PORT,...`` -> {(account, region): port}."""
    mapping: dict[tuple[str, str], int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([0-9]{12})/([a-z]{2}(?:-[a-z]+)+-[0-9]+)=([0-9]{1,5})", item)
        if not m or int(m[3]) > 65535:
            raise ValueError(f"registry port map entry {item!r} must be ACCOUNT/REGION=PORT, "
                             "e.g. 210987654321/eu-west-1=5002")
        if (m[1], m[2]) in mapping:
            raise ValueError(f"registry port map names {m[1]}/{m[2]} twice")
        mapping[(m[1], m[2])] = int(m[3])
    return mapping


def parse_upstream_endpoints(text: str) -> dict[str, str]:
    """``HOST=URL,...`` -> {host (lower case): URL without a trailing slash}."""
    mapping: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        host, sep, url = item.partition("=")
        host, url = host.strip().lower(), url.strip().rstrip("/")
        if not sep or not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?", host) or \
                not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", url):
            raise ValueError(f"upstream endpoint {item!r} must be HOST=URL, e.g. "
                             "registry-1.docker.io=http://127.0.0.1:5555")
        if host in mapping:
            raise ValueError(f"upstream endpoint names {host} twice")
        mapping[host] = url
    return mapping


def _parsing(parse: Any) -> Any:
    """A check that reports what ``parse`` refuses."""

    def check(value: str) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None

    return check


KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


def _coerce(setting: Setting, raw: str) -> Any:
    if setting.kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected {KIND_NAMES[bool]}")
    try:
        return setting.kind(raw)
    except ValueError:
        raise ValueError(f"expected {KIND_NAMES.get(setting.kind, setting.kind.__name__)}") from None


def _at_least(low: float) -> Any:
    return lambda v: None if v >= low else f"must be at least {low}"


def _one_of(*choices: str) -> Any:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number from 0 to 65535 (0 picks a free port)"


# What a value must satisfy beyond its type; a function returns the problem, or None when fine.
CHECKS: dict[str, Any] = {
    "api_port": _port,
    "registry_port": _port,
    "default_account": lambda v: None if re.fullmatch(r"[0-9]{12}", v) else "must be a 12-digit AWS account id",
    "default_region": lambda v: None if re.fullmatch(r"[a-z0-9-]{1,32}", v) else "must be a region name such as us-east-1",
    "access_keys": _parsing(parse_access_keys),
    "upstream_endpoint": _parsing(parse_upstream_endpoints),
    "upstream_timeout": lambda v: None if v > 0 else "must be more than 0 seconds",
    "token_ttl": _at_least(1),
    "workers": _at_least(1),
    "threads": _at_least(1),
    "graceful_timeout": _at_least(0),
    "job_workers": _at_least(0),
    "job_poll_interval": lambda v: None if v > 0 else "must be more than 0 seconds",
    "upload_gc_age": _at_least(1),
    "lifecycle_interval": lambda v: None if v > 0 else "must be more than 0 seconds",
    "archive_restore_seconds": _at_least(0),
    "scan_max_unpacked_bytes": _at_least(1),
    "log_level": _one_of("debug", "info", "warning", "error"),
    "log_format": _one_of("text", "json"),
    "vulndb_url": lambda v: None if re.match(r"https?://[^/]", v) else "must be an http:// or https:// URL",
}


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
        elif s.repeat:
            parser.add_argument(flag, dest=s.name, default=None, action="append", type=s.kind, help=help_text)
        else:
            parser.add_argument(flag, dest=s.name, default=None, type=s.kind, help=help_text)


def settings_epilog() -> str:
    return "Every flag can also be set through its ECR_EMULATOR_* variable; flags win over variables."


def flag_and_variable(name: str) -> str:
    """How a user sets this setting, for messages: ``--data-dir / ECR_EMULATOR_DATA_DIR``."""
    return f"--{name.replace('_', '-')} / {ENV_PREFIX}{name.upper()}"


def load(args: argparse.Namespace | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from flags, then variables, then defaults. A value that cannot be used raises
    ValueError with one line naming where it came from (the flag or the variable) and what it needs."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    for s in SETTINGS:
        value = getattr(args, s.name, None) if args is not None else None
        if isinstance(value, list):  # a repeated flag
            value = ",".join(value)
        env = ENV_PREFIX + s.name.upper()
        source = f"--{s.name.replace('_', '-')} {value}"
        if value is None and env in environ:
            source = f"{env}={environ[env]!r}"
            try:
                value = _coerce(s, environ[env])
            except ValueError as exc:
                raise ValueError(f"{source}: {exc}") from None
        if value is None:
            value = s.default
            source = f"{flag_and_variable(s.name)} (default {value!r})"
        check = CHECKS.get(s.name)
        problem = check(value) if check is not None else None
        if problem:
            raise ValueError(f"{source}: {problem}")
        if s.name in known:
            values[s.name] = value
    return Settings(**values)
