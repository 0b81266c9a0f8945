#!/usr/bin/env python3
"""Container health check: is the registry listener answering? Exit 0 if so, 1 if not.

``GET /v2/`` answers 401 (the login challenge) when the registry is up, and needs neither
credentials nor the test-control API, so the check holds whatever the settings. It reads the
port and TLS settings from the same ``ECR_EMULATOR_*`` variables the server reads (so set
them in the environment, not as flags, when you change them). Over HTTPS the certificate is
not verified: this is a loopback liveness probe, and the certificate may not name 127.0.0.1.
Standard library only, so it costs no import time worth mentioning.
"""

import os
import ssl
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("ECR_EMULATOR_REGISTRY_PORT", "5000")
    tls = os.environ.get("ECR_EMULATOR_TLS", "").lower() in ("1", "true", "yes", "on")
    tls = tls or bool(os.environ.get("ECR_EMULATOR_TLS_CERT"))
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/"
    context = ssl._create_unverified_context() if tls else None  # loopback liveness only
    try:
        urllib.request.urlopen(url, timeout=3, context=context)
    except urllib.error.HTTPError as exc:
        return 0 if exc.code == 401 else 1
    except OSError as exc:
        print(f"ecr-emulator unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
