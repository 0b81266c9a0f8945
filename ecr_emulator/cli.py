"""``ecr-emulator``: serve, and run the background work by hand."""

from __future__ import annotations

import argparse
import json
import sys

from ecr_emulator import __version__, config

STORAGE_SETTINGS = ["data_dir", "database_url", "default_account", "default_region", "log_level",
                    "upload_gc_age", "token_secret", "blob_store", "s3_endpoint_url", "s3_region",
                    "s3_access_key_id", "s3_secret_access_key", "s3_path_style"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (with where to read more) and exit status 2."""

    def error(self, message: str):  # type: ignore[no-untyped-def]
        self.exit(2, f"{self.prog}: {message}; see '{self.prog} --help'\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
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

    from ecr_emulator import signing_cli, vulndb_cli

    vulndb_cli.add_parsers(sub, STORAGE_SETTINGS)
    signing_cli.add_parsers(sub, STORAGE_SETTINGS)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply schema migrations to the data directory",
                                epilog=config.settings_epilog())
    config.add_arguments(upgrade, STORAGE_SETTINGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ecr_emulator.preflight import SetupError

    args = _parser().parse_args(argv)
    try:
        settings = config.load(args)  # its ValueErrors are worded for users
    except ValueError as exc:
        print(f"ecr-emulator: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(args, settings)
    except SetupError as exc:
        print(f"ecr-emulator: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: config.Settings) -> int:
    from ecr_emulator import preflight

    preflight.check_data_dir(settings)
    preflight.check_database(settings)
    if args.command == "serve":
        from ecr_emulator.core.iam.principals import IamConfig, IamConfigError
        from ecr_emulator.server import serve

        if settings.verify_signatures and not settings.iam_config:
            raise preflight.SetupError("--verify-signatures needs --iam-config (the secrets to verify against)")
        try:
            IamConfig.load(settings.iam_config)  # checked once here, so a bad file never reaches a worker
        except IamConfigError as exc:
            raise preflight.SetupError(f"--iam-config {exc}") from exc
        if settings.secrets_file:
            from ecr_emulator.core.pullthrough.secrets import load_file

            try:
                load_file(settings.secrets_file)  # read again at each use; a file that cannot work stops here
            except ValueError as exc:
                raise preflight.SetupError(f"--secrets-file {exc}") from exc
        preflight.check_ports(settings)
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
        if args.repository:
            _require_repository(services, scope, args.repository)
        for result in run_all(services, scope, args.repository):
            print(json.dumps(result.as_dict()))
    elif args.command == "gc":
        from ecr_emulator.core import gc as gc_module

        print(json.dumps(gc_module.collect(services)))
    elif args.command == "vulndb":
        from ecr_emulator import vulndb_cli

        return vulndb_cli.run(args, services)
    elif args.command == "signing":
        from ecr_emulator import signing_cli

        return signing_cli.run(args, services)
    elif args.command == "db":
        from ecr_emulator.storage import migrate

        print(f"schema at revision {migrate.current_revision(services.db)}")
    return 0


def _require_repository(services, scope, name: str) -> None:  # type: ignore[no-untyped-def]
    from ecr_emulator.core import errors, repositories
    from ecr_emulator.preflight import SetupError

    with services.unit(scope) as ctx:
        try:
            repo = repositories.get(ctx, name)
        except errors.RepositoryNotFoundException:
            raise SetupError(f"--repository {name}: no such repository in registry {scope.account_id} "
                             f"({scope.region}); check the name, --account and --region") from None
        if repo.lifecycle_policy_text is None:
            print(f"ecr-emulator: repository {name} has no lifecycle policy; nothing to run", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
