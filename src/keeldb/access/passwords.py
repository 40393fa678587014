"""Passwords: stored only as a salted scrypt hash, compared in constant time.

Why scrypt from the standard library (``hashlib.scrypt``, OpenSSL's) rather than argon2: it
is a memory-hard password hash as well, and needs no dependency. Milvus stores bcrypt; the
stored form is keeldb's own, so a data directory never holds anything a leaked copy could
log in with.

A hash costs ~50 ms by design, so the server verifies a credential once and remembers the
verified (user, credential digest) pair until the user's password changes (``server/
access.py``); an unknown user is checked against a dummy hash, so the time taken does not
tell whether the name exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from keeldb.errors import InvalidArgument

# scrypt's cost: N=2^14, r=8, p=1 is the common interactive setting (16 MiB, ~50 ms).
N, R, P = 1 << 14, 8, 1
SALT_BYTES = 16
MIN_PASSWORD, MAX_PASSWORD = 6, 256  # Milvus's limits
MAX_USERNAME = 32
_USERNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def hash_password(password: str, *, n: int = N) -> str:
    """``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``."""
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=R, p=P, maxmem=64 << 20)
    return "$".join(("scrypt", str(n), str(R), str(P), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; constant time in the
    comparison, and a malformed ``stored`` is simply False."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 << 20, dklen=len(want))  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


_dummy: list[str] = []


def burn_time(password: str) -> None:
    """Spend what a real check spends, for a user that does not exist."""
    if not _dummy:
        _dummy.append(hash_password("not a password of anyone"))
    verify_password(password, _dummy[0])


def check_username(name: str) -> None:
    """Milvus's rule: a letter or underscore first, then letters, digits, underscores; at
    most 32 characters."""
    if not name or len(name) > MAX_USERNAME or not _USERNAME.fullmatch(name):
        raise InvalidArgument(
            f"invalid username {name!r}: the first character must be a letter or an underscore, the others "
            f"letters, digits or underscores, at most {MAX_USERNAME} characters"
        )


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument(
            f"invalid password length: the length of a password must be between {MIN_PASSWORD} and {MAX_PASSWORD}"
        )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
