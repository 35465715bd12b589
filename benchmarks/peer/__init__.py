"""The peer the fleet is measured against: django-celery-email 3.0 on Django 5.2.

django-celery-email runs on Django up to 5.2, so it lives in a virtualenv of its own
(``benchmarks/.peer-venv``, made by ``python -m benchmarks.peer.venv``), never in
mailqueue's. Two sides, two interpreters:

- ``venv``, ``fleet``: run by the benchmark in mailqueue's venv; they make the peer's venv,
  start its Celery worker and talk to the driver;
- ``settings``, ``app``, ``driver``: run in the peer's venv (Django 5.2); they import
  nothing of mailqueue.
"""
