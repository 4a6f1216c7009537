"""The worker's dashboard for people: ``GET /dashboard`` and its static files.

The page (``static/index.html``, ``dashboard.js``, ``dashboard.css``) is hand-written with no framework and
loads nothing from the network: its charts are inline SVG drawn by its own script. Every 2 s it reads
``GET /dashboard/data.json`` (served by the worker's telemetry), and its user lookup reads
``GET /users/USER_ID/``. The worker serves these files (``streams/worker/views.py``); this package only holds
and names them.
"""

from streams.ops.dashboard.assets import CONTENT_TYPES, HEADERS, STATIC_DIR, Asset, asset

__all__ = ["CONTENT_TYPES", "HEADERS", "STATIC_DIR", "Asset", "asset"]
