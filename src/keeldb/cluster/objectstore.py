"""A small typed client for an S3-compatible object store (AWS S3, SeaweedFS, MinIO, ...).

Cluster mode keeps sealed segments, index files and the write-ahead log as objects. What it
needs from S3 is narrow, and one primitive matters more than the rest: a *conditional* PUT
(``If-None-Match: *``) that creates an object only if nothing is at its key yet. One log
object per group commit, written that way, means two writers can never both own a log
position — the store, not a clock or a lease, decides who was first.

Why a wrapper rather than boto3 everywhere:

* one place that turns every botocore failure into :class:`ObjectStoreError` with the
  operation and the key in the message, so the engine handles one exception type;
* one place that gets the conditional PUT right when botocore retries it (see
  :meth:`ObjectStore.put_if_absent`);
* request accounting: S3 is billed and rate-limited per request, so the measurements of
  cluster mode report requests per acknowledged write, counted here at the HTTP level
  (retries included);
* SeaweedFS's listing order differs from S3's (see :meth:`ObjectStore.list`), and callers
  should not need to know.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from keeldb.errors import InvalidArgument, KeelError
from keeldb.extras import require
from keeldb.storage.filenames import tmp_name
from keeldb.storage.fs import fsync_dir

boto3 = require("boto3", extra="cluster", feature="cluster mode's object storage")
from botocore.config import Config  # noqa: E402 - installed with boto3, checked just above
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

_CHUNK = 1 << 20  # bytes per read when streaming a body to or from disk
_DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys per request
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

# Request accounting names. S3 prices (and throttles) requests by class, not by API name, so
# the counters use the names people compare with a bill: a LIST is a GET on the bucket and a
# multi-object delete is a POST, but each is counted as what it does.
_OP_NAMES = {
    "PutObject": "PUT",
    "GetObject": "GET",
    "HeadObject": "HEAD",
    "HeadBucket": "HEAD",
    "ListObjectsV2": "LIST",
    "ListObjects": "LIST",
    "DeleteObject": "DELETE",
    "DeleteObjects": "DELETE",
    "CreateBucket": "CREATE_BUCKET",
}


class ObjectStoreError(KeelError):
    """The object store failed or could not be reached, after botocore's retries.

    From :meth:`ObjectStore.put_if_absent` / :meth:`ObjectStore.upload_file` it means the
    outcome is UNKNOWN: the PUT may have landed (the reply was lost) or not. A caller that
    must know reads the key back.
    """


class PositionTaken(ObjectStoreError):
    """A conditional PUT found a *different* object already at the key: another writer won."""

    def __init__(self, key: str, detail: str = "") -> None:
        self.key = key
        super().__init__(
            f"object {key!r} already exists with different contents"
            + (f" ({detail})" if detail else "")
            + ": another writer holds this position"
        )


class RequestCounter:
    """HTTP requests sent, by operation class; shared by the threads of one :class:`ObjectStore`.

    A plain ``collections.Counter`` is not safe to increment from botocore's event hooks on
    several threads at once (``+=`` is a read-modify-write), hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def increment(self, op: str, n: int = 1) -> None:
        with self._lock:
            self._counts[op] = self._counts.get(op, 0) + n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> dict[str, int]:
        """Zero the counters; returns what they were (one lock, so nothing is lost between)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            return counts

    def __getitem__(self, op: str) -> int:
        with self._lock:
            return self._counts.get(op, 0)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def __repr__(self) -> str:
        return f"RequestCounter({self.snapshot()})"


def _error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _is_missing(e: ClientError) -> bool:
    # HEAD has no body, so its 404 arrives with the code "404" / "NotFound". A missing
    # *bucket* is also a 404 but is a configuration error, not an absent object.
    return _error_code(e) in ("NoSuchKey", "NotFound", "404")


def _is_precondition_failed(e: ClientError) -> bool:
    return _error_code(e) == "PreconditionFailed" or _status(e) == 412


def _server_start_after(list_prefix: str, start_after: str) -> str | None:
    """A StartAfter for the server such that it returns every key > ``start_after``
    (byte order) on both AWS S3 and SeaweedFS; extra keys are filtered out by the caller.

    SeaweedFS stores keys as a directory tree and lists and resumes per directory: it
    orders keys by their "/"-separated components (so ``a/b`` < ``a-``, while S3 has
    ``a-`` < ``a/b``), and StartAfter ``d/n`` means "in directory d, after entry n" — which
    also skips everything *under* ``d/n/``. Passing ``start_after`` through unchanged would
    therefore lose keys. Both problems come from the end of the key, so:

    * if a character that sorts before "/" (``-``, ``.``, space, ...) follows the listing
      prefix, resume at the start of the directory containing it (correct, maybe slower);
    * otherwise drop the last character: ``log/00042`` becomes ``log/0004``, which S3 treats
      as an earlier key and SeaweedFS as an earlier sibling whose subtree is not skipped.
      Fixed-width log positions thus re-read at most a handful of keys.

    Returns None when the server should list from the start of the prefix.
    """
    if not start_after.startswith(list_prefix) or len(start_after) <= len(list_prefix):
        return None
    tail_low = next(
        (i for i in range(len(list_prefix), len(start_after)) if start_after[i] < "/"), None
    )
    if tail_low is not None:
        cut = start_after.rfind("/", 0, tail_low) + 1
        candidate = start_after[:cut]
    elif start_after.endswith("/"):
        candidate = start_after
    else:
        candidate = start_after[:-1]
    return candidate if len(candidate) > len(list_prefix) else None


class ObjectStore:
    """One bucket (and a key prefix inside it) of an S3-compatible store.

    Keys passed to every method are relative to ``prefix``, so several clusters, or several
    tests, can share a bucket. Thread-safe: boto3 clients are, and the counters are locked.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
    ) -> None:
        if not _BUCKET_NAME.match(bucket):
            raise InvalidArgument(
                f"invalid bucket name {bucket!r}: 3-63 characters of a-z, 0-9, '.' and '-', "
                "starting and ending with a letter or digit"
            )
        self.bucket = bucket
        stripped = prefix.strip("/")
        self.prefix = f"{stripped}/" if stripped else ""
        env = os.environ
        self.endpoint = endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        self.region = (
            region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        config = Config(
            # Path-style: SeaweedFS, MinIO and friends have no wildcard DNS for
            # virtual-hosted buckets on 127.0.0.1; AWS still accepts path-style.
            s3={"addressing_style": "path"},
            connect_timeout=2,
            read_timeout=10,
            # "standard" retries throttling, 5xx and connection errors with jittered
            # backoff; 3 attempts in all bound the time to an ObjectStoreError to seconds.
            # (botocore's "max_attempts" counts retries only: 3 would mean 4 requests.)
            retries={"mode": "standard", "total_max_attempts": 3},
            # The default pool of 10 would serialise a flush that uploads more files at once.
            max_pool_connections=32,
        )
        # A private session: boto3's default session is not thread-safe to create clients
        # from, and we do not want a caller's global boto3 setup to leak in.
        session = boto3.session.Session()
        self._s3: Any = session.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key or env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=secret_key or env.get("AWS_SECRET_ACCESS_KEY"),
            region_name=self.region,
            config=config,
        )
        self.requests = RequestCounter()
        # before-send fires once per HTTP attempt, *inside* botocore's retry loop, so a
        # request that botocore retried twice counts three times — what the store saw.
        self._s3.meta.events.register("before-send.s3", self._count_request)

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> ObjectStore:
        """``s3://BUCKET`` or ``s3://BUCKET/PREFIX``; endpoint and credentials via ``kw``
        or the usual AWS_* environment variables."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise InvalidArgument(
                f"invalid object store URL {url!r}: expected s3://BUCKET or s3://BUCKET/PREFIX"
            )
        return cls(parts.netloc, parts.path.strip("/"), **kw)

    def __repr__(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"ObjectStore(s3://{self.bucket}/{self.prefix}{where})"

    def close(self) -> None:
        """Close the pooled HTTP connections (the object is unusable afterwards)."""
        self._s3.close()

    # -- accounting ----------------------------------------------------------------------

    def _count_request(self, request: Any = None, event_name: str = "", **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        name = _OP_NAMES.get(operation) or str(getattr(request, "method", operation)).upper()
        self.requests.increment(name)
        # Returning anything but None would make botocore use it as the HTTP response.
        return None

    def snapshot_requests(self) -> dict[str, int]:
        """Requests sent so far by class ("PUT", "GET", "LIST", "DELETE", "HEAD", ...)."""
        return self.requests.snapshot()

    # -- helpers -------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        key = key.lstrip("/")
        if not key:
            raise InvalidArgument("object key must not be empty")
        return self.prefix + key

    def _where(self, full_key: str) -> str:
        return f"s3://{self.bucket}/{full_key}"

    @contextmanager
    def _errors(self, op: str, full_key: str) -> Iterator[None]:
        """Everything botocore can raise, as ObjectStoreError naming the operation and key."""
        try:
            yield
        except ObjectStoreError:
            raise
        except ClientError as e:
            code, status = _error_code(e), _status(e)
            message = e.response.get("Error", {}).get("Message", "") or str(e)
            raise ObjectStoreError(
                f"S3 {op} {self._where(full_key)} failed: {code or status} {message}".rstrip()
            ) from e
        except (BotoCoreError, OSError) as e:
            raise ObjectStoreError(
                f"S3 {op} {self._where(full_key)} failed: {type(e).__name__}: {e}"
            ) from e

    # -- conditional writes --------------------------------------------------------------

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Create ``key`` with ``data`` only if no object exists there yet.

        This is the primitive behind "two writers can never both write the same log
        position": the store evaluates ``If-None-Match: *`` atomically, so of any number of
        racing PUTs to one key exactly one is stored and every other one gets 412
        Precondition Failed, which raises :class:`PositionTaken`.

        Why a 412 is not immediately PositionTaken: botocore retries a PUT whose reply was
        lost (connection reset, read timeout, 5xx). If the first attempt did land, the
        retry finds *our own* object and gets 412 — reporting that as a lost race would make
        a writer abandon a position it actually holds, and the log would have an object
        nobody acknowledges. So on 412 the object is read back and compared: the same bytes
        mean it is ours (return normally), different bytes mean another writer won.

        That reasoning needs the bytes to identify the writer: callers must put something
        writer-unique (node id, lease or epoch) into each object, so that two writers can
        never produce identical bytes for one position.

        No retry here beyond botocore's and the compare: re-sending a conditional PUT after
        an unknown outcome is exactly what the compare already resolves, and doing more
        would only widen the window in which the answer is ambiguous.

        Raises :class:`PositionTaken` if another writer's object is there, and
        :class:`ObjectStoreError` if the outcome is unknown (store unreachable, or the
        object vanished between the 412 and the read-back).
        """
        full = self._full(key)
        with self._errors("conditional PUT", full):
            try:
                self._s3.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*")
                return
            except ClientError as e:
                self._raise_unless_precondition_failed(e, full)
            self._resolve_precondition_failed(full, data)

    def upload_file(self, path: Path, key: str) -> None:
        """:meth:`put_if_absent` for a local file (a sealed segment or an index).

        Streams from disk: boto3 reads the open file in blocks to hash, sign and send it
        (and seeks back to re-send on a retry), and the read-back compare after a 412 also
        goes block by block, so memory stays flat for files of hundreds of MB. One PUT, not
        a multipart upload: S3 accepts up to 5 GB that way, and a multipart upload cannot
        be made conditional as simply.
        """
        full = self._full(key)
        with self._errors("conditional PUT", full):
            with open(path, "rb") as f:
                try:
                    self._s3.put_object(Bucket=self.bucket, Key=full, Body=f, IfNoneMatch="*")
                    return
                except ClientError as e:
                    self._raise_unless_precondition_failed(e, full)
            self._resolve_precondition_failed(full, Path(path))

    def _raise_unless_precondition_failed(self, e: ClientError, full: str) -> None:
        if _is_precondition_failed(e):
            return
        if _error_code(e) == "ConditionalRequestConflict" or _status(e) == 409:
            # AWS: another conditional write to this key is in flight. Which one lands is
            # not decided yet, so this is not PositionTaken; the caller must read back.
            raise ObjectStoreError(
                f"S3 conditional PUT {self._where(full)}: a concurrent conditional write is "
                "in progress (409); outcome unknown"
            ) from e
        raise e

    def _resolve_precondition_failed(self, full: str, ours: bytes | Path) -> None:
        """After a 412: return if the object at ``full`` is byte-identical to ``ours``."""
        with self._errors("GET (compare after 412)", full):
            try:
                resp = self._s3.get_object(Bucket=self.bucket, Key=full)
            except ClientError as e:
                if _is_missing(e):
                    raise ObjectStoreError(
                        f"S3 conditional PUT {self._where(full)}: refused as existing (412) but "
                        "the object is gone on read-back; outcome unknown"
                    ) from e
                raise
            body = resp["Body"]
            try:
                size = len(ours) if isinstance(ours, bytes) else ours.stat().st_size
                theirs = int(resp.get("ContentLength", -1))
                if theirs != size:
                    raise PositionTaken(full, f"{theirs} bytes there, {size} bytes ours")
                if isinstance(ours, bytes):
                    same = body.read() == ours
                else:
                    with open(ours, "rb") as f:
                        same = _streams_equal(body, f)
            finally:
                body.close()
            if not same:
                raise PositionTaken(full)

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None if there is no object at ``key``."""
        full = self._full(key)
        with self._errors("GET", full):
            try:
                resp = self._s3.get_object(Bucket=self.bucket, Key=full)
            except ClientError as e:
                if _is_missing(e):
                    return None
                raise
            body = resp["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

    def download(self, key: str, path: Path) -> bool:
        """Write the object to ``path`` atomically; False (and no file) if it is missing.

        Via ``path.tmp`` + fsync + rename (+ fsync of the directory), so a crash leaves
        either no file or the whole object at ``path`` — never a torn file that a later
        open would take for a complete segment.
        """
        full = self._full(key)
        path = Path(path)
        tmp = path.with_name(tmp_name(path.name))
        with self._errors("GET", full):
            try:
                resp = self._s3.get_object(Bucket=self.bucket, Key=full)
            except ClientError as e:
                if _is_missing(e):
                    return False
                raise
            body = resp["Body"]
            try:
                with open(tmp, "wb") as f:
                    for chunk in body.iter_chunks(_CHUNK):
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            finally:
                body.close()
            fsync_dir(path.parent)
            return True

    def list(self, prefix: str = "", start_after: str = "") -> list[str]:
        """All keys under ``prefix`` that sort after ``start_after``, relative to the
        store's prefix and sorted in byte order (S3's order; SeaweedFS lists in directory
        order, so the server's order is never relied on).

        Paginates with continuation tokens. SeaweedFS 4.48 caveat: its continuation token
        is the last key of the page, resumed as "after this directory entry", so if the
        last key of a 1000-key page is also a directory prefix of other keys (``x/1`` and
        ``x/1/y``), the keys under it are skipped. Layouts must not use a key that is also a
        "directory" of other keys.
        """
        list_prefix = self.prefix + prefix.lstrip("/")
        full_after = self.prefix + start_after.lstrip("/") if start_after else ""
        server_after = _server_start_after(list_prefix, full_after) if full_after else None
        keys: list[str] = []
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": list_prefix}
        if server_after is not None:
            args["StartAfter"] = server_after
        with self._errors("LIST", list_prefix + "*"):
            while True:
                resp = self._s3.list_objects_v2(**args)
                keys.extend(obj["Key"] for obj in resp.get("Contents", ()))
                token = resp.get("NextContinuationToken")
                if not resp.get("IsTruncated") or not token:
                    break
                args["ContinuationToken"] = token
        cut = len(self.prefix)
        return sorted(k[cut:] for k in set(keys) if k.startswith(list_prefix) and (k > full_after))

    # -- deletes and setup ---------------------------------------------------------------

    def delete_many(self, keys: list[str]) -> None:
        """Delete ``keys`` (missing ones are fine: S3 reports them as deleted)."""
        full = [self._full(k) for k in keys]
        for i in range(0, len(full), _DELETE_BATCH):
            batch = full[i : i + _DELETE_BATCH]
            with self._errors(f"DELETE ({len(batch)} keys)", batch[0]):
                resp = self._s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            errors = [e for e in resp.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
            if errors:
                shown = ", ".join(f"{e.get('Key')}: {e.get('Code')}" for e in errors[:5])
                raise ObjectStoreError(
                    f"S3 DELETE in s3://{self.bucket}: {len(errors)} of {len(batch)} keys "
                    f"failed ({shown})"
                )

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (a fresh SeaweedFS or MinIO starts empty)."""
        with self._errors("HEAD bucket", ""):
            try:
                self._s3.head_bucket(Bucket=self.bucket)
                return
            except ClientError as e:
                if _status(e) != 404 and _error_code(e) not in ("404", "NoSuchBucket"):
                    raise
            kw: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
                kw["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self._s3.create_bucket(**kw)
            except ClientError as e:
                # Lost a race with another creator: the bucket exists, which is all we want.
                if _error_code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise


def _streams_equal(a: Any, b: IO[bytes]) -> bool:
    """Compare a botocore StreamingBody with a file, block by block, stopping at the first
    difference. The blocks need not line up: S3 bodies arrive in network-sized pieces."""
    pending = b""
    for chunk in a.iter_chunks(_CHUNK):
        pending += chunk
        while len(pending) >= _CHUNK:
            if b.read(_CHUNK) != pending[:_CHUNK]:
                return False
            pending = pending[_CHUNK:]
    rest = b.read()
    return rest == pending
