"""``ecr-emulator vulndb import|update``: fill the vulnerability database, with progress on stderr.

Progress bars are ``tqdm``'s (no dependencies of its own, MPL-2.0/MIT): bytes while an export
downloads, records while they import. The report stays JSON on stdout, so scripts can read it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tqdm import tqdm

from ecr_emulator import config
from ecr_emulator.core.context import Services


def add_parsers(sub: Any, storage_settings: list[str]) -> None:
    vulndb = sub.add_parser("vulndb", help="the vulnerability database image scans match against")
    vulndb_sub = vulndb.add_subparsers(dest="vulndb_command", required=True)
    vimport = vulndb_sub.add_parser(
        "import", help="import OSV records (a folder or zip of *.json, as the public OSV exports)",
        description="Import OSV vulnerability records, showing progress on stderr. Malformed records are "
        "reported and skipped; a record already present is replaced by the imported version.",
        epilog=config.settings_epilog(),
    )
    vimport.add_argument("path", help="folder (searched recursively), zip archive or single .json record")
    vupdate = vulndb_sub.add_parser(
        "update", help="download the public OSV exports (one zip per ecosystem) and import them",
        description="Download <vulndb-url>/<Ecosystem>/all.zip for each ecosystem and import it, showing "
        "progress on stderr. By default the ecosystems the scanner reads: "
        "Alpine, Debian, Ubuntu, PyPI and npm (the Debian and npm exports are large).",
        epilog=config.settings_epilog(),
    )
    vupdate.add_argument("--ecosystem", action="append", metavar="NAME",
                         help="an OSV ecosystem as OSV spells it (PyPI, npm, Debian, Alpine, Ubuntu, Go, "
                         "Maven...); repeat for several; default: the ones the scanner reads")
    for parser in (vimport, vupdate):
        parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
        config.add_arguments(parser, storage_settings + (["vulndb_url"] if parser is vupdate else []))


class Bar:
    """A ``store.Progress`` callback drawing one tqdm bar, made when the first count arrives."""

    def __init__(self, desc: str, unit: str, enabled: bool) -> None:
        self.desc, self.unit, self.enabled = desc, unit, enabled
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total or None, desc=self.desc, unit=self.unit, unit_scale=self.unit == "B",
                            unit_divisor=1024, file=sys.stderr, disable=not self.enabled,
                            mininterval=0.2 if sys.stderr.isatty() else 2.0, dynamic_ncols=True, leave=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Bars:
    """Hands out bars and closes each one before the next starts."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.current: Bar | None = None

    def __call__(self, desc: str, unit: str) -> Bar:
        self.close()
        self.current = Bar(desc, unit, self.enabled)
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


def run(args: argparse.Namespace, services: Services) -> int:
    from ecr_emulator.core.vulndb import download, store
    from ecr_emulator.preflight import SetupError

    bars = Bars(not args.no_progress)
    try:
        if args.vulndb_command == "import":
            report = store.import_path(services, args.path, bars(f"import {args.path}", "records"))
            bars.close()
            print(json.dumps(report.to_dict(), indent=2))
            return 0
        ecosystems = args.ecosystem or list(download.DEFAULT_ECOSYSTEMS)
        reports = download.update(services, ecosystems, lambda eco: bars(f"download {eco}", "B"),
                                  lambda eco: bars(f"import {eco}", "records"))
        bars.close()
        print(json.dumps({eco: r.to_dict() for eco, r in reports.items()}, indent=2))
        return 0
    except download.NotAvailable as exc:
        bars.close()
        raise SetupError(f"{exc}; check --ecosystem (spelled as OSV does: {', '.join(download.DEFAULT_ECOSYSTEMS)}, "
                         f"Go, Maven...) and {config.flag_and_variable('vulndb_url')}") from None
    except (download.DownloadFailed, store.ImportFailed) as exc:
        bars.close()
        print(f"ecr-emulator: {exc}", file=sys.stderr)
        return 1
