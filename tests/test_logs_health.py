"""Health endpoints that stay with the control API off, JSON logs, and text logs nothing can forge."""

from __future__ import annotations

import json
import logging
import re

import requests

from ecr_emulator import logs
from tests.conftest import make_client
from tests.server import start_server

BANNER = re.compile(r"^ecr-emulator (API|registry) listening on |^ecr-emulator data in ")


def test_health_and_metrics_stay_with_the_control_api_off_and_json_logs(tmp_path):
    live = start_server(tmp_path / "data", "--no-control-api", "--log-format", "json")
    try:
        for url in (f"{live.api_url}/_emulator/health", f"{live.api_url}/healthz", f"{live.registry_url}/healthz"):
            r = requests.get(url, timeout=10)
            assert r.status_code == 200 and r.json()["status"] == "ok", (url, r.text)
            assert requests.head(url, timeout=10).status_code == 200
            assert requests.post(url, timeout=10).status_code == 405
        assert requests.get(f"{live.registry_url}/_emulator/health", timeout=10).status_code != 200  # API side only
        for base in (live.api_url, live.registry_url):  # unauthenticated, outside /v2
            r = requests.get(f"{base}/metrics", timeout=10)
            assert r.status_code == 200 and "ecr_emulator_http_requests_total" in r.text
        for path in ("reset", "clock", "coverage"):  # the control API itself is off
            assert requests.post(f"{live.api_url}/_emulator/{path}", json={}, timeout=10).status_code == 404
        ecr = make_client(live)
        ecr.create_repository(repositoryName="json/logs")
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        requests.get(f"{live.registry_url}/v2/json/logs/tags/list", headers={"Authorization": f"Basic {token}"},
                     timeout=10)
        requests.get(f"{live.registry_url}/v2/json/logs/manifests/a%0aFORGED", timeout=10)
    finally:
        live.stop()
    records = []
    for line in live.log().splitlines():
        if BANNER.match(line):
            continue  # the start-up banner on stdout stays text (tests and scripts read the ports from it)
        records.append(json.loads(line))  # every other line is one JSON object
    assert any(r["logger"] == "gunicorn.error" and "Booting worker" in r["message"] for r in records)
    create = next(r for r in records if r.get("endpoint") == "CreateRepository")
    assert create["listener"] == "api" and create["status"] == 200 and create["level"] == "info"
    assert create["request_id"] and create["duration_ms"] > 0 and create["pid"]
    tags = next(r for r in records if r.get("endpoint") == "tags_list")
    assert tags["method"] == "GET" and tags["path"] == "/v2/json/logs/tags/list" and tags["status"] == 200
    forged = next(r for r in records if "FORGED" in r.get("path", ""))
    assert forged["path"] == "/v2/json/logs/manifests/a\nFORGED"  # raw in its field, JSON-escaped on the line


def test_text_logs_escape_what_requests_carry(tmp_path):
    live = start_server(tmp_path / "data")
    try:
        for path in ("/v2/a%0aFORGED%20line/manifests/v1", "/v2/b%0d%0aFORGED/tags/list", "/x%0aFORGED",
                     "/v2/c%1b%5b31m/blobs/uploads/"):
            requests.get(live.registry_url + path, timeout=10)
            requests.get(live.api_url + path, timeout=10)
        requests.post(live.api_url + "/", data="{}", timeout=10,
                      headers={"X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.Bogus FORGED"})
    finally:
        live.stop()
    text = live.log()
    lines = text.splitlines()
    assert not [line for line in lines if "FORGED" in line and not line[:1].isdigit() and not line.startswith(" ")]
    assert all(not line.startswith("FORGED") for line in lines)
    assert "registry GET /v2/a%0AFORGED%20line/manifests/v1 " in text
    assert "registry GET /v2/b%0D%0AFORGED/tags/list " in text
    assert "\x1b" not in text
    assert "api unknown_operation 400" in text  # the raw target is not logged as a name


def test_formatters_keep_one_record_per_line():
    def record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
        exc_info = None
        if exc:
            try:
                raise ValueError("bad\nFORGED")
            except ValueError:
                import sys

                exc_info = sys.exc_info()
        return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)

    text = logs.TextFormatter().format(record("x %s", "a\nFORGED\u2028b\x85c", exc=True))
    first, *rest = text.splitlines()
    assert "a\\x0aFORGED\\u2028b\\x85c" in first
    assert rest and all(line.startswith("    ") for line in rest)
    line = logs.JsonFormatter().format(record("x %s", "a\nb", exc=True))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "x a\nb" and "FORGED" in entry["exception"] and entry["level"] == "error"
    assert logs.url_path("/v2/a b\n%/\u00e9") == "/v2/a%20b%0A%25/%E9"
