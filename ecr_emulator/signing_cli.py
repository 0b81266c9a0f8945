"""``ecr-emulator signing certificate PROFILE_ARN``: the certificates managed signing signs with.

Prints PEM to stdout, for a Notation trust store or any X.509 verifier: by default the chain a
signature's ``x5c`` holds (the profile's code-signing certificate, then its registry's root CA),
``--part root`` only the root (the trust anchor), ``--part leaf`` only the profile's certificate.
The key and certificates are made on first use and kept in the database, so this works before the
profile has signed anything and gives what a running server signs with (same --data-dir or
--database-url).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ecr_emulator import config
from ecr_emulator.core.context import Services


def add_parsers(sub: Any, storage_settings: list[str]) -> None:
    signing = sub.add_parser("signing", help="managed signing")
    signing_sub = signing.add_subparsers(dest="signing_command", required=True)
    cert = signing_sub.add_parser(
        "certificate", help="print a signing profile's certificates (PEM) to verify its signatures with",
        description=__doc__.split("\n\n", 1)[1], epilog=config.settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cert.add_argument("profile_arn", metavar="PROFILE_ARN",
                      help="arn:aws:signer:<region>:<account>:/signing-profiles/<name>")
    cert.add_argument("--part", choices=("chain", "root", "leaf"), default="chain",
                      help="what to print (default: the chain, leaf first)")
    config.add_arguments(cert, storage_settings)


def run(args: argparse.Namespace, services: Services) -> int:
    from ecr_emulator.core.signing import keys

    try:
        sys.stdout.write(keys.certificates(services, args.profile_arn, args.part))
    except ValueError as exc:
        print(f"ecr-emulator: {exc}", file=sys.stderr)
        return 2
    return 0
