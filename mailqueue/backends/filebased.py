"""File backend: writes the messages of each backend instance to its own file in a folder."""

from __future__ import annotations

import datetime
import os
import uuid
from typing import TYPE_CHECKING, Any

from mailqueue.backends.console import SEPARATOR
from mailqueue.backends.console import EmailBackend as ConsoleEmailBackend
from mailqueue.conf import settings
from mailqueue.exceptions import ImproperlyConfigured, InvalidMailer

if TYPE_CHECKING:
    from mailqueue.message import EmailMessage


class EmailBackend(ConsoleEmailBackend):
    """Append messages (as bytes, separated like the console backend's) to one file per instance."""

    def __init__(
        self, fail_silently: bool = False, file_path: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.stream = None  # opened lazily by open(), never stdout
        self._filename: str | None = None
        if self.alias is not None and file_path is None:  # a mailer reads OPTIONS, not settings
            raise InvalidMailer("OPTIONS must define 'file_path'.", alias=self.alias)
        self.file_path = prepare_directory(file_path if file_path is not None else settings.EMAIL_FILE_PATH)

    def write_message(self, message: EmailMessage) -> None:
        assert self.stream is not None
        self.stream.write(message.message().as_bytes() + b"\n")
        self.stream.write(SEPARATOR.encode() + b"\n")

    def _get_filename(self) -> str:
        """This instance's file: a timestamp plus a random part, so instances never share one.

        (Django uses ``id(self)``, which a later instance can reuse once this one is gone.)
        """
        if self._filename is None:
            timestamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            self._filename = os.path.join(self.file_path, f"{timestamp}-{uuid.uuid4().hex}.log")
        return self._filename

    def open(self) -> bool:
        if self.stream is None:
            self.stream = open(self._get_filename(), "ab")  # closed by close()
            return True
        return False

    def close(self) -> None:
        try:
            if self.stream is not None:
                self.stream.close()
        finally:
            self.stream = None


def prepare_directory(file_path: str | os.PathLike[str] | None) -> str:
    """Return the absolute folder path, creating it; refuse what cannot hold the files."""
    if file_path is None:
        raise ImproperlyConfigured("The EMAIL_FILE_PATH setting must be set to use the file EmailBackend.")
    path = os.path.abspath(file_path)
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise ImproperlyConfigured(
            f"Path for saving email messages exists, but is not a directory: {path}"
        ) from None
    except OSError as error:
        raise ImproperlyConfigured(
            f"Could not create directory for saving email messages: {path} ({error})"
        ) from error
    if not os.access(path, os.W_OK):
        raise ImproperlyConfigured(f"Could not write to directory: {path}")
    return path
