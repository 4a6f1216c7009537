"""The faust worker: the app and its tables (``app``, ``context``), the batch loop (``batch``, ``changelog``),
the followers of snapshots and learner reports (``feeds``), the HTTP views (``views``), one data directory per
worker (``membership``) and ``streamscore worker`` (``run``).

faust and aiokafka internals are used in ``_faust`` only; ``tests/unit/test_adapters.py`` checks they still
exist. Nothing is re-exported: importing this package must not start faust's import (``streams.kafka`` and the
CLI import ``membership`` without it).
"""
