"""Django is an optional extra: mailqueue and its queue backend never import it.

Each check runs in a fresh interpreter, so modules the test session imported do not count.
kombu and celery themselves import a few ``django.utils`` modules whenever Django is
installed (to serialize its lazy strings); those are measured first and allowed, nothing more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.contrib.test_django import django_folder

DJANGO_MODULES = 'sorted(m for m in sys.modules if m.split(".")[0] == "django")'

USE_MAILQUEUE = textwrap.dedent(
    f"""
    import json, sys
    PRELUDE
    import kombu.utils.json, celery.utils.collections  # these import django.utils if they can
    imported_by_dependencies = {DJANGO_MODULES}

    import mailqueue
    import mailqueue.contrib
    from mailqueue.backends.queue import EmailBackend

    for name in mailqueue.__all__:
        getattr(mailqueue, name)
    message = mailqueue.EmailMessage("Hi", "Body", "from@example.com", ["to@example.com"])
    sent = EmailBackend().send_messages([message])
    print(json.dumps({{"sent": sent, "before": imported_by_dependencies, "after": {DJANGO_MODULES}}}))
    """
)

# A Python without Django, as after `pip install mailqueue` without the [django] extra.
HIDE_DJANGO = textwrap.dedent(
    """
    class HideDjango:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "django":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, HideDjango())
    """
)

IMPORT_THE_DJANGO_BACKEND = textwrap.dedent(
    f"""
    import json, sys
    import mailqueue.contrib.django
    print(json.dumps({{"after": {DJANGO_MODULES}}}))
    """
)


def run_python(code: str, **env: str) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env},
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_mailqueue_and_its_queue_backend_import_nothing_of_django(redis_url: str) -> None:
    result = run_python(USE_MAILQUEUE.replace("PRELUDE", ""), MAILQUEUE_BROKER_URL=redis_url)
    assert result["sent"] == 1
    assert result["after"] == result["before"]
    assert "django.conf" not in result["after"]


def test_mailqueue_and_its_queue_backend_work_where_django_is_not_installed(redis_url: str) -> None:
    result = run_python(USE_MAILQUEUE.replace("PRELUDE", HIDE_DJANGO), MAILQUEUE_BROKER_URL=redis_url)
    assert result["sent"] == 1
    assert result["after"] == []


def test_the_django_backend_is_what_imports_django() -> None:
    # The counterpart of the tests above: the same check does see Django once the backend is used.
    # Before Python 3.12 the virtualenv has no Django of its own; 5.2 LTS runs there.
    folder = None if sys.version_info >= (3, 12) else django_folder("5.2")
    result = run_python(IMPORT_THE_DJANGO_BACKEND, **({"PYTHONPATH": str(folder)} if folder else {}))
    assert {"django.conf", "django.core.mail", "django.db"} <= set(result["after"])  # type: ignore[arg-type]
