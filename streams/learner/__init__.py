"""``streamscore learner``: the learner process, a plain Kafka client (no faust) around :mod:`models.learner`.

It reads ``examples`` in order, learns every model, publishes signed snapshots and its reports, and serves
``/metrics``. The process is ``process``; what it learns and measures lives in ``models/``.
"""
