"""Prometheus metrics (``prometheus_client``), served as ``GET /metrics`` on both listeners.

Requests are counted by listener, by ECR operation (API) or named route (registry), never by
raw path, and by status; their latency goes into a histogram; the registry's pushed and pulled
bytes are counted per route; background jobs per kind and outcome. All of it is recorded at
one seam per listener (``ecr_emulator/observe.py``) and one for jobs (the ``JobFinished`` event).
Under the server every worker process writes its values to the multiprocess directory
(``ecr_emulator/multiprocess.py``) and a scrape adds up all workers, live and gone. What the
registry holds (repositories, images, blobs, queued and failed jobs, advisories) is counted
from the database at scrape time, so it is right whichever process changed it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from ecr_emulator.core import stats
from ecr_emulator.core.context import Services
from ecr_emulator.core.events import JobFinished
from ecr_emulator.multiprocess import ENV

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter("ecr_emulator_http_requests", "HTTP requests by listener, endpoint (ECR operation or "
                   "registry route) and status code", ["listener", "endpoint", "status"], registry=None)
LATENCY = Histogram("ecr_emulator_http_request_duration_seconds", "Seconds from a request's arrival until its "
                    "response starts, by listener and endpoint", ["listener", "endpoint"],
                    buckets=LATENCY_BUCKETS, registry=None)
PUSHED = Counter("ecr_emulator_pushed_bytes", "Bytes of blobs and manifests the registry accepted (request "
                 "bodies of successful pushes), by route", ["route"], registry=None)
PULLED = Counter("ecr_emulator_pulled_bytes", "Bytes of blobs and manifests the registry served (bodies of "
                 "successful GETs), by route", ["route"], registry=None)
JOB_RUNS = Counter("ecr_emulator_job_runs", "Background job runs by kind and outcome (succeeded, failed)",
                   ["kind", "outcome"], registry=None)
JOB_LATENCY = Histogram("ecr_emulator_job_duration_seconds", "Seconds a background job run took, by kind",
                        ["kind"], buckets=LATENCY_BUCKETS, registry=None)
RECORDED = [REQUESTS, LATENCY, PUSHED, PULLED, JOB_RUNS, JOB_LATENCY]


_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, remembered: label sets are few (operations, routes, statuses) and
    the lookup is a measurable part of a small request."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def request_done(listener: str, endpoint: str, status: str, seconds: float) -> None:
    _child(REQUESTS, listener, endpoint, status).inc()
    _child(LATENCY, listener, endpoint).observe(seconds)


def bytes_pushed(route: str, count: int) -> None:
    _child(PUSHED, route).inc(count)


def bytes_pulled(route: str, count: int) -> None:
    _child(PULLED, route).inc(count)


def job_done(_ctx: object, event: JobFinished) -> None:
    """Subscribed to ``JobFinished`` (``wsgi.observed``)."""
    _child(JOB_RUNS, event.kind, "succeeded" if event.succeeded else "failed").inc()
    _child(JOB_LATENCY, event.kind).observe(event.seconds)


class DatabaseCollector:
    """Gauges counted from the database when scraped."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ecr_emulator_database_up", "1 when the database answered this scrape, else 0")
        try:
            found = self.services.db.run(stats.collect)
        except Exception:  # the scrape still says that the database is down
            log.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        repos = GaugeMetricFamily("ecr_emulator_repositories", "Repositories per registry",
                                  labels=["account", "region"])
        for account, region, n in found.repositories:
            repos.add_metric([account, region], n)
        yield repos
        images = GaugeMetricFamily("ecr_emulator_images", "Images (manifests) per registry and status",
                                   labels=["account", "region", "status"])
        for account, region, status, n in found.images:
            images.add_metric([account, region, status], n)
        yield images
        yield GaugeMetricFamily("ecr_emulator_stored_blobs", "Blobs in the content store", value=found.blobs)
        yield GaugeMetricFamily("ecr_emulator_stored_blob_bytes", "Bytes of the blobs in the content store",
                                value=found.blob_bytes)
        jobs = GaugeMetricFamily("ecr_emulator_jobs", "Background jobs in the queue by kind and status "
                                 "(pending, running, failed)", labels=["kind", "status"])
        for kind, status, n in found.jobs:
            jobs.add_metric([kind, status], n)
        yield jobs
        yield GaugeMetricFamily("ecr_emulator_vulnerability_advisories", "OSV records in the vulnerability "
                                "database", value=found.advisories)


def scrape_registry(services: Services) -> CollectorRegistry:
    """What one scrape reports: every worker's recorded values (or this process's, when not running
    under the multiprocess server), plus the database gauges."""
    registry = CollectorRegistry()
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in RECORDED:
            registry.register(metric)
    registry.register(DatabaseCollector(services))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
