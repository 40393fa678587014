#!/usr/bin/env python3
"""Run Milvus's own pytest suite (tests/python_client) against a fresh `keeldb serve`.

Why: keeldb claims that unmodified pymilvus programs work against it. Milvus ships its
compatibility contract as that suite, so the honest measure is to run it as Milvus's CI does
-- one server, `pytest <folder> --tags <level> --host --port` -- and to say, per failure,
which call it was, what Milvus answers and what keeldb answered. This script does exactly
that and nothing to the suite beyond what it needs to import (see `patch_suite`).

    python compat/milvus_suite.py                                  # milvus_client, L0
    python compat/milvus_suite.py --level L1 --workers 2 --out /tmp/l1
    python compat/milvus_suite.py --folder milvus_client_v2 --level L0 -k search
    python compat/milvus_suite.py --report /tmp/l1/junit.xml       # re-cluster a past run
    python compat/milvus_suite.py --level L0 --compare compat/baseline/milvus_client-L0.json

Pieces, and why they are separate:
- the suite (a tgz of the Milvus repo's tests/python_client) is extracted once into a cache
  directory and patched there, never in the tgz, so the copy stays the upstream text;
- the suite gets its own virtualenv (compat/requirements-suite.txt, created once and reused)
  because it pins dozens of packages keeldb must not depend on;
- keeldb runs from the caller's environment as a separate process (`keeldb` on PATH, or
  `--keeldb CMD`), the way a user would run it, on a fresh data directory and a free port on
  127.0.0.1, and is stopped with SIGTERM (then SIGKILL) whatever happens to pytest;
- a small pytest plugin (compat/plugin/keeldb_suite_plugin.py) records, for each failure,
  what the suite's checker expected and what the server answered, because the suite's own
  messages omit both (see that file);
- results are parsed from pytest's junit XML and clustered by a normalised signature, printed
  and written as JSON (`--out`) so that two runs can be compared (`--compare`).
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLUGIN_DIR = HERE / "plugin"
PLUGIN = "keeldb_suite_plugin"
REQUIREMENTS = HERE / "requirements-suite.txt"
DEFAULT_TGZ = HERE.parent.parent / "shared" / "milvus-tests" / "python_client.tgz"
DEFAULT_CACHE = Path.home() / ".cache" / "keeldb-milvus-suite"
SUITE_SUBDIR = Path("tests") / "python_client"
HOST = "127.0.0.1"
"""The only address the runner starts a server on or connects to."""

NUMPY_PATCH = {
    # numpy 2 removed the NaN alias; the suite uses it as a sentinel default argument.
    "from numpy import NaN\n": "from numpy import nan as NaN  # keeldb-suite patch: numpy 2\n",
}
PATCHED_FILES = ("base/collection_wrapper.py", "base/partition_wrapper.py")


def log(msg: str) -> None:
    """Progress lines go to stderr so stdout holds only the report."""
    print(f"[milvus-suite] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- suite + venv


def _digest(path: Path) -> str:
    """Short content hash: a changed tgz or requirements file gets a fresh cache entry."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def patch_suite(root: Path) -> list[str]:
    """Apply the numpy-2 import fix to the extracted copy; idempotent.

    This is the only change made to the suite. Without it `base/` does not import under
    numpy 2. requirements-suite.txt pins the suite's own numpy 1.26.4 (under numpy 2 its data
    generators overflow), where the patched line means the same, so the patch costs nothing
    and keeps a numpy 2 set usable. Returns the files changed.
    """
    changed = []
    for rel in PATCHED_FILES:
        path = root / rel
        if not path.exists():
            continue
        text = path.read_text()
        new = text
        for old, repl in NUMPY_PATCH.items():
            new = new.replace(old, repl)
        if new != text:
            path.write_text(new)
            changed.append(rel)
    return changed


def ensure_suite(tgz: Path, cache: Path) -> Path:
    """Extract the suite once per tgz content into the cache; return tests/python_client.

    Extraction goes to a temporary sibling and is renamed into place, so an interrupted
    extraction never leaves a half tree that a later run would trust.
    """
    if not tgz.exists():
        raise SystemExit(f"suite archive not found: {tgz} (use --tgz)")
    dest = cache / f"suite-{_digest(tgz)}"
    root = dest / SUITE_SUBDIR
    if not root.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="suite-tmp-", dir=cache))
        log(f"extracting {tgz} -> {dest}")
        with tarfile.open(tgz) as tf:
            tf.extractall(tmp, filter="data")
        if not (tmp / SUITE_SUBDIR).is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            raise SystemExit(f"{tgz} has no {SUITE_SUBDIR}/")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    changed = patch_suite(root)
    if changed:
        log(f"patched for numpy 2: {', '.join(changed)}")
    return root


def ensure_venv(cache: Path, python: str) -> Path:
    """Create (once per requirements content) the suite's virtualenv; return its python.

    A marker file is written only after pip succeeded, so a failed install is retried on the
    next run instead of leaving a venv that fails at import time.
    """
    venv = cache / f"venv-{_digest(REQUIREMENTS)}"
    py = venv / "bin" / "python"
    marker = venv / ".complete"
    if marker.exists() and py.exists():
        return py
    if venv.exists():
        shutil.rmtree(venv)
    log(f"creating the suite's virtualenv {venv} (once; a few minutes)")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True, env=env
    )
    marker.write_text(REQUIREMENTS.read_text())
    return py


# --------------------------------------------------------------------------- keeldb server


def keeldb_command(spec: str | None) -> list[str]:
    """The command that starts keeldb: `--keeldb`, else `keeldb` on PATH, else this Python.

    keeldb runs from the caller's environment, not the suite's venv: the suite's pins must
    not decide which keeldb (or which pymilvus protos in the server) is measured.
    """
    if spec:
        return shlex.split(spec)
    found = shutil.which("keeldb")
    if found:
        return [found]
    try:
        import keeldb.cli  # noqa: F401  (only checks that this interpreter has keeldb)
    except ImportError as exc:
        raise SystemExit("keeldb not found: put it on PATH or pass --keeldb CMD") from exc
    return [sys.executable, "-c", "import sys; from keeldb.cli import main; sys.exit(main())"]


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A `keeldb serve` child in its own process group, with its log file."""

    proc: subprocess.Popen[bytes]
    port: int
    data: Path
    log_path: Path

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM (keeldb finishes calls in flight and closes cleanly), then SIGKILL."""
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"keeldb did not stop in {grace:.0f}s after SIGTERM; SIGKILL")
                _signal_group(self.proc, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal a child started with start_new_session=True and everything it forked."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def start_keeldb(cmd: list[str], data: Path, log_path: Path, wait: float = 90.0) -> Server:
    """Start `keeldb serve` on a free loopback port and wait until it accepts connections."""
    port = free_port()
    argv = [*cmd, "serve", "--data", str(data), "--host", HOST, "--port", str(port)]
    log(f"starting: {shlex.join(argv)}")
    out = log_path.open("wb")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    server = Server(proc, port, data, log_path)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"keeldb serve exited with {proc.returncode}; see {log_path}:\n"
                + log_path.read_text()[-2000:]
            )
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise SystemExit(f"keeldb serve did not accept connections on {HOST}:{port} in {wait:.0f}s")


# --------------------------------------------------------------------------- pytest


@dataclass
class RunOptions:
    """Everything that decides which tests run and how, recorded in the JSON report."""

    folder: str
    levels: list[str]
    keyword: str | None
    workers: int
    test_timeout: int
    overall_timeout: int
    extra: list[str] = field(default_factory=list)


def pytest_argv(py: Path, opts: RunOptions, port: int, junit: Path) -> list[str]:
    """The pytest command line, as Milvus's CI would run it, plus the runner's needs.

    `-o addopts=` drops the suite's pytest.ini addopts (`--html=/tmp/ci_logs/report.html`
    needs pytest-html and `--host localhost` would be repeated); `--dist loadgroup` keeps the
    classes the suite marks `xdist_group` (a shared collection per class) on one worker.
    """
    argv = [str(py), "-m", "pytest", opts.folder, "-o", "addopts=", "-p", "no:cacheprovider"]
    argv += ["-p", PLUGIN, "--host", HOST, "--port", str(port), f"--junitxml={junit}"]
    argv += [f"--timeout={opts.test_timeout}", "-q", "-rN", "--color=no"]
    if opts.levels and opts.levels != ["all"]:
        # `--tags` takes any number of values: `--tags=LX` per level keeps it from also
        # swallowing a positional pytest argument that follows.
        argv += [f"--tags={level}" for level in opts.levels]
    if opts.keyword:
        argv += ["-k", opts.keyword]
    if opts.workers > 1:
        argv += ["-n", str(opts.workers), "--dist", "loadgroup"]
    return argv + opts.extra


def run_pytest(
    argv: list[str], cwd: Path, env: dict[str, str], log_path: Path, overall_timeout: int
) -> tuple[int, bool]:
    """Run pytest with its output in `log_path`; return (exit code, stopped early).

    On the overall timeout, or when the runner is interrupted, pytest gets SIGINT first: it
    then stops, still writes the junit XML for what ran, and exits; only if it does not do so
    within a minute is its process group terminated (and then killed). Either way the caller
    goes on to report what ran.
    """
    log(f"pytest: {shlex.join(argv)}")
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
        try:
            return proc.wait(overall_timeout), False
        except subprocess.TimeoutExpired:
            log(f"overall timeout ({overall_timeout}s): interrupting pytest")
        except KeyboardInterrupt:
            log("interrupted: stopping pytest (results so far are still reported)")
        return _stop_pytest(proc), True


def _default_sigint() -> None:
    """In the pytest child: SIGINT back to its default before exec.

    A shell starts background jobs (`... &`, nohup) with SIGINT ignored, and an ignored signal
    stays ignored across exec; Python then installs no KeyboardInterrupt handler, and the
    SIGINT meant to make pytest stop and write its junit XML would do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM to the runner: unwind like Ctrl-C, so pytest and keeldb are stopped too."""
    raise KeyboardInterrupt


def _stop_pytest(proc: subprocess.Popen[bytes]) -> int:
    """SIGINT to pytest (junit XML still gets written), then SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGINT, 60.0), (signal.SIGTERM, 15.0), (signal.SIGKILL, 15.0)):
        if proc.poll() is not None:
            break
        if sig == signal.SIGINT:
            proc.send_signal(sig)
        else:
            _signal_group(proc, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


# --------------------------------------------------------------------------- results

_NAME = re.compile(r"\b([A-Za-z0-9_]*_)([A-Za-z0-9]{8})\b")
"""Names the suite generates: `cf.gen_unique_str(prefix)` appends '_' and 8 random letters or
digits. Only a suffix with a digit, or with both cases, is taken for one (see `_name`): real
words in messages such as `json_contains` or `JSON_CONTAINS` are single-case; a random
suffix is single-case without digits about once in 500."""


def _name(m: re.Match[str]) -> str:
    """Replacement for `_NAME`: '<name>' for a generated name, the text itself otherwise."""
    suffix = m.group(2)
    mixed = any(c.isdigit() for c in suffix) or (suffix.lower() != suffix != suffix.upper())
    return "<name>" if mixed else m.group(0)


_RUN = re.compile(r"(\w)\1{15,}")
"""Over-long names ('a' * 256) are written as a{256}, so the limit they break is legible."""
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"-?\d+\.\d{3,}(?:e[-+]?\d+)?")
_LONGINT = re.compile(r"\b\d{6,}\b")


def normalise(text: str, limit: int = 240) -> str:
    """Strip what differs between runs and parametrisations of the same failure.

    Generated collection/partition/index names, object addresses, long numbers (timestamps,
    ids) and float values go; error codes and short numbers (dims, limits, ranges) stay,
    because they are what distinguishes one Milvus rule from another.
    """
    s = " ".join(text.split())
    s = _RUN.sub(lambda m: f"{m.group(1)}{{{len(m.group(0))}}}", s)
    s = _NAME.sub(_name, s)
    s = _HEX.sub("0x..", s)
    s = _FLOAT.sub("<f>", s)
    s = _LONGINT.sub("<n>", s)
    return s if len(s) <= limit else s[:limit] + "..."


@dataclass
class TestResult:
    """One test case as read back from the junit XML."""

    nodeid: str
    file: str
    status: str  # passed | failed | error | skipped
    time: float
    message: str = ""
    info: dict[str, Any] | None = None


def _file_of(classname: str, folder_hint: str) -> tuple[str, str]:
    """Split a junit classname 'dir.test_mod.TestClass' into ('dir/test_mod.py', 'TestClass').

    An interrupted run leaves a testcase without a classname; it is filed under
    '<folder> (interrupted)' rather than under a file that does not exist.
    """
    parts = [p for p in classname.split(".") if p]
    cls = ""
    if parts and parts[-1][:1].isupper():
        cls = parts.pop()
    path = "/".join(parts) + ".py" if parts else f"{folder_hint} (interrupted)"
    return path, cls


def read_junit(path: Path, folder_hint: str = "") -> list[TestResult]:
    """Read every testcase; one status each (failed > error > skipped > passed).

    pytest reports a test that failed and then errored in teardown as one testcase with both
    elements; it is counted once, as failed.
    """
    results = []
    for tc in ET.parse(path).iter("testcase"):
        file, cls = _file_of(tc.get("classname", ""), folder_hint)
        name = tc.get("name", "")
        nodeid = "::".join(p for p in (file, cls, name) if p)
        tags = {child.tag: child for child in tc}
        status, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            if tag in tags:
                status = {"failure": "failed"}.get(tag, tag)
                el = tags[tag]
                message = el.get("message") or (el.text or "")
                break
        info = None
        for prop in tc.iter("property"):
            if prop.get("name") == "keeldb_failure":
                try:
                    info = json.loads(prop.get("value") or "{}")
                except json.JSONDecodeError:
                    info = None
        results.append(
            TestResult(
                nodeid,
                file,
                status,
                float(tc.get("time") or 0.0),
                " ".join(message.split())[:600],
                info,
            )
        )
    return results


def _param_values(nodeid: str) -> list[str]:
    """The values in a test id's '[...]' parametrisation, longest first.

    pytest joins parameters with '-', and a value may itself hold '-' ('12-s'), so both the
    whole id and its pieces are candidates. Single letters and digits are left out: masking
    them would eat codes and dimensions out of the messages.
    """
    m = re.search(r"\[(.*)\]$", nodeid)
    if not m:
        return []
    whole = m.group(1)
    if "\\u" in whole:  # pytest escapes non-ASCII parameters in ids
        try:
            whole = whole.encode("ascii").decode("unicode_escape")
        except (UnicodeDecodeError, UnicodeEncodeError):
            pass
    pieces = {whole, *whole.split("-")}
    keep = [v for v in pieces if len(v) >= 2 or (v and not v.isalnum())]
    return sorted(keep, key=len, reverse=True)


_QUOTED = re.compile(r"'[^'\n]{1,80}'")


def _mask(text: str, nodeid: str) -> str:
    """Mask what varies per parametrisation: the test's parameter values and quoted names.

    Milvus echoes the offending value ("Invalid collection name: 12-s. ..."), keeldb quotes
    names ("field 'tags': data type ARRAY ..."); without this each parameter would be its own
    cluster and one rule would show up as a dozen.
    """
    text = _QUOTED.sub("'<v>'", text)
    for value in _param_values(nodeid):
        if value in ("True", "False", "None"):
            continue
        # Whole tokens only: the parameter '100' must not eat the '100' inside code 1100.
        pattern = rf"(?<![A-Za-z0-9_]){re.escape(value)}(?![A-Za-z0-9_])"
        text = re.sub(pattern, "<p>", text)
    return text


def signature(r: TestResult) -> dict[str, str]:
    """The failure's cluster key and its readable parts: call, expected, keeldb's answer.

    Checker failures are described by the suite's own intent (the API wrapper name, the
    expected error code and message, or 'success') against keeldb's answer. Failures outside
    the checker (plain asserts, TypeErrors) are described by the exception, the test function
    and line, and the last API call that failed before it. When keeldb refuses a feature it
    lacks, the expectation is left out of the key: whatever the test wanted, the missing
    feature is the one cause.
    """
    info = r.info or {}
    chk = info.get("checker")
    last = info.get("last_api_error") or {}
    where = str(info.get("where", ""))
    if chk:
        api = chk.get("api", "?")
        if chk.get("check_task") == "error_response" or "expected_code" in chk:
            expected = f"error {chk.get('expected_code')}: {chk.get('expected_message', '')}"
        elif chk.get("check_task") in (None, "None") or "actual_code" in chk:
            # A result check (check_search_results, ...) on a call that failed: what was
            # expected first of all is that the call succeeds.
            expected = "success"
        else:
            expected = f"{chk.get('check_task')} ({chk.get('checker')})"
        if "actual_code" in chk:
            actual = f"error {chk['actual_code']}: {chk.get('actual_message', '')}"
        elif chk.get("checker") == "assert_exception":
            actual = "success (no error)"
        else:
            actual = info.get("message", r.message) or f"assert at {info.get('raised_at', '?')}"
        kind = "checker"
    else:
        api = str(last.get("api", "")) or "-"
        expected = f"{info.get('exception', '')} at {where or '?'}" if info else "-"
        actual = info.get("message", r.message) if info else r.message
        if last:
            actual = f"{actual} | last failed call: {last.get('message', '')}"
        kind = "assert" if info.get("exception") == "AssertionError" else "exception"
    raw_actual = normalise(_grpc_status(str(actual)), 400)
    expected_n = normalise(_mask(expected, r.nodeid))
    actual_n = normalise(_mask(_grpc_status(str(actual)), r.nodeid))
    feat = feature(api, raw_actual, r.nodeid)
    cat = "a" if feat else category(expected_n, actual_n)
    if cat == "a":
        key = f"{kind} | {api} | missing {feat} | {actual_n}"
    else:
        key = f"{kind} | {api} | expected {expected_n} | got {actual_n}"
    return {
        "kind": kind,
        "api": api,
        "expected": expected_n,
        "actual": actual_n,
        "raw_actual": raw_actual,
        "category": cat,
        "feature": feat,
        "key": key,
    }


_FEATURE_BY_MESSAGE = [
    (r"data type ARRAY is not supported", "ARRAY fields"),
    (r"data type SPARSE_FLOAT_VECTOR", "sparse vectors"),
    (r"data type BINARY_VECTOR", "binary vectors"),
    (r"data type B?FLOAT16_VECTOR", "float16/bfloat16 vectors"),
    (r"data type INT8_VECTOR", "int8 vectors"),
    (r"hybrid search and function scores", "rankers / function scores"),
    (r"partial updates are not supported", "partial update"),
    (r"filter templates", "filter templates (filter_params)"),
    (r"search by primary keys", "search by primary keys"),
    (r"unexpected token '\(' at column \d+ (\w+)\(", "filter function {0}()"),
    (r"unknown vector index type '(\w+)'", "vector index type {0}"),
    (r"auto_id needs an INT64 primary key", "auto_id on VARCHAR primary keys"),
    (r"group_by_field is not supported", "search group_by"),
    (r"(\w+) is not supported by keeldb", "search parameter {0}"),
]
_FEATURE_BY_RPC = [
    (r"alias", "aliases"),
    (r"database", "databases"),
    (r"add_collection_field", "add_field"),
    (r"analyzer", "run_analyzer"),
    (r"collection_(properties|field)", "alter/drop collection properties"),
    (r"index_properties", "alter/drop index properties"),
    (r"hybrid_search", "hybrid search"),
]


def feature(api: str, actual: str, nodeid: str) -> str:
    """The keeldb feature a failure is waiting for, if the answer says one is missing.

    keeldb names what it lacks ("data type ARRAY is not supported", gRPC UNIMPLEMENTED for a
    whole RPC); JSON path indexes are recognised from an index refused on a JSON test's
    field, since keeldb takes `field['path']` for an unknown field name. Empty if none.
    """
    for pattern, name in _FEATURE_BY_MESSAGE:
        m = re.search(pattern, actual)
        if m:
            # Milvus's filter functions are case-insensitive: one feature per function.
            values = [g.lower() if name.startswith("filter") else g for g in m.groups()]
            return name.format(*values)
    if "UNIMPLEMENTED" in actual:
        for pattern, name in _FEATURE_BY_RPC:
            if re.search(pattern, api):
                return name
        return f"{api} RPC"
    if "json" in nodeid.lower() and re.search(
        r"cannot create an index on unknown field|already has index", actual
    ):
        return "JSON path indexes"
    return ""


_MISSING = re.compile(
    r"not supported|UNIMPLEMENTED|not implemented|unsupported|unknown (index|metric)", re.I
)


def category(expected: str, actual: str) -> str:
    """A first guess at the kind of difference, to sort clusters; the README's list is checked.

    (a) a feature keeldb refuses as unsupported, (b) both refuse but code or words differ,
    (c) keeldb accepts what Milvus refuses, (e) keeldb's deliberate refusal of an insert of an
    existing primary key, (d) anything else.
    """
    if "already exists; use upsert" in actual or "appears twice in one batch" in actual:
        return "e"
    if expected.startswith("error "):
        # Both refuse: keeldb saying "not supported" where Milvus says so in other words.
        return "c" if actual.startswith("success") else "b"
    if _MISSING.search(actual):
        return "a"
    return "d"


_GRPC = re.compile(
    r"<_InactiveRpcError of RPC that terminated with: status = StatusCode\.(\w+) "
    r"details = \"([^\"]*)\"[^>]*>"
)


def _grpc_status(text: str) -> str:
    """Shorten a raw gRPC error (keeldb answering UNIMPLEMENTED, say) to status and details.

    Its repr carries a debug string with timestamps and addresses that would split one cause
    into many clusters.
    """
    text = re.sub(r"error StatusCode\.\w+: ", "", text)
    return _GRPC.sub(lambda m: f"gRPC {m.group(1)}: {m.group(2)}", text)


CATEGORIES = {
    "a": "feature keeldb does not have",
    "b": "both refuse, code or message differs",
    "c": "keeldb accepts what Milvus refuses",
    "d": "other behaviour difference",
    "e": "insert of an existing primary key refused (deliberate)",
}


def summarise(results: list[TestResult]) -> dict[str, Any]:
    """Per-file counts, totals and failure clusters (largest first), JSON-ready."""
    files: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    totals: collections.Counter[str] = collections.Counter()
    by_category: collections.Counter[str] = collections.Counter()
    by_feature: collections.Counter[str] = collections.Counter()
    clusters: dict[str, dict[str, Any]] = {}
    for r in results:
        files[r.file][r.status] += 1
        files[r.file]["tests"] += 1
        totals[r.status] += 1
        totals["tests"] += 1
        if r.status not in ("failed", "error"):
            continue
        sig = signature(r)
        by_category[sig["category"]] += 1
        if sig["feature"]:
            by_feature[sig["feature"]] += 1
        c = clusters.setdefault(
            sig["key"],
            {
                **{k: sig[k] for k in ("kind", "api", "category", "feature", "actual", "key")},
                "sample_actual": sig["raw_actual"],
                "count": 0,
                "expected": {},
                "files": {},
                "tests": [],
            },
        )
        c["count"] += 1
        c["expected"][sig["expected"]] = c["expected"].get(sig["expected"], 0) + 1
        c["files"][r.file] = c["files"].get(r.file, 0) + 1
        c["tests"].append(r.nodeid)
    cols = ("tests", "passed", "failed", "error", "skipped")
    ordered = sorted(clusters.values(), key=lambda c: (-c["count"], c["key"]))
    return {
        "totals": {k: totals.get(k, 0) for k in cols},
        "by_category": {k: by_category.get(k, 0) for k in CATEGORIES},
        "by_feature": dict(by_feature.most_common()),
        "files": {f: {k: n.get(k, 0) for k in cols} for f, n in sorted(files.items())},
        "clusters": ordered,
        "tests": {r.nodeid: r.status for r in results},
    }


def render(summary: dict[str, Any], examples: int = 3, max_clusters: int | None = None) -> str:
    """The human report: per-file table, totals, then clusters with example test ids."""
    lines = []
    cols = ("tests", "passed", "failed", "error", "skipped")
    width = max([len(f) for f in summary["files"]] + [5])
    head = f"{'file':<{width}}  " + "  ".join(f"{c:>7}" for c in cols)
    lines += [head, "-" * len(head)]
    for f, n in summary["files"].items():
        lines.append(f"{f:<{width}}  " + "  ".join(f"{n[c]:>7}" for c in cols))
    lines.append("-" * len(head))
    t = summary["totals"]
    lines.append(f"{'TOTAL':<{width}}  " + "  ".join(f"{t[c]:>7}" for c in cols))
    clusters = summary["clusters"]
    lines.append("")
    lines.append(f"{len(clusters)} failure clusters ({t['failed']} failed, {t['error']} errors)")
    for cat, label in CATEGORIES.items():
        lines.append(f"  ({cat}) {label}: {summary.get('by_category', {}).get(cat, 0)} tests")
        if cat == "a":
            for name, n in summary.get("by_feature", {}).items():
                lines.append(f"        {n:>5}  {name}")
    for i, c in enumerate(clusters[:max_clusters] if max_clusters else clusters, 1):
        lines.append("")
        what = f" -- missing: {c['feature']}" if c.get("feature") else ""
        lines.append(f"#{i} x{c['count']}  ({c['category']}) [{c['kind']}] {c['api']}{what}")
        expected = sorted(c["expected"].items(), key=lambda kv: -kv[1])
        if len(expected) == 1:
            lines.append(f"    expected: {expected[0][0]}")
        else:
            lines.append(f"    expected ({len(expected)} variants):")
            lines += [f"      x{n} {e}" for e, n in expected[:examples]]
        lines.append(f"    keeldb:   {c['actual']}")
        if c["sample_actual"] != c["actual"]:
            lines.append(f"    (e.g.     {c['sample_actual']})")
        for nodeid in c["tests"][:examples]:
            lines.append(f"    e.g. {nodeid}")
    return "\n".join(lines)


def compare(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Tests whose status changed between two JSON reports, grouped by transition."""
    moves: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for nodeid in sorted(set(old["tests"]) | set(new["tests"])):
        a, b = old["tests"].get(nodeid, "absent"), new["tests"].get(nodeid, "absent")
        if a != b:
            moves[(a, b)].append(nodeid)
    if not moves:
        return "no test changed status"
    lines = []
    for (a, b), ids in sorted(moves.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"{a} -> {b}: {len(ids)}")
        lines += [f"    {i}" for i in ids]
    return "\n".join(lines)


def _summary_line(pytest_log: Path) -> str:
    """pytest's own closing line ('N failed, M passed ... in Xs'), for the record."""
    if not pytest_log.exists():
        return ""
    pat = re.compile(r"\d+ (passed|failed|error|skipped|deselected)")
    lines = [ln for ln in pytest_log.read_text(errors="replace").splitlines() if pat.search(ln)]
    return lines[-1].strip("= ") if lines else ""


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line; defaults run milvus_client L0 serially with a 120 s per-test timeout."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument(
        "--folder",
        default="milvus_client",
        help="suite folder under tests/python_client (milvus_client, "
        "milvus_client_v2, ...), or a file/node id inside it",
    )
    p.add_argument(
        "--level",
        default="L0",
        help="pytest_tagging level(s), comma-separated (L0, L1, L2, ...), or 'all'",
    )
    p.add_argument("-k", "--keyword", help="pytest -k expression")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="pytest-xdist workers (--dist loadgroup); 1 = no xdist",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="directory for junit.xml, logs and summary.json "
        "(default: a new directory under the cache)",
    )
    p.add_argument("--keeldb", help="command that runs keeldb (default: `keeldb` on PATH)")
    p.add_argument("--tgz", type=Path, default=DEFAULT_TGZ, help="the suite's archive")
    p.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="where the extracted suite and its virtualenv live",
    )
    p.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for the suite's virtualenv (3.11 tested)",
    )
    p.add_argument("--test-timeout", type=int, default=120, help="per-test timeout, seconds")
    p.add_argument(
        "--overall-timeout",
        type=int,
        default=4 * 3600,
        help="whole pytest run, seconds; then it is interrupted (results so far kept)",
    )
    p.add_argument("--examples", type=int, default=3, help="example test ids per cluster")
    p.add_argument("--clusters", type=int, default=0, help="print only the N largest clusters")
    p.add_argument("--compare", type=Path, help="an earlier summary.json: list status changes")
    p.add_argument(
        "--report",
        type=Path,
        help="do not run: summarise this existing junit XML (from an earlier --out)",
    )
    p.add_argument("--keep-data", action="store_true", help="keep keeldb's data directory")
    p.add_argument(
        "--known-failures",
        type=Path,
        help="a list of test ids (one per line, '# reason' after) allowed to fail: exit 1 when "
        "any other test fails or errors (CI's slice); tests on the list that pass are reported",
    )
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Prepare, run, stop, report. Exit 0 when the run completed (whatever failed), else 2."""
    args = parse_args(argv)
    # Ctrl-C, `kill -INT` and `kill` all stop the run cleanly, even when started in the
    # background (where the shell leaves SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    levels = [lv.strip() for lv in args.level.split(",") if lv.strip()]
    opts = RunOptions(
        args.folder,
        levels,
        args.keyword,
        args.workers,
        args.test_timeout,
        args.overall_timeout,
        list(args.pytest_args),
    )
    meta: dict[str, Any] = {"options": opts.__dict__}
    if args.report:
        junit = args.report
        out = args.out or junit.parent
        earlier = junit.parent / "summary.json"
        if earlier.exists():  # keep the original run's date, command and options
            old = json.loads(earlier.read_text())
            meta = {
                k: v for k, v in old.items() if k not in ("totals", "files", "clusters", "tests")
            }
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{args.folder}-{'+'.join(levels)}")
        out = (args.out or args.cache / "runs" / f"{slug}-{stamp}").resolve()
        out.mkdir(parents=True, exist_ok=True)
        junit = out / "junit.xml"
        meta.update(run(args, opts, out, junit))
    if not junit.exists():
        log(f"no junit XML at {junit}: pytest did not get to write results")
        return 2
    summary = summarise(read_junit(junit, args.folder))
    summary = {**meta, **summary}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(render(summary, args.examples, args.clusters or None))
    if meta.get("pytest_summary"):
        print(f"\npytest: {meta['pytest_summary']}")
    print(f"\nreport: {out / 'summary.json'}  junit: {junit}")
    if args.compare:
        print("\nchanges against", args.compare)
        print(compare(json.loads(args.compare.read_text()), summary))
    if meta.get("stopped_early"):
        return 2
    if args.known_failures:
        return check_known_failures(read_junit(junit, args.folder), args.known_failures)
    return 0


def read_known_failures(path: Path) -> dict[str, str]:
    """Test id -> the documented reason (the text after '#'); blank lines and comments skipped."""
    known = {}
    for line in path.read_text().splitlines():
        test, _, reason = line.partition("#")
        if test.strip():
            known[test.strip()] = reason.strip()
    return known


def check_known_failures(results: list[TestResult], path: Path) -> int:
    """1 when a test not on the list failed or errored: a regression, or a new deviation that
    must be fixed or documented. Listed tests that pass are printed, to keep the list tight."""
    known = read_known_failures(path)
    bad = [r.nodeid for r in results if r.status in ("failed", "error") and r.nodeid not in known]
    fixed = [r.nodeid for r in results if r.status == "passed" and r.nodeid in known]
    for t in fixed:
        print(f"now passing, remove from {path.name}: {t}")
    for t in bad:
        print(f"FAILED and not a documented deviation: {t}")
    print(f"known failures: {len(known)} listed, {len(bad)} unexpected failures, {len(fixed)} listed now passing")
    return 1 if bad else 0


def run(args: argparse.Namespace, opts: RunOptions, out: Path, junit: Path) -> dict[str, Any]:
    """Extract, install, start keeldb, run pytest, stop keeldb; return run metadata."""
    suite = ensure_suite(args.tgz, args.cache.resolve())
    py = ensure_venv(args.cache.resolve(), args.python)
    if opts.workers > 1:
        check = subprocess.run([str(py), "-c", "import xdist"], capture_output=True)
        if check.returncode != 0:
            raise SystemExit("--workers > 1 needs pytest-xdist in the suite's venv")
    cmd = keeldb_command(args.keeldb)
    data = Path(tempfile.mkdtemp(prefix="keeldb-suite-data-"))
    if junit.exists():
        junit.unlink()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PLUGIN_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env["CI_LOG_PATH"] = str(out / "suite-logs")  # the suite's log files (utils/util_log.py)
    env.pop("PYTEST_ADDOPTS", None)
    started = time.time()
    server = start_keeldb(cmd, data, out / "keeldb.log")
    argv = pytest_argv(py, opts, server.port, junit)
    try:
        code, stopped_early = run_pytest(argv, suite, env, out / "pytest.log", opts.overall_timeout)
    finally:
        rc = server.stop()
        log(f"keeldb stopped (exit {rc})")
        if not args.keep_data:
            shutil.rmtree(data, ignore_errors=True)
    elapsed = time.time() - started
    log(f"pytest exit {code} after {elapsed:.0f}s; output in {out / 'pytest.log'}")
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "keeldb": shlex.join(cmd),
        "pytest_argv": shlex.join(argv),
        "pytest_exit": code,
        "stopped_early": stopped_early,
        "seconds": round(elapsed, 1),
        "pytest_summary": _summary_line(out / "pytest.log"),
        "suite_tgz_sha256_12": _digest(args.tgz),
    }


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # pytest and keeldb were stopped on the way out
        log("interrupted")
        sys.exit(130)
