"""How tests read errors: ECR's {"__type", "message"} through botocore, and OCI error bodies."""

from __future__ import annotations

import requests


def error_of(exc_info) -> tuple[str, str]:
    err = exc_info.value.response["Error"]
    return err["Code"], err["Message"]


def oci_error(resp: requests.Response) -> tuple[int, str, str]:
    err = resp.json()["errors"][0]
    return resp.status_code, err["code"], err["message"]
