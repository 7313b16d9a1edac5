"""Named SQL statements read from package data: one ``.sql`` file, ``-- name: x`` sections."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

__all__ = ["SqlFile"]

_NAME = re.compile(r"^-- name: (\S+)\s*$", re.MULTILINE)


@cache
def _statements(package: str, path: tuple[str, ...]) -> dict[str, str]:
    text = files(package).joinpath(*path).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {
        name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


class SqlFile:
    """The statements of one SQL file shipped as package data, looked up by name.

    Each statement starts at a ``-- name: <name>`` line and runs to the next one; its text
    keeps comments and loses a trailing ``;``. The file is read once, on first lookup.

    Args:
        package: The package holding the file, e.g. ``"portside.adapters.postgres"``.
        *path: The file's path inside the package, e.g. ``"outbox.sql"``.
    """

    def __init__(self, package: str, *path: str) -> None:
        self._package = package
        self._path = path

    def __call__(self, name: str) -> str:
        """The SQL text of statement ``name``.

        Raises:
            KeyError: No statement of that name exists in the file.
        """
        statements = _statements(self._package, self._path)
        try:
            return statements[name]
        except KeyError:
            where = "/".join(self._path)
            raise KeyError(f"no statement {name!r} in {self._package}:{where}") from None

    def names(self) -> list[str]:
        """Every statement name in the file, in file order."""
        return list(_statements(self._package, self._path))
