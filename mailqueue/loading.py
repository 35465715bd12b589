"""Import classes named by dotted paths in settings, with errors that name the setting."""

from __future__ import annotations

import importlib
from typing import Any

from mailqueue.exceptions import ImproperlyConfigured


def import_string(path: str, *, setting: str | None = None) -> Any:
    """Import ``package.module.Name``; a bad path raises ImproperlyConfigured naming ``setting``."""
    where = f" (from {setting})" if setting else ""
    module_path, _, name = path.rpartition(".")
    if not module_path:
        raise ImproperlyConfigured(f"{path!r}{where} is not a dotted path like 'package.module.Class'.")
    try:
        module = importlib.import_module(module_path)
    except ImportError as error:
        raise ImproperlyConfigured(f"Cannot import {module_path!r}{where}: {error}") from error
    try:
        return getattr(module, name)
    except AttributeError:
        raise ImproperlyConfigured(f"Module {module_path!r} has no attribute {name!r}{where}.") from None
