"""Building the process-wide services from settings, and wiping them (test-control reset)."""

from __future__ import annotations

from sqlalchemy import delete, select

from ecr_emulator.config import Settings
from ecr_emulator.core import features
from ecr_emulator.core.clock import Clock
from ecr_emulator.core.context import Services
from ecr_emulator.core.events import Bus
from ecr_emulator.core.iam.principals import IamConfig
from ecr_emulator.core.images.pulls import PullRecorder
from ecr_emulator.core.naming import RegistryHosts, Scope
from ecr_emulator.core.tokens import TokenSigner, load_or_create_secret
from ecr_emulator.storage import migrate
from ecr_emulator.storage.blobstore import BlobStore, open_store
from ecr_emulator.storage.db import Database
from ecr_emulator.storage.models import Base, Upload


def open_blob_store(settings: Settings) -> BlobStore:
    from ecr_emulator.storage.s3store import S3Options

    options = S3Options(
        endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
        access_key_id=settings.s3_access_key_id, secret_access_key=settings.s3_secret_access_key,
        path_style=settings.s3_path_style, max_connections=max(settings.threads + settings.job_workers + 8, 16),
    )
    return open_store(settings.blob_store, settings.data_path, options)


def build_services(settings: Settings, *, upgrade: bool = True) -> Services:
    """``upgrade`` is the start-up of a server's arbiter or of a CLI command: migrate the schema,
    check that the blob store answers, take over state an older version kept in files."""
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, pool_size=max(settings.threads + settings.job_workers + 4, 10))
    if upgrade:
        migrate.prepare(db)
    blobs = open_blob_store(settings)
    clock = Clock(db)
    if upgrade:
        check = getattr(blobs, "check", None)
        if check is not None:
            check()
        clock.adopt_file(data / "clock")
    services = Services(
        settings=settings,
        db=db,
        blobs=blobs,
        clock=clock,
        tokens=TokenSigner(load_or_create_secret(settings.token_secret, db, data), settings.token_ttl),
        hosts=RegistryHosts(
            settings.default_registry_host(), Scope(settings.default_account, settings.default_region),
            scheme="https" if settings.tls else "http",
            ports={Scope(account, region): port for (account, region), port in settings.registry_ports.items()},
        ),
        pulls=PullRecorder(db),
        events=features.wire(Bus()),
        iam=IamConfig.load(settings.iam_config),
    )
    if upgrade:
        from ecr_emulator.core.vulndb import store as vulndb

        vulndb.seed_if_empty(services)
    return services


def reset_all(services: Services) -> None:
    """Forget every repository, image, blob, job and setting of every account and region.

    Crash-safe: the rows go in one transaction, the bytes only after it committed (and only
    those no row names by then, see ``gc``). A reset killed before the commit changed nothing;
    one killed after it left only unrecorded files, which the next collection removes.
    """
    from ecr_emulator.core import gc

    def wipe(session) -> None:  # type: ignore[no-untyped-def]
        for table in reversed(Base.metadata.sorted_tables):
            if not table.info.get("keep_on_reset"):  # reference data (the vulnerability database)
                session.execute(delete(table))

    services.db.run(wipe, write=True)
    live = set(services.db.run(lambda s: list(s.scalars(select(Upload.id)))))
    for upload_id, _mtime in list(services.blobs.staging.uploads()):
        if upload_id not in live:
            services.blobs.staging.discard(upload_id)
    gc.sweep_unrecorded_files(services, grace=0.0)
