"""Blobs and upload staging in an S3-compatible object store (boto3).

Layout under ``s3://bucket/prefix``: ``blobs/<algo>/<ab>/<hex>`` per blob and
``uploads/<upload id>/<segment>`` per staged segment.

Staging is a list of objects rather than one open multipart upload, for two reasons. The parts
of an unfinished multipart upload cannot be read back, and a part number written twice is
silently replaced, so a writer that lost its lease could overwrite what another recorded;
segment objects with fresh names are immutable and readable. An append buffers ``PART_SIZE``
bytes per object; a last segment shorter than ``MIN_PART`` (S3's smallest multipart part) is
read back and rewritten with the next append's first bytes, so every segment but the last can
be a part. Placing a blob is then server-side: one CopyObject for a single segment, else a
multipart upload whose parts are UploadPartCopy calls, one per segment; no byte of a blob passes
through the emulator twice.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from ecr_emulator.storage.blobstore import BlobStoreError, Segment, check_upload_id, split_digest

PART_SIZE = 8 * 1024 * 1024  # bytes per staged object: 10,000 parts reach 78 GiB (ECR's layer limit is ~51 GiB)
MIN_PART = 5 * 1024 * 1024  # S3's smallest multipart part (all but the last)
MAX_PARTS = 10_000
COPY_THREADS = 8
DELETE_BATCH = 1000


@dataclass(frozen=True)
class S3Options:
    """Connection settings; empty values fall back to boto3's own chain (AWS_* variables,
    ~/.aws files, instance roles)."""

    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    path_style: bool = False
    max_connections: int = 50


def _missing(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


class S3Staging:
    def __init__(self, store: S3BlobStore) -> None:
        self._store = store

    def key(self, upload_id: str, name: str = "") -> str:
        if name and ("/" in name or name.startswith(".")):
            raise ValueError(f"bad segment name {name!r}")
        return f"{self._store.prefix}uploads/{check_upload_id(upload_id)}/{name}"

    def append(self, upload_id: str, segments: list[Segment], chunks: Iterable[bytes]) -> list[Segment]:
        """Each full part is sent by a helper thread while the next one is received (at most
        one in flight, so a stream holds two parts of memory)."""
        store, out = self._store, list(segments)
        buf = bytearray()
        if out and int(out[-1][1]) < MIN_PART:  # too short to stand as a part: rewrite it with what follows
            name, _size = out.pop()
            buf += store.get_bytes(self.key(upload_id, name))
        received = 0
        with ThreadPoolExecutor(1) as sender:
            in_flight: Future[Segment] | None = None

            def send(data: bytes) -> None:
                nonlocal in_flight
                if in_flight is not None:
                    out.append(in_flight.result())
                in_flight = sender.submit(self._put, upload_id, data)

            try:
                for chunk in chunks:
                    buf += chunk
                    received += len(chunk)
                    while len(buf) >= PART_SIZE:
                        send(bytes(memoryview(buf)[:PART_SIZE]))
                        del buf[:PART_SIZE]
                if received and buf:
                    send(bytes(buf))
                if in_flight is not None:
                    out.append(in_flight.result())
            finally:
                if in_flight is not None:
                    in_flight.cancel()
        if not received:
            return list(segments)
        if len(out) > MAX_PARTS:
            raise BlobStoreError(f"an upload may span at most {MAX_PARTS} parts of {PART_SIZE} bytes")
        return out

    def _put(self, upload_id: str, body: bytes) -> Segment:
        name = uuid.uuid4().hex
        self._store.call("put_object", Key=self.key(upload_id, name), Body=body)
        return [name, len(body)]

    def read(self, upload_id: str, segments: list[Segment]) -> Iterator[bytes]:
        for name, _size in segments:
            with self._store.reader(self.key(upload_id, name)) as body:
                while chunk := body.read(PART_SIZE):
                    yield chunk

    def discard(self, upload_id: str) -> None:
        self._store.delete_prefix(self.key(upload_id))

    def uploads(self) -> Iterator[tuple[str, float]]:
        newest: dict[str, float] = {}
        base = f"{self._store.prefix}uploads/"
        for key, modified in self._store.keys(base):
            upload_id = key[len(base):].split("/", 1)[0]
            newest[upload_id] = max(newest.get(upload_id, 0.0), modified)
        yield from newest.items()


class S3BlobStore:
    slow_place = True  # server-side copies, one per segment

    def __init__(self, bucket: str, prefix: str, options: S3Options | None = None) -> None:
        import boto3
        from botocore.config import Config

        options = options or S3Options()
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if options.path_style else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=options.max_connections,
            connect_timeout=10,
            read_timeout=120,
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=options.endpoint_url or None,
            region_name=options.region or None,
            aws_access_key_id=options.access_key_id or None,
            aws_secret_access_key=options.secret_access_key or None,
            config=config,
        )
        self.staging = S3Staging(self)

    @classmethod
    def from_url(cls, url: str, options: S3Options | None = None) -> S3BlobStore:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"blob store {url!r} must look like s3://bucket[/prefix]")
        return cls(parts.netloc, parts.path, options)

    # ---- plumbing ----

    def call(self, operation: str, **params: Any) -> Any:
        """One S3 call on this bucket. A missing object raises FileNotFoundError; any other
        failure BlobStoreError, which names the store and the cause."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(params.get("Key", self.bucket)) from exc
            error = exc.response.get("Error", {})
            raise BlobStoreError(f"the object store refused {operation} in bucket '{self.bucket}': "
                                 f"{error.get('Code')} {error.get('Message', '')}".strip()) from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"the object store could not be reached for {operation} in bucket "
                                 f"'{self.bucket}': {exc}") from exc

    def check(self) -> None:
        """Fail at start-up, with the reason, if the bucket cannot be used."""
        try:
            self.call("head_bucket")
        except FileNotFoundError as exc:
            raise BlobStoreError(f"bucket '{self.bucket}' does not exist in the object store; create it "
                                 "first") from exc

    def reader(self, key: str, byte_range: str | None = None) -> BinaryIO:
        params = {"Key": key} if byte_range is None else {"Key": key, "Range": byte_range}
        return self.call("get_object", **params)["Body"]

    def get_bytes(self, key: str) -> bytes:
        with self.reader(key) as body:
            return body.read()

    def keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        token: dict[str, str] = {}
        while True:
            page = self.call("list_objects_v2", Prefix=prefix, **token)
            for item in page.get("Contents", []):
                yield item["Key"], item["LastModified"].timestamp()
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def delete_prefix(self, prefix: str) -> None:
        batch: list[dict[str, str]] = []
        for key, _modified in list(self.keys(prefix)):
            batch.append({"Key": key})
            if len(batch) == DELETE_BATCH:
                self.call("delete_objects", Delete={"Objects": batch, "Quiet": True})
                batch = []
        if batch:
            self.call("delete_objects", Delete={"Objects": batch, "Quiet": True})

    def _blob_key(self, digest: str) -> str:
        algo, hexpart = split_digest(digest)
        return f"{self.prefix}blobs/{algo}/{hexpart[:2]}/{hexpart}"

    # ---- blobs ----

    def stat(self, digest: str) -> int | None:
        try:
            return int(self.call("head_object", Key=self._blob_key(digest))["ContentLength"])
        except FileNotFoundError:
            return None

    def open(self, digest: str, start: int = 0, length: int | None = None) -> BinaryIO:
        key = self._blob_key(digest)
        if length == 0:
            self.call("head_object", Key=key)  # FileNotFoundError if it is not stored
            return io.BytesIO(b"")
        if start == 0 and length is None:
            return self.reader(key)
        end = "" if length is None else str(start + length - 1)
        return self.reader(key, f"bytes={start}-{end}")

    def delete(self, digest: str) -> None:
        self.call("delete_object", Key=self._blob_key(digest))

    def list(self) -> Iterator[tuple[str, float]]:
        base = f"{self.prefix}blobs/"
        for key, modified in self.keys(base):
            algo, _, rest = key[len(base):].partition("/")
            hexpart = rest.rpartition("/")[2]
            digest = f"{algo}:{hexpart}"
            try:
                split_digest(digest)
            except ValueError:
                continue  # not ours
            if rest == f"{hexpart[:2]}/{hexpart}":
                yield digest, modified

    def place(self, upload_id: str, segments: list[Segment], digest: str) -> None:
        key = self._blob_key(digest)
        sources = [self.staging.key(upload_id, name) for name, _size in segments]
        if not sources:
            self.call("put_object", Key=key, Body=b"")
        elif len(sources) == 1:
            self.call("copy_object", Key=key, CopySource={"Bucket": self.bucket, "Key": sources[0]})
        else:
            self._assemble(key, sources)

    def _assemble(self, key: str, sources: list[str]) -> None:
        """A multipart upload of server-side copies, one part per segment."""
        upload_id = self.call("create_multipart_upload", Key=key)["UploadId"]

        def copy(number: int) -> dict[str, Any]:
            result = self.call("upload_part_copy", Key=key, UploadId=upload_id, PartNumber=number,
                               CopySource={"Bucket": self.bucket, "Key": sources[number - 1]})
            return {"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]}

        try:
            with ThreadPoolExecutor(min(COPY_THREADS, len(sources))) as pool:
                parts = list(pool.map(copy, range(1, len(sources) + 1)))
            self.call("complete_multipart_upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self.call("abort_multipart_upload", Key=key, UploadId=upload_id)
            except OSError:
                pass  # the store's own lifecycle rules remove abandoned multipart uploads
            raise

    def redirect_url(self, digest: str, expires_in: int) -> str | None:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._blob_key(digest)}, ExpiresIn=expires_in
        )
