"""The dashboard's static files: looked up by bare name in one directory, nothing else.

The page, its script and its style ship inside the package (``static/``), so the dashboard works offline
and from an installed wheel. A name is served only if it is one of the files in that directory and its
suffix has a known content type: a name with a slash, ``..``, a leading dot or an unlisted suffix is refused
before the filesystem is touched, so no request can read outside the directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)+")
"""A plain file name: letters, digits, ``_``, ``-`` and dots between them (so never ``..`` or ``/``)."""

HEADERS = {
    # Belt and braces for "offline": the browser itself refuses anything not from this worker.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # The files are small and change with the code: always revalidate, so an upgraded worker is seen at once.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str


@cache
def _listing(directory: Path) -> frozenset[str]:
    """The names of the regular files in ``directory`` (read once: the files ship with the package)."""
    return frozenset(p.name for p in directory.iterdir() if p.is_file()) if directory.is_dir() else frozenset()


def asset(name: str, directory: Path = STATIC_DIR) -> Asset | None:
    """The static file ``name`` of ``directory``, or None if it is not one of them (or not servable).

    >>> asset("index.html").content_type
    'text/html; charset=utf-8'
    >>> [asset(n) for n in ("../__init__.py", "..", "static/index.html", ".hidden", "index.html/")]
    [None, None, None, None, None]
    """
    if not _SAFE_NAME.fullmatch(name) or name not in _listing(directory):
        return None
    content_type = CONTENT_TYPES.get(Path(name).suffix.lower())
    if content_type is None:
        return None
    path = (directory / name).resolve()
    if path.parent != directory.resolve():  # a symlink pointing elsewhere: not ours to serve
        return None
    return Asset(name, path.read_bytes(), content_type)
