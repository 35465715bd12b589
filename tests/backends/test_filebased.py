from __future__ import annotations

import email
import email.message
import email.policy
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest

from mailqueue.backends import filebased
from mailqueue.conf import override_settings
from mailqueue.exceptions import ImproperlyConfigured
from mailqueue.message import EmailMessage
from tests.backends.contract import MailboxContract

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# util-linux's setpriv drops CAP_DAC_OVERRIDE, so permission bits bind root as well.
WITHOUT_ROOTS_FILE_RIGHTS = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all"] if os.geteuid() == 0 else []
)
SEPARATOR = b"\n" + b"-" * 79 + b"\n"


def read_messages(path: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(chunk, policy=email.policy.default)
        for chunk in path.read_bytes().split(SEPARATOR) if chunk
    ]


class TestFileBackend(MailboxContract):
    @pytest.fixture(autouse=True)
    def use_folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "mail"
        self.folder.mkdir()

    def make_backend(self, **kwargs: Any) -> filebased.EmailBackend:
        return filebased.EmailBackend(file_path=self.folder, **kwargs)

    def files(self) -> list[Path]:
        return sorted(self.folder.iterdir())

    def mailbox(self) -> list[email.message.EmailMessage]:
        return [message for path in self.files() for message in read_messages(path)]

    def flush_mailbox(self) -> None:
        for path in self.files():
            path.unlink()

    def test_each_instance_writes_its_own_file(self) -> None:
        self.make_backend().send_messages([EmailMessage(to=["one@example.com"])])
        assert len(self.files()) == 1
        self.make_backend().send_messages([EmailMessage(to=["two@example.com"])])
        assert len(self.files()) == 2

    def test_an_open_backend_keeps_writing_to_one_file(self) -> None:
        backend = self.make_backend()
        assert backend.open() is True
        assert backend.open() is False
        backend.send_messages([EmailMessage(to=["one@example.com"])])
        backend.send_messages([EmailMessage(to=["two@example.com"])])
        backend.close()
        [path] = self.files()
        assert [m["To"] for m in read_messages(path)] == ["one@example.com", "two@example.com"]

    def test_reopening_appends_to_the_same_file(self) -> None:
        backend = self.make_backend()
        backend.send_messages([EmailMessage(to=["one@example.com"])])
        backend.send_messages([EmailMessage(to=["two@example.com"])])
        [path] = self.files()
        assert len(read_messages(path)) == 2

    def test_file_holds_bytes_with_the_separator(self) -> None:
        self.make_backend().send_messages([EmailMessage("Chère", "très\n", to=["to@example.com"])])
        [path] = self.files()
        assert path.read_bytes().endswith(SEPARATOR)

    def test_file_path_accepts_a_pathlib_path(self) -> None:
        assert self.make_backend().file_path == str(self.folder)


def test_file_path_defaults_to_the_setting(tmp_path: Path) -> None:
    with override_settings(EMAIL_FILE_PATH=str(tmp_path)):
        assert filebased.EmailBackend().file_path == str(tmp_path)


def test_file_path_argument_wins_over_the_setting(tmp_path: Path) -> None:
    other = tmp_path / "other"
    with override_settings(EMAIL_FILE_PATH=str(tmp_path)):
        assert filebased.EmailBackend(file_path=other).file_path == str(other)


def test_relative_file_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert filebased.EmailBackend(file_path="mail").file_path == str(tmp_path / "mail")


def test_missing_folder_is_created(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "nested"
    filebased.EmailBackend(file_path=folder)
    assert folder.is_dir()


def test_unset_path_is_improperly_configured() -> None:
    with override_settings(EMAIL_FILE_PATH=None):
        with pytest.raises(ImproperlyConfigured, match="The EMAIL_FILE_PATH setting must be set"):
            filebased.EmailBackend()


def test_path_that_is_a_file_is_improperly_configured(tmp_path: Path) -> None:
    existing = tmp_path / "a-file"
    existing.write_text("")
    with pytest.raises(ImproperlyConfigured, match="exists, but is not a directory: .*a-file"):
        filebased.EmailBackend(file_path=existing)


def test_folder_that_cannot_be_created_is_improperly_configured(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ImproperlyConfigured, match="Could not create directory .*a-file/inside"):
        filebased.EmailBackend(file_path=blocker / "inside")


def test_read_only_folder_is_improperly_configured() -> None:
    # Root may write anywhere, so under root the check runs without the capabilities that allow it.
    with tempfile.TemporaryDirectory() as top:
        os.chmod(top, 0o755)
        folder = Path(top) / "read-only"
        folder.mkdir(mode=0o555)
        code = (
            "from mailqueue.backends import filebased\n"
            "from mailqueue.exceptions import ImproperlyConfigured\n"
            "try:\n"
            f"    filebased.EmailBackend(file_path={str(folder)!r})\n"
            "except ImproperlyConfigured as error:\n"
            "    print(error)\n"
        )
        completed = subprocess.run(
            [*WITHOUT_ROOTS_FILE_RIGHTS, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
            cwd=top, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
    assert completed.returncode == 0, completed.stderr
    assert re.search(r"Could not write to directory: .*read-only", completed.stdout), completed.stdout


def test_fail_silently_and_file_path_may_come_by_position_as_in_django(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django's file backend takes them without a warning
        backend = filebased.EmailBackend(True, tmp_path)
    assert (backend.fail_silently, backend.file_path) == (True, str(tmp_path))
