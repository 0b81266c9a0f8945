"""Replication: the registry's configuration, image statuses and backfills."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core.context import Context
from ecr_emulator.core.replication import backfill, config, flow


@operation("PutReplicationConfiguration")
def put_replication_configuration(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"replicationConfiguration": config.put(ctx, p["replicationConfiguration"])}


@operation("DescribeRegistry", write=False)
def describe_registry(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ctx.registry_id, "replicationConfiguration": config.configuration(ctx)}


@operation("DescribeImageReplicationStatus", write=False)
def describe_image_replication_status(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return flow.statuses(ctx, p["repositoryName"], p["imageId"])


@operation("StartReplicationBackfill")
def start_replication_backfill(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    row = backfill.start(ctx, p["destination"])
    return {"replicationBackfillId": row.id, "registryId": ctx.registry_id, "destination": backfill.destination(row),
            "status": row.status, "startedAt": row.started_at}


@operation("StopReplicationBackfill")
def stop_replication_backfill(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    row = backfill.stop(ctx, p["replicationBackfillId"])
    return {"registryId": ctx.registry_id, "replicationBackfillId": row.id, "destination": backfill.destination(row),
            "status": row.status, "startedAt": row.started_at}


@operation("ListReplicationBackfills", write=False)
def list_replication_backfills(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    rows, token = backfill.list_backfills(ctx, p.get("nextToken"), p.get("maxResults"))
    return {"registryId": ctx.registry_id, "backfills": [backfill.summary(r) for r in rows], "nextToken": token}


@operation("DescribeReplicationBackfillResults", write=False)
def describe_replication_backfill_results(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return backfill.results(ctx, p["replicationBackfillId"], p.get("resultStatusFilter"), p.get("nextToken"),
                            p.get("maxResults"))
