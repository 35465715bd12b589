"""The peer's virtualenv: made once by the benchmark's setup, never by the test suite.

    python -m benchmarks.peer.venv        # make benchmarks/.peer-venv (PyPI), or say it is there

Celery, kombu and redis-py are pinned to the versions mailqueue's venv runs, so that the
comparison differs only in what sits on top of them.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "benchmarks" / ".peer-venv"
PYTHON = VENV / "bin" / "python"
MARKER = VENV / "installed.txt"  # written last: a venv without it is half made


def requirements() -> list[str]:
    # packaging: kombu's Redis transport imports it without requiring it.
    pinned = [f"{name}=={metadata.version(name)}" for name in ("celery", "kombu", "redis", "packaging")]
    return ["django-celery-email==3.0.0", "django>=5.2,<6", *pinned]


def ready() -> Path | None:
    """The peer venv's python, if the setup finished; else None."""
    return PYTHON if MARKER.exists() and PYTHON.exists() else None


def setup() -> Path:
    """Make the venv and install the peer (minutes, needs PyPI); nothing if it is there."""
    if (python := ready()) is not None:
        return python
    if not PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wanted = requirements()
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", *wanted], check=True)
    frozen = subprocess.run([str(PYTHON), "-m", "pip", "freeze"], check=True, capture_output=True, text=True)
    MARKER.write_text(frozen.stdout)
    return PYTHON


def versions() -> dict[str, str]:
    """What the peer venv holds, by package name (empty before the setup)."""
    if ready() is None:
        return {}
    pairs = (line.split("==", 1) for line in MARKER.read_text().splitlines() if "==" in line)
    return {name.lower(): version for name, version in pairs}


if __name__ == "__main__":
    print(setup())
    for name in ("django", "django-celery-email", "celery", "kombu", "redis"):
        print(f"{name} {versions().get(name, '?')}")
