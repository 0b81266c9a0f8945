"""``vulndb update``: download the public OSV exports, one zip per ecosystem, and import them.

OSV publishes every ecosystem's records as ``<base>/<Ecosystem>/all.zip`` (the base URL is the
``vulndb_url`` setting, so a mirror or a local server can stand in). Each zip is streamed to a
temporary file in the data directory (never held in memory), checked against its announced
length, imported through ``store.import_path`` and removed. Plain ``urllib``: it honours the
usual proxy variables and needs nothing installed.
"""

from __future__ import annotations

import http.client
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from ecr_emulator import __version__
from ecr_emulator.core.context import Services
from ecr_emulator.core.vulndb import store

# The ecosystems the scanner matches packages against (core/scanning): their exports by default.
DEFAULT_ECOSYSTEMS = ("Alpine", "Debian", "Ubuntu", "PyPI", "npm")
PIECE = 1024 * 1024
TIMEOUT = 60


class NotAvailable(Exception):
    """The export cannot be fetched at all (no such ecosystem, server unreachable)."""


class DownloadFailed(Exception):
    """The download started but did not complete."""


def export_url(base_url: str, ecosystem: str) -> str:
    return f"{base_url.rstrip('/')}/{quote(ecosystem, safe='')}/all.zip"


def download(url: str, target: Path, progress: store.Progress | None = None) -> int:
    """Stream ``url`` into ``target``; returns the bytes written. ``progress(done, total)`` follows
    it (total 0 when the server does not announce a length)."""
    request = urllib.request.Request(url, headers={"User-Agent": f"ecr-emulator/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310 - the URL is a setting
    except urllib.error.HTTPError as exc:
        raise NotAvailable(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise NotAvailable(f"{url}: {reason}") from None
    done = 0
    with response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        try:
            while piece := response.read(PIECE):
                out.write(piece)
                done += len(piece)
                if progress is not None:
                    progress(done, total)
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadFailed(f"{url}: the download broke off after {done} bytes ({exc!r})") from None
    if total and done != total:
        raise DownloadFailed(f"{url}: the download broke off after {done} of {total} bytes")
    return done


def update(
    services: Services,
    ecosystems: list[str],
    on_download: Callable[[str], store.Progress | None] = lambda ecosystem: None,
    on_import: Callable[[str], store.Progress | None] = lambda ecosystem: None,
) -> dict[str, store.ImportReport]:
    """Download and import each ecosystem's export in turn; the reports by ecosystem."""
    reports: dict[str, store.ImportReport] = {}
    with tempfile.TemporaryDirectory(prefix="vulndb-", dir=services.settings.data_path) as tmp:
        for ecosystem in ecosystems:
            target = Path(tmp) / "all.zip"
            download(export_url(services.settings.vulndb_url, ecosystem), target, on_download(ecosystem))
            reports[ecosystem] = store.import_path(services, target, on_import(ecosystem))
            target.unlink()
    return reports
