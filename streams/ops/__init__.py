"""Watching it run: what the worker knows about itself (``telemetry``), the Prometheus text of the workers and
the learner (``prometheus``, ``worker_metrics``), the learner's reports as commands and workers get them
(``reports``), ``streamscore top`` (``top``) and the dashboard's files (``dashboard/``; the worker serves them).
"""
