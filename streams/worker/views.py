"""The worker's HTTP views: ``/counters/``, ``/metrics``, ``/dashboard`` (page, static files, ``data.json``) and
``/users/USER_ID/`` (answered by the worker that owns the user; the others forward it).

The dashboard's files and what they are live in ``streams/ops/dashboard/``; this module only serves them.
"""

from __future__ import annotations

from typing import Any

import faust

from features.featureset import LAST_TS
from features.state import decode_state
from streams.ops.dashboard import HEADERS, asset
from streams.ops.prometheus import CONTENT_TYPE
from streams.ops.worker_metrics import worker_prometheus
from streams.worker.context import StreamApp

__all__ = ["current_state", "dashboard_snapshot", "register_views"]


def dashboard_snapshot(sa: StreamApp) -> dict[str, Any]:
    """What the dashboard and ``streamscore top`` draw: the worker's telemetry and the learner's reports."""
    settings = sa.settings
    return {
        **sa.telemetry.snapshot(),
        "worker": {"app_id": settings.app_id, "bootstrap": settings.bootstrap,
                   "partitions": sorted(tp.partition for tp in sa.app.assignor.assigned_actives()
                                        if tp.topic == settings.topic("events")),
                   "web": f"http://{settings.web_host}:{settings.web_port}",
                   "learner_web": f"http://{settings.web_host}:{settings.learner_web_port}"},
        "models": dict(sa.processor.scorer.versions),
        "learner": sa.reports.snapshot(),
    }


def register_views(sa: StreamApp) -> None:
    _register_dashboard(sa.app)  # /dashboard and its static files; the page reads /dashboard/data.json below

    @sa.app.page("/counters/")
    async def counters(web: Any, request: Any) -> Any:
        return web.json(sa.processor.counters.snapshot())

    @sa.app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        learner = sa.reports.latest
        text = worker_prometheus(sa.telemetry, sa.processor.scorer.versions, learner)
        return web.bytes(text.encode(), headers={"Content-Type": CONTENT_TYPE})

    @sa.app.page("/dashboard/data.json")
    async def dashboard_data(web: Any, request: Any) -> Any:
        return web.json(dashboard_snapshot(sa))

    @sa.app.page("/users/{user_id}/")
    class UserFeatures(faust.web.View):
        """A user's current features, answered by the worker that owns the user (others forward it).

        ``?ts=`` evaluates them at another event time (default: the user's last event); ``?items=a,b`` adds
        the user-by-item features for those items.
        """

        @sa.app.table_route(table=sa.user_state, match_info="user_id")  # type: ignore[arg-type]
        async def get(self, request: Any, user_id: str) -> Any:
            state = current_state(sa, user_id)
            if not state:
                return self.json({"user_id": user_id, "error": "unknown user (no events yet, or expired)"},
                                 status=404)
            try:
                ts = float(request.query.get("ts", state[LAST_TS]))
            except ValueError:
                return self.json({"error": "ts must be a number (seconds since the epoch)"}, status=400)
            items = [i for i in request.query.get("items", "").split(",") if i]
            described = sa.processor.features.describe(state, ts, items)
            return self.json({"user_id": user_id, **described, "last_event_ts": state[LAST_TS]})


def _register_dashboard(app: faust.App) -> None:
    """Add the dashboard's page and static files to the worker's web server."""

    class DashboardPage(faust.web.View):
        async def get(self, request: Any) -> Any:
            return _serve(self, "index.html")

    class DashboardStatic(faust.web.View):
        async def get(self, request: Any, name: str) -> Any:
            return _serve(self, name)

    # Both spellings: a person types /dashboard, a link may end with a slash. The page names its assets by
    # absolute path, so it works under either.
    app.page("/dashboard", name="dashboard")(DashboardPage)
    app.page("/dashboard/", name="dashboard-slash")(type("DashboardPageSlash", (DashboardPage,), {}))
    app.page("/dashboard/static/{name}", name="dashboard-static")(DashboardStatic)


def _serve(view: faust.web.View, name: str) -> Any:
    found = asset(name)
    if found is None:
        return view.text(f"no such dashboard file: {name!r}\n", status=404, headers=dict(HEADERS))
    # In the headers, not content_type=: aiohttp refuses a charset inside its content_type argument.
    return view.bytes(found.body, headers={**HEADERS, "Content-Type": found.content_type})


def current_state(sa: StreamApp, user_id: str) -> dict[str, Any]:
    """The user's state as the worker has it now: its cached state, which may hold events since the last
    checkpoint (``streams/worker/batch.py``), else the stored one."""
    for cache in sa.states.values():
        state = cache.peek(user_id)
        if state is not None:
            return state
    return decode_state(sa.user_state.get(user_id))
