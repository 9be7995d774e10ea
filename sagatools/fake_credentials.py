"""The credentials of every local run: the embedded stack's (fixed: moto accepts any, and these are the values
its documentation uses), and the local endpoint's (random, made at its start, its owner's alone)."""

from __future__ import annotations

import configparser
import contextlib
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

PROFILE = "default"  # the file is an AWS shared credentials file: AWS_SHARED_CREDENTIALS_FILE can name it


class CredentialsFolderNotPrivate(Exception):
    """The folder for the endpoint's credentials belongs to another user; the message says which."""


@dataclass(frozen=True)
class EndpointCredentials:
    """The local endpoint's own credentials: it serves only requests signed with them (signed_requests.py)."""

    access_key_id: str
    secret_access_key: str

    @classmethod
    def made(cls) -> EndpointCredentials:
        key_characters = string.ascii_uppercase + string.digits
        return cls(
            access_key_id="LOCAL" + "".join(secrets.choice(key_characters) for _ in range(15)),
            secret_access_key=secrets.token_urlsafe(30),
        )

    @classmethod
    def read(cls, path: Path) -> EndpointCredentials | None:
        """The credentials in `path`, or None where it is missing, unreadable (another user's) or not one."""
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(path.read_text())
            section = parser[PROFILE]
            return cls(section["aws_access_key_id"], section["aws_secret_access_key"])
        except (OSError, UnicodeDecodeError, configparser.Error, KeyError):
            return None

    def write(self, path: Path) -> None:
        """Readable by this user only (0600, in a folder made 0700), and whole or not at all."""
        folder = path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_uid != os.geteuid():
            raise CredentialsFolderNotPrivate(
                f"{folder} belongs to another user: the local endpoint keeps its credentials in a folder of its own"
            )
        folder.chmod(0o700)
        written = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        handle = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(handle, "w") as file:
                file.write(
                    f"[{PROFILE}]\naws_access_key_id = {self.access_key_id}\n"
                    f"aws_secret_access_key = {self.secret_access_key}\n"
                )
            os.replace(written, path)
        except BaseException:
            with contextlib.suppress(OSError):
                written.unlink()
            raise

    def keywords(self) -> dict[str, str]:
        """As boto3's Session and client take them."""
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}

    def environment(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
