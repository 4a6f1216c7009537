"""The dashboard's static files and routes: served by bare name from one directory, nothing else, nothing remote."""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from streams.ops.dashboard.assets import CONTENT_TYPES, STATIC_DIR, asset
from streams.settings import Settings
from streams.worker.app import create_app

SVG_NAMESPACE = "http://www.w3.org/2000/svg"


@pytest.mark.parametrize("name", [
    "../__init__.py", "..", ".", "", "static/index.html", "/etc/passwd", "..%2F__init__.py", "index.html/",
    ".hidden.css", "index.html\x00.css", "INDEX.HTML", "dashboard.js.map",
])
def test_names_outside_the_static_files_are_refused(name: str) -> None:
    assert asset(name) is None


def test_a_symlink_out_of_the_directory_and_an_unknown_suffix_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.css"
    outside.write_text("secret")
    static = tmp_path / "static"
    static.mkdir()
    (static / "link.css").symlink_to(outside)
    (static / "notes.txt").write_text("no content type for .txt")
    (static / "ok.css").write_text("body {}")
    assert asset("link.css", static) is None
    assert asset("notes.txt", static) is None
    found = asset("ok.css", static)
    assert found is not None and (found.body, found.content_type) == (b"body {}", "text/css; charset=utf-8")


def test_every_static_file_is_served_with_its_content_type() -> None:
    names = sorted(p.name for p in STATIC_DIR.iterdir())
    assert {"index.html", "dashboard.js", "dashboard.css"} <= set(names)
    for name in names:
        found = asset(name)
        assert found is not None, name
        assert found.content_type == CONTENT_TYPES[Path(name).suffix]
        assert found.body == (STATIC_DIR / name).read_bytes()


def test_the_page_needs_nothing_from_the_network() -> None:
    """Offline: no URL outside this worker in any file (the SVG namespace is a name, not a download)."""
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        remote = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>)]*", text) if u != SVG_NAMESPACE]
        assert not remote, f"{path.name} refers to {remote}"
    page = (STATIC_DIR / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert ref.startswith("/"), ref  # absolute: the page works at /dashboard and /dashboard/ alike
        if ref.startswith("/dashboard/static/"):
            assert asset(ref.removeprefix("/dashboard/static/")) is not None, ref


async def test_the_worker_serves_the_page_and_refuses_traversal(tmp_path: Path) -> None:
    # The worker's own web app, with no broker: routes are registered when the app is built.
    sa = create_app(Settings(data_dir=tmp_path))
    async with TestClient(TestServer(cast(AiohttpWeb, sa.app.web).web_app)) as client:
        for path in ("/dashboard", "/dashboard/"):
            response = await client.get(path)
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
            assert "/dashboard/static/dashboard.js" in await response.text()
        response = await client.get("/dashboard/static/dashboard.js")
        assert (response.status, response.headers["Content-Type"]) == (200, "text/javascript; charset=utf-8")
        for path in ("/dashboard/static/..%2F__init__.py", "/dashboard/static/%2e%2e%2fassets.py",
                     "/dashboard/static/..%2F..%2Fapp.py", "/dashboard/static/../__init__.py",
                     "/dashboard/static/missing.css"):
            response = await client.get(path)
            assert response.status == 404, path
            assert b"import" not in await response.read(), path
