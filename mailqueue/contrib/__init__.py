"""Integrations with frameworks mailqueue does not depend on.

Each module here imports its framework, so nothing in this package is imported by
``mailqueue`` itself: a project pays for a framework only when it names the integration
(for Django, ``EMAIL_BACKEND = "mailqueue.contrib.django.EmailBackend"``).
"""
