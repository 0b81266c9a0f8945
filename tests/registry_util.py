"""Helpers for raw-HTTP registry tests."""

from __future__ import annotations

import requests


def oci_error(resp: requests.Response) -> tuple[int, str, str]:
    err = resp.json()["errors"][0]
    return resp.status_code, err["code"], err["message"]
