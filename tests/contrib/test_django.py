"""mailqueue.contrib.django on every supported Django: 4.2 LTS, 5.2 LTS and 6.1.

Django configures its settings, apps and logging once per process, so the suite
(``django_suite.py``) runs in a fresh process per version. 6.1 is the virtualenv's own;
4.2 and 5.2 live in folders that ``scripts/bootstrap.sh`` installs (``pip install --target``),
put first on PYTHONPATH so they shadow it. The runs share this session's Redis database,
one after the other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SUITE = Path(__file__).with_name("django_suite.py")
VENV = PROJECT_ROOT / ".venv"
SUITE_TIMEOUT_SECONDS = 240
SERIES = ["4.2", "5.2", "6.1"]


def django_folder(series: str) -> Path | None:
    """The folder that provides Django ``series``, or None for the virtualenv's own (6.1)."""
    if series == "6.1":
        if sys.version_info < (3, 12):
            pytest.skip("Django 6.x needs Python 3.12 or newer; this interpreter is older")
        return None
    folder = VENV / f"django-{series}"
    if not (folder / "django").is_dir():
        pytest.fail(f"Django {series} is not installed in {folder}; run ./scripts/bootstrap.sh")
    return folder


def run_suite(series: str, redis_server: str) -> subprocess.CompletedProcess[str]:
    folder = django_folder(series)
    env = {**os.environ, "MAILQUEUE_EXPECTED_DJANGO": series, "MAILQUEUE_TEST_REDIS_URL": redis_server}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder or ""), str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT_SECONDS,
    )


@pytest.mark.parametrize("series", SERIES)
def test_the_django_backend_suite_passes_on(series: str, redis_server: str) -> None:
    completed = run_suite(series, redis_server)
    output = completed.stdout + completed.stderr
    tail = "\n".join(output.splitlines()[-120:])
    assert completed.returncode == 0, f"Django {series} suite failed:\n{tail}"
    assert " passed" in output and " skipped" not in output, tail
