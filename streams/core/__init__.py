"""One event's path, with no broker in sight: no faust, no aiokafka (ruff's TID251 keeps it so).

``processor`` (decode, clock, features, score, label join, update), its batch caches, ``labels`` (the label
join and the label rule), ``eventclock`` (each partition's guarded event time), ``records`` (the topics and the
shape of every output record), ``topics`` (their partitions and configs), ``expiry``, ``snapshots`` (the model
hot-swap), ``counters``, ``timings``, ``deadletter`` (where an input came from) and ``seen`` (the last keys
seen, to skip redeliveries). The worker, the replay and the tests all run this same code.

Nothing is re-exported here: ``streams.settings`` imports ``records`` and ``labels``, and a package that
imported the processor on the way would import the settings back.
"""
