"""The process environment that points boto3 and the app at the local cloud.

boto3 reads ``AWS_ENDPOINT_URL`` and the credentials from ``os.environ`` when a
client is created, and Chalice applies the stage's environment variables before
``app.py`` is imported; so both must be in place before anything builds a
client or imports the app. :class:`EnvironmentPatch` records what it changed,
so an in-process local cloud (the tests run several) leaves the environment as
it found it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

REGION = "us-east-1"
# moto accepts any credentials; fixed dummies make the printed exports copyable
# and can never be mistaken for (or leak) a real key.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"

# Variables that would steer boto3 away from the local endpoint or the dummy
# credentials: a profile or session token from the user's shell, or a
# service-specific endpoint override (AWS_ENDPOINT_URL_<SERVICE>).
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_CLEARED_PREFIXES = ("AWS_ENDPOINT_URL_",)


def port_setting(environ: Mapping[str, str], name: str, default: int) -> int:
    """A port from the environment (0 picks a free one); anything else ends the command."""
    value = environ.get(name, "")
    try:
        port = int(value) if value else default
    except ValueError:
        raise SystemExit(f"{name}={value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise SystemExit(f"{name}={value!r} is not a port number")
    return port


def aws_exports(endpoint_url: str) -> dict[str, str]:
    """What a shell needs so that the aws CLI and boto3 talk to the local cloud."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }


def export_lines(endpoint_url: str) -> list[str]:
    return [f"export {name}={value}" for name, value in aws_exports(endpoint_url).items()]


class EnvironmentPatch:
    """Sets and clears variables in an environment, and can put everything back."""

    def __init__(self, environ: MutableMapping[str, str] = os.environ):
        self._environ = environ
        # The value each touched variable had before the first change (None: unset).
        self._saved: dict[str, str | None] = {}

    def _remember(self, name: str) -> None:
        if name not in self._saved:
            self._saved[name] = self._environ.get(name)

    def set(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._remember(name)
            self._environ[name] = value

    def clear(self, name: str) -> None:
        if name in self._environ:
            self._remember(name)
            del self._environ[name]

    def point_at(self, endpoint_url: str, stage_environment: Mapping[str, str]) -> None:
        """Route every AWS call to ``endpoint_url`` and apply the stage's variables."""
        for name in list(self._environ):
            if name in _CLEARED or name.startswith(_CLEARED_PREFIXES):
                self.clear(name)
        self.set({**aws_exports(endpoint_url), "AWS_REGION": REGION})
        self.set(stage_environment)

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                self._environ.pop(name, None)
            else:
                self._environ[name] = value
        self._saved.clear()
