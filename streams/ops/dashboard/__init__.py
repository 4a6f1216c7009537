"""The worker's dashboard for people: ``GET /dashboard`` and its static files.

The page (``static/index.html``, ``dashboard.js``, ``dashboard.css``) is hand-written with no framework and
loads nothing from the network: its charts are inline SVG drawn by its own script. Every 2 s it reads
``GET /dashboard/data.json`` (served by the worker's telemetry, not here), and its user lookup reads
``GET /users/USER_ID/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faust

from streams.ops.dashboard.assets import HEADERS, asset

if TYPE_CHECKING:
    from streams.worker.app import StreamApp

__all__ = ["register_dashboard"]


def register_dashboard(sa: StreamApp) -> None:
    """Add the dashboard's routes to the worker's web server."""

    class DashboardPage(faust.web.View):
        async def get(self, request: Any) -> Any:
            return _serve(self, "index.html")

    class DashboardStatic(faust.web.View):
        async def get(self, request: Any, name: str) -> Any:
            return _serve(self, name)

    # Both spellings: a person types /dashboard, a link may end with a slash. The page names its assets by
    # absolute path, so it works under either.
    sa.app.page("/dashboard", name="dashboard")(DashboardPage)
    sa.app.page("/dashboard/", name="dashboard-slash")(type("DashboardPageSlash", (DashboardPage,), {}))
    sa.app.page("/dashboard/static/{name}", name="dashboard-static")(DashboardStatic)


def _serve(view: faust.web.View, name: str) -> Any:
    found = asset(name)
    if found is None:
        return view.text(f"no such dashboard file: {name!r}\n", status=404, headers=dict(HEADERS))
    # In the headers, not content_type=: aiohttp refuses a charset inside its content_type argument.
    return view.bytes(found.body, headers={**HEADERS, "Content-Type": found.content_type})
