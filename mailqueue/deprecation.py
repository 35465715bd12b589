"""Deprecation warnings: what Django 6.1 still accepts with a warning, we accept with the same one.

Every warning mailqueue gives is a ``RemovedInDjango2028Warning`` from this module, with
Django's wording, so a test suite filters them in one place::

    filterwarnings = ["error::mailqueue.deprecation.RemovedInDjango2028Warning"]

It has Django's name and base class (PendingDeprecationWarning) but is our own class:
mailqueue does not need Django installed.
"""

from __future__ import annotations


class RemovedInDjango2028Warning(PendingDeprecationWarning):
    """A call Django 6.1 deprecates (and Django 2028 will refuse)."""
