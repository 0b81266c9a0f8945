"""The blob store driver contract, run against every driver: the filesystem store and the S3
store (against moto's S3 server on loopback). What ``core`` relies on is written here once;
a new driver passes this module or it does not plug in (in the spirit of Distribution's
storage-driver test suite)."""

from __future__ import annotations

import errno
import fcntl
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ecr_emulator.storage.blobstore import BlobStore
from ecr_emulator.storage.fsstore import FilesystemBlobStore
from ecr_emulator.storage.s3store import MIN_PART, PART_SIZE, S3BlobStore, S3Options
from tests import s3server
from tests.images import sha

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def bucket(s3) -> str:
    return s3.new_bucket()


@pytest.fixture(params=["filesystem", "s3"])
def store(request, tmp_path) -> BlobStore:
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "data")
    s3 = request.getfixturevalue("s3")
    options = S3Options(endpoint_url=s3.endpoint_url, region=s3server.REGION, access_key_id=s3server.ACCESS_KEY,
                        secret_access_key=s3server.SECRET_KEY, path_style=True)
    return S3BlobStore(request.getfixturevalue("bucket"), f"suite/{uuid.uuid4().hex}", options)


def _upload_id() -> str:
    return str(uuid.uuid4())


def _stage(store: BlobStore, upload_id: str, *pieces: bytes) -> list:
    """Each piece is one append (one PATCH), fed in 1 MiB chunks."""
    segments: list = []
    for piece in pieces:
        segments = store.staging.append(upload_id, segments, (piece[i:i + MIB] for i in range(0, len(piece), MIB)))
    return segments


def _staged(store: BlobStore, upload_id: str, segments: list) -> bytes:
    return b"".join(store.staging.read(upload_id, segments))


def _commit(store: BlobStore, *pieces: bytes) -> tuple[str, bytes]:
    data = b"".join(pieces)
    upload_id = _upload_id()
    store.place(upload_id, _stage(store, upload_id, *pieces), sha(data))
    store.staging.discard(upload_id)
    return sha(data), data


def _read(store: BlobStore, digest: str, start: int = 0, length: int | None = None) -> bytes:
    with store.open(digest, start, length) as fh:
        out = b""
        while chunk := fh.read(MIB):
            out += chunk
        return out


# ---- blobs


def test_a_blob_that_is_not_stored(store):
    digest = sha(b"never stored")
    assert store.stat(digest) is None
    with pytest.raises(FileNotFoundError):
        store.open(digest)
    with pytest.raises(FileNotFoundError):
        store.open(digest, 10, 5)
    store.delete(digest)  # deleting what is not there is not an error
    assert digest not in dict(store.list())


def test_place_stat_read_delete(store):
    digest, data = _commit(store, os.urandom(3 * MIB + 17))
    assert store.stat(digest) == len(data)
    assert _read(store, digest) == data
    listed = dict(store.list())
    assert set(listed) == {digest}
    assert abs(listed[digest] - time.time()) < 300
    store.delete(digest)
    assert store.stat(digest) is None and digest not in dict(store.list())


@pytest.mark.parametrize(("start", "length"), [(0, 1), (5, 100), (MIB - 1, 2), (0, None), (1234, None)])
def test_ranged_reads(store, start, length):
    digest, data = _commit(store, os.urandom(2 * MIB))
    expected = data[start:] if length is None else data[start:start + length]
    assert _read(store, digest, start, length) == expected


def test_the_last_byte_and_an_empty_range(store):
    digest, data = _commit(store, os.urandom(1000))
    assert _read(store, digest, 999, 1) == data[-1:]
    assert _read(store, digest, 999, None) == data[-1:]
    assert _read(store, digest, 0, 0) == b""


def test_an_empty_blob(store):
    digest, data = _commit(store)
    assert data == b"" and store.stat(digest) == 0 and _read(store, digest) == b""


def test_many_small_appends_make_one_blob(store):
    """Chunked uploads: appends far smaller than S3's smallest part still place as one blob."""
    pieces = [os.urandom(700 * 1024 + i) for i in range(9)]
    digest, data = _commit(store, *pieces)
    assert _read(store, digest) == data


def test_a_blob_of_many_parts(store):
    """Larger than several object-store parts, in appends that do not line up with them."""
    pieces = [os.urandom(PART_SIZE + 3 * MIB), os.urandom(2 * MIB), os.urandom(PART_SIZE * 2 + 1)]
    digest, data = _commit(store, *pieces)
    assert store.stat(digest) == len(data)
    assert _read(store, digest, len(data) - 10) == data[-10:]
    assert sha(_read(store, digest)) == digest


def test_place_replaces_damaged_bytes(store):
    """A blob whose stored bytes are wrong (damaged, half-written by an old version) is
    repaired by placing it again: the address then holds the staged bytes."""
    good = os.urandom(5000)
    digest = sha(good)
    bad_upload = _upload_id()
    store.place(bad_upload, _stage(store, bad_upload, b"garbage"), digest)
    upload_id = _upload_id()
    store.place(upload_id, _stage(store, upload_id, good), digest)
    assert _read(store, digest) == good and store.stat(digest) == len(good)


def test_placing_the_same_blob_at_once(store):
    data = os.urandom(3 * MIB)
    uploads = [_upload_id() for _ in range(4)]
    staged = {u: _stage(store, u, data) for u in uploads}
    with ThreadPoolExecutor(len(uploads)) as pool:  # an error in any of them is raised here
        list(pool.map(lambda u: store.place(u, staged[u], sha(data)), uploads))
    assert _read(store, sha(data)) == data


def test_bad_names_are_refused(store):
    for digest in ["", "sha256", "sha256:../../etc", "sha256:ABC", "../x:abcd", "sha256:" + "a" * 10]:
        with pytest.raises(ValueError):
            store.stat(digest)
    for upload_id in ["", "../x", ".hidden", "a/b", "x" * 100]:
        with pytest.raises(ValueError):
            store.staging.append(upload_id, [], [b"x"])


# ---- staging


def test_staging_reads_back_what_was_appended(store):
    upload_id = _upload_id()
    pieces = [os.urandom(n) for n in (10, MIB + 5, 3, 6 * MIB)]
    segments = _stage(store, upload_id, *pieces)
    assert sum(int(size) for _name, size in segments) == sum(map(len, pieces))
    assert _staged(store, upload_id, segments) == b"".join(pieces)


def test_an_empty_append_changes_nothing(store):
    upload_id = _upload_id()
    assert store.staging.append(upload_id, [], []) == []
    segments = _stage(store, upload_id, b"abc")
    assert store.staging.append(upload_id, segments, [b""]) == segments


def test_an_append_never_changes_what_an_earlier_list_holds(store):
    """Writers are fenced by the database: a list recorded earlier stays readable whatever is
    appended after it, and two writers appending to the same list get independent results."""
    upload_id = _upload_id()
    base = _stage(store, upload_id, os.urandom(MIB))
    first = store.staging.append(upload_id, base, [b"first writer"])
    second = store.staging.append(upload_id, base, [b"second writer"])
    assert _staged(store, upload_id, base) == _staged(store, upload_id, first)[:MIB]
    assert _staged(store, upload_id, first)[MIB:] == b"first writer"
    assert _staged(store, upload_id, second)[MIB:] == b"second writer"


def test_a_failing_source_records_nothing(store):
    upload_id = _upload_id()
    base = _stage(store, upload_id, b"kept")

    def broken():  # type: ignore[no-untyped-def]
        yield os.urandom(MIB)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.staging.append(upload_id, base, broken())
    assert _staged(store, upload_id, base) == b"kept"


def test_place_leaves_staging_and_discard_removes_it(store):
    upload_id = _upload_id()
    data = os.urandom(2 * MIB)
    segments = _stage(store, upload_id, data[:MIB], data[MIB:])
    store.place(upload_id, segments, sha(data))
    assert _staged(store, upload_id, segments) == data
    listed = dict(store.staging.uploads())
    assert upload_id in listed and abs(listed[upload_id] - time.time()) < 300
    store.staging.discard(upload_id)
    assert upload_id not in dict(store.staging.uploads())
    store.staging.discard(upload_id)  # twice is fine
    assert _read(store, sha(data)) == data  # the blob does not depend on its staging


def test_staging_is_not_listed_as_blobs(store):
    upload_id = _upload_id()
    _stage(store, upload_id, b"staged only")
    assert list(store.list()) == []


# ---- presigned URLs


def test_redirect_urls_serve_the_blob_without_credentials(store):
    digest, data = _commit(store, os.urandom(MIB + 3))
    url = store.redirect_url(digest, 600)
    if isinstance(store, FilesystemBlobStore):
        assert url is None  # the registry streams files itself
        return
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == data
    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=30)
    assert part.status_code == 206 and part.content == data[10:20]


def test_s3_staging_keeps_every_segment_but_the_last_a_valid_part(s3, bucket):
    """S3 multipart parts must be at least 5 MiB except the last: small appends are merged."""
    options = S3Options(endpoint_url=s3.endpoint_url, region=s3server.REGION, access_key_id=s3server.ACCESS_KEY,
                        secret_access_key=s3server.SECRET_KEY, path_style=True)
    store = S3BlobStore(bucket, f"parts/{uuid.uuid4().hex}", options)
    upload_id = _upload_id()
    segments = _stage(store, upload_id, *[os.urandom(MIB)] * 7, os.urandom(PART_SIZE + MIB), os.urandom(10))
    assert all(size >= MIN_PART for _name, size in segments[:-1]), segments
    assert all(size <= PART_SIZE + MIN_PART for _name, size in segments), segments


# ---- the filesystem driver's own ways


def _inode(path) -> int:  # type: ignore[no-untyped-def]
    return os.stat(path).st_ino


def test_filesystem_chunked_upload_is_one_file_placed_by_a_link(tmp_path):
    """Appends write on in the last segment's file, so a chunked upload is placed as a
    monolithic one is: a hard link, no copy of the bytes."""
    store = FilesystemBlobStore(tmp_path / "data")
    upload_id, pieces = _upload_id(), [os.urandom(MIB + 1), b"x", os.urandom(3 * MIB)]
    segments = _stage(store, upload_id, *pieces)
    assert len(segments) == 1 and segments[0][1] == sum(map(len, pieces))
    digest = sha(b"".join(pieces))
    store.place(upload_id, segments, digest)
    assert _inode(store._blob_path(digest)) == _inode(store.staging.path(upload_id, segments[0][0]))
    assert _read(store, digest) == b"".join(pieces)


def test_filesystem_append_leaves_a_segment_someone_writes(tmp_path):
    """A writer that lost its lease may still be writing the last segment's file: the next
    append writes a new file, and placing copies the recorded bytes instead of linking a file
    that may still grow."""
    store = FilesystemBlobStore(tmp_path / "data")
    upload_id, first, second = _upload_id(), os.urandom(5000), os.urandom(3000)
    base = _stage(store, upload_id, first)
    path = store.staging.path(upload_id, base[0][0])
    with open(path, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # the other writer, mid-request
        segments = store.staging.append(upload_id, base, [second])
        assert len(segments) == 2 and segments[0] == base[0]
        digest = sha(first)
        store.place(upload_id, base, digest)
        assert _inode(store._blob_path(digest)) != _inode(path)
        with open(path, "ab") as late:
            late.write(b"the other writer's late bytes")
    assert _read(store, digest) == first
    assert _staged(store, upload_id, segments) == first + second


def test_filesystem_append_after_a_crash_or_a_link_writes_a_new_file(tmp_path):
    """Bytes past what the list records (a writer that died mid-request) and a file that is
    already a blob are never written on: the append takes a new file, the blob keeps its bytes."""
    store = FilesystemBlobStore(tmp_path / "data")
    upload_id, data = _upload_id(), os.urandom(4000)
    base = _stage(store, upload_id, data)
    digest = sha(data)
    store.place(upload_id, base, digest)  # linked
    after_link = store.staging.append(upload_id, base, [b"more"])
    assert len(after_link) == 2 and _read(store, digest) == data

    other = _upload_id()
    base = _stage(store, other, data)
    with open(store.staging.path(other, base[0][0]), "ab") as torn:
        torn.write(b"half a part")
    segments = store.staging.append(other, base, [b"next"])
    assert len(segments) == 2 and _staged(store, other, segments) == data + b"next"
    store.place(other, base, digest)  # the recorded bytes only
    assert _read(store, digest) == data


def test_filesystem_place_links_nothing_a_writer_holds_where_locks_need_writing(tmp_path, monkeypatch):
    """NFS emulates flock with byte-range locks, which refuse an exclusive lock on a descriptor
    opened for reading only: placing must still see the writer's lock and copy, not link."""
    real = fcntl.flock

    def nfs_flock(fd, operation):  # type: ignore[no-untyped-def]
        if operation & fcntl.LOCK_EX and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        return real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", nfs_flock)
    store = FilesystemBlobStore(tmp_path / "data")
    upload_id, data = _upload_id(), os.urandom(5000)
    segments = _stage(store, upload_id, data)
    path = store.staging.path(upload_id, segments[0][0])
    with open(path, "r+b") as writer:
        nfs_flock(writer.fileno(), fcntl.LOCK_EX)  # a writer that lost its lease, still writing
        store.place(upload_id, segments, sha(data))
        writer.seek(0, os.SEEK_END)
        writer.write(b"late bytes")
    assert _read(store, sha(data)) == data


@pytest.mark.parametrize("refusal", ["at once", "midway", "first segment only"])
def test_filesystem_place_copies_itself_where_the_kernel_will_not(tmp_path, monkeypatch, refusal):
    """Several segments are joined by the kernel (copy_file_range); where it refuses (another
    filesystem, an old kernel), at once, after part of a segment or for one segment only, the
    bytes are copied through the process from where the kernel stopped, in order, and the blob
    is whole."""
    store = FilesystemBlobStore(tmp_path / "data")
    upload_id, pieces = _upload_id(), [os.urandom(700), os.urandom(5000), os.urandom(3000)]  # 700 < a write buffer
    segments = _stage(store, upload_id, pieces[0])
    for piece in pieces[1:]:  # a file holding more than its list names ends each segment
        store.staging.append(upload_id, segments, [b"another writer's bytes"])
        segments = store.staging.append(upload_id, segments, [piece])
    assert len(segments) == 3
    real, calls = os.copy_file_range, []

    def refusing(src, dst, count, *args):  # type: ignore[no-untyped-def]
        calls.append(count)
        if refusal == "midway" and len(calls) == 1:
            return real(src, dst, min(count, 100))
        if refusal == "first segment only" and len(calls) > 1:
            return real(src, dst, count)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refusing)
    data = b"".join(pieces)
    store.place(upload_id, segments, sha(data))
    assert calls
    assert _read(store, sha(data)) == data
