"""A silent SMTP server, with EMAIL_TIMEOUT unset: one connection's messages wait a retry, the rest go."""

from __future__ import annotations

import pytest
from celery import Celery

from mailqueue.conf import override_settings
from tests.fixtures.celery import delivered_pairs, make_payload, send_batch
from tests.fixtures.smtp import SMTPTestServer
from workers import session


@pytest.mark.faults
@pytest.mark.timeout(60)
def test_a_silent_server_costs_a_retry_not_the_worker(
    celery_app: Celery, smtp_server: SMTPTestServer, monkeypatch: pytest.MonkeyPatch, celery_worker: object
) -> None:
    """The first MAIL FROM is never answered. With Django's None (no timeout) the worker would
    block forever; the workers' own bound (shortened here from 60 s) makes it a transient failure."""
    monkeypatch.setattr(session, "DEFAULT_SMTP_TIMEOUT", 1.0)
    smtp_server.delay_at("mail", 600.0, times=1)
    batches = [[make_payload(to=[f"u{b}-{i}@example.com"]) for i in range(5)] for b in range(4)]
    with override_settings(EMAIL_TIMEOUT=None):
        session.close_all()  # the worker's next send opens a connection under these settings
        results = [send_batch(celery_app, batch) for batch in batches]
        reports = [result.get(timeout=40) for result in results]

    assert sum(report["sent"] for report in reports) == 20
    assert sum(report["retries"] for report in reports) >= 1  # the stalled message waited a round
    pairs = delivered_pairs(smtp_server)
    assert len(pairs) == 20 and set(pairs.values()) == {1}
