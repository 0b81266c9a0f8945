"""``ecr-emulator``: serve, and run the background work by hand."""

from __future__ import annotations

import argparse
import json
import sys

from ecr_emulator import __version__, config

STORAGE_SETTINGS = ["data_dir", "database_url", "default_account", "default_region", "log_level",
                    "upload_gc_age", "token_secret", "blob_store", "s3_endpoint_url", "s3_region",
                    "s3_access_key_id", "s3_secret_access_key", "s3_path_style"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecr-emulator",
        description="Amazon ECR on a laptop or in CI: the ECR JSON API and a Docker/OCI registry endpoint.",
        epilog=config.settings_epilog(),
    )
    parser.add_argument("--version", action="version", version=f"ecr-emulator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="start the ECR API and the registry endpoint",
        description="Start the ECR JSON API and the registry endpoint on one server. "
        "Stops cleanly on SIGTERM/SIGINT, finishing in-flight requests first.",
        epilog=config.settings_epilog(),
    )
    config.add_arguments(serve)

    jobs = sub.add_parser("jobs", help="background jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    run = jobs_sub.add_parser("run", help="run every due background job now and exit",
                              epilog=config.settings_epilog())
    config.add_arguments(run, STORAGE_SETTINGS)

    lifecycle = sub.add_parser("lifecycle", help="lifecycle policies")
    lifecycle_sub = lifecycle.add_subparsers(dest="lifecycle_command", required=True)
    lrun = lifecycle_sub.add_parser(
        "run", help="run lifecycle policies now (every repository with a policy, or one)",
        epilog=config.settings_epilog(),
    )
    lrun.add_argument("--repository", help="only this repository")
    lrun.add_argument("--account", help="only this account's registry (default: every account)")
    lrun.add_argument("--region", help="only this region's registry (default: every region)")
    config.add_arguments(lrun, STORAGE_SETTINGS)

    gc = sub.add_parser("gc", help="remove abandoned uploads and unreferenced blobs now",
                        epilog=config.settings_epilog())
    config.add_arguments(gc, STORAGE_SETTINGS)

    vulndb = sub.add_parser("vulndb", help="the vulnerability database image scans match against")
    vulndb_sub = vulndb.add_subparsers(dest="vulndb_command", required=True)
    vimport = vulndb_sub.add_parser(
        "import", help="import OSV records (a folder or zip of *.json, as the public OSV exports)",
        description="Import OSV vulnerability records in one transaction. Malformed records are reported "
        "and skipped; a record already present is replaced by the imported version.",
        epilog=config.settings_epilog(),
    )
    vimport.add_argument("path", help="folder (searched recursively), zip archive or single .json record")
    config.add_arguments(vimport, STORAGE_SETTINGS)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply schema migrations to the data directory",
                                epilog=config.settings_epilog())
    config.add_arguments(upgrade, STORAGE_SETTINGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = config.load(args)
    except ValueError as exc:
        print(f"ecr-emulator: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        from ecr_emulator.server import serve

        return serve(settings)

    from ecr_emulator.core.bootstrap import build_services

    if args.command == "vulndb":
        settings.vulndb_seed = ""  # import exactly what was asked for, no default seed first
    services = build_services(settings)
    if args.command == "jobs":
        from ecr_emulator.core.jobs import JobRunner

        print(json.dumps(JobRunner(services).run_due()))
    elif args.command == "lifecycle":
        from ecr_emulator.core.lifecycle.execute import run_all
        from ecr_emulator.core.naming import Scope

        scope = None
        if args.account or args.region:
            scope = Scope(args.account or settings.default_account, args.region or settings.default_region)
        if args.repository and scope is None:
            scope = Scope(settings.default_account, settings.default_region)
        for result in run_all(services, scope, args.repository):
            print(json.dumps(result.as_dict()))
    elif args.command == "gc":
        from ecr_emulator.core import gc as gc_module

        print(json.dumps(gc_module.collect(services)))
    elif args.command == "vulndb":
        from ecr_emulator.core.vulndb import store

        try:
            report = store.import_path(services, args.path)
        except store.ImportFailed as exc:
            print(f"ecr-emulator: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(report.to_dict(), indent=2))
    elif args.command == "db":
        from ecr_emulator.storage import migrate

        print(f"schema at revision {migrate.current_revision(services.db)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
