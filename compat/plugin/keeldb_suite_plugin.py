"""pytest plugin loaded into Milvus's python_client suite by compat/milvus_suite.py.

Why it exists: the suite's own failure messages do not say what went wrong. Its checker
(`check/func_check.py`, `ResponseChecker`) asserts "Response of API create_index expect
True, but got False" when a call that should succeed fails -- without the server's error --
and, when a call should fail, "expect get error message <err_code>" -- printing the expected
*code* where it meant the expected *message*. The expected message and what the server
actually answered only exist as local variables of the checker's frame (and in the suite's
log file). This plugin reads them from the failing traceback and attaches them to the test as
a junit property, so the runner can cluster failures by "which call, what Milvus would
answer, what keeldb answered" instead of by the suite's uninformative text.

It runs inside the suite's own virtualenv (with the suite's pymilvus), is loaded with
`-p keeldb_suite_plugin`, and changes no test outcome: it only records.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Generator
from typing import Any

import pytest

PROPERTY = "keeldb_failure"
"""Name of the junit property holding the JSON description of one failure."""

_MAX = 600
"""Longest text kept per field: long enough for Milvus's messages, short for the XML."""

_REQUEST = re.compile(r"\(api_request\)\s*:\s*\[([^\]]+)\]")
_RESPONSE = "(api_response) : "


def _short(text: object, limit: int = _MAX) -> str:
    """One-line, bounded text: junit attributes and cluster keys must stay readable."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit] + "..."


def _code_of(value: object) -> object:
    """The error's code as the suite sees it, made JSON-safe.

    `check.func_check.Error` copies `getattr(error, "code", -1)`; for a raw gRPC error that is
    the bound method `code()` (seen for UNIMPLEMENTED methods), so call it to get the status.
    """
    if callable(value):
        try:
            value = value()
        except Exception:  # noqa: BLE001 - any failure: keep the repr
            return _short(repr(value), 120)
    if isinstance(value, int | str | None):
        return value
    return _short(str(value), 120)


class _ApiLog(logging.Handler):
    """Remembers the last failed API call of the running test from the suite's own logger.

    `utils/api_request.py` logs "(api_request)  : [Func.name] ..." before each wrapped call
    and "(api_response) : <exception text>" at ERROR when it raised. A test that fails by a
    plain assert or a TypeError after such a call (e.g. `len(Error)`) is best explained by
    that call's error, which the traceback no longer shows.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.last_request = ""
        self.last_error: dict[str, str] | None = None

    def reset(self) -> None:
        """Forget the previous test's calls."""
        self.last_request = ""
        self.last_error = None

    def emit(self, record: logging.LogRecord) -> None:
        """Track request names and keep the latest error response."""
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log record must not break the test
            return
        m = _REQUEST.search(msg)
        if m:
            self.last_request = m.group(1)
            return
        if record.levelno >= logging.ERROR and msg.startswith(_RESPONSE):
            self.last_error = {
                "api": self.last_request,
                "message": _short(msg[len(_RESPONSE) :]),
            }


_API_LOG = _ApiLog()


def pytest_configure(config: pytest.Config) -> None:
    """Attach the handler to the suite's logger ('ci_test', see utils/util_log.py)."""
    logging.getLogger("ci_test").addHandler(_API_LOG)


def _checker_frame(excinfo: pytest.ExceptionInfo[BaseException]) -> dict[str, Any] | None:
    """Describe the innermost `ResponseChecker` frame of the failure, if there is one."""
    found: dict[str, Any] | None = None
    for entry in excinfo.traceback:
        self_obj = entry.frame.f_locals.get("self")
        if type(self_obj).__name__ != "ResponseChecker":
            continue
        response = getattr(self_obj, "response", None)
        items = getattr(self_obj, "check_items", None)
        info: dict[str, Any] = {
            "api": str(getattr(self_obj, "func_name", "")),
            "check_task": str(getattr(self_obj, "check_task", None)),
            "call_succeeded": bool(getattr(self_obj, "succ", False)),
            "checker": entry.name,
        }
        if type(response).__name__ == "Error":
            info["actual_code"] = _code_of(getattr(response, "code", None))
            info["actual_message"] = _short(getattr(response, "message", ""))
        else:
            info["actual_result"] = _short(repr(response), 300)
        if isinstance(items, dict):
            if "err_code" in items or "err_msg" in items:
                info["expected_code"] = _code_of(items.get("err_code"))
                info["expected_message"] = _short(items.get("err_msg", ""))
            else:
                info["check_items"] = _short(repr(items), 300)
        found = info
    return found


def _innermost(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """'function:line: source' where the exception was raised.

    A result check in `check/func_check.py` fails on a bare `assert` with no message; the
    failing line is then the only description of what differed.
    """
    try:
        entry = excinfo.traceback[-1]
        src = str(entry.statement).strip().splitlines()[0]
        return f"{entry.name}:{entry.lineno + 1}: {_short(src, 200)}"
    except Exception:  # noqa: BLE001 - source may be unavailable
        return ""


def _test_frame(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """'file:line: source' of the innermost traceback entry inside the test's own module."""
    path = str(getattr(item, "path", ""))
    where = ""
    for entry in excinfo.traceback:
        if str(entry.path) == path:
            try:
                src = str(entry.statement).strip().splitlines()[0]
            except Exception:  # noqa: BLE001 - source may be unavailable
                src = ""
            where = f"{entry.name}:{entry.lineno + 1}: {_short(src, 160)}"
    return where


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start each test with an empty record of failed calls."""
    _API_LOG.reset()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Record why a test failed (call phase) or errored (setup/teardown) as a property."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or call.excinfo is None:
        return
    excinfo = call.excinfo
    info: dict[str, Any] = {
        "when": call.when,
        "exception": type(excinfo.value).__name__,
        "message": _short(str(excinfo.value)),
        "where": _test_frame(item, excinfo),
        "raised_at": _innermost(excinfo),
    }
    checker = _checker_frame(excinfo)
    if checker is not None:
        info["checker"] = checker
    if _API_LOG.last_error is not None:
        info["last_api_error"] = dict(_API_LOG.last_error)
    try:
        text = json.dumps(info, default=str)
    except (TypeError, ValueError):
        text = json.dumps({"message": info["message"]})
    item.user_properties.append((PROPERTY, text))
