"""Optional features and the extras that install them.

The core (embedded client, ``keeldb serve``, ``keeldb chaos`` against keeldb) needs only the
packages in ``[project.dependencies]``. A feature that needs more imports its package through
:func:`require`, so that a missing extra is one clear line naming what to install, at the
call that needs it, instead of a ``ModuleNotFoundError`` from deep inside the import chain.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from keeldb.errors import MissingExtra


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra` saying which extra provides it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module.split(".", 1)[0]:
            raise  # the package is there but broken: not a missing extra
        raise MissingExtra(
            f"{feature} needs the '{extra}' extra ({module} is not installed): "
            f"pip install 'keeldb[{extra}]'"
        ) from None
