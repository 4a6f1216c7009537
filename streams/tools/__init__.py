"""Offline and operator tools: ``record`` and ``produce`` (a topic to a file and back), ``simulate`` (a synthetic
stream with its oracle), ``demo`` (``streamscore demo``), ``eventfile`` (JSON-lines files, plain or gzipped),
``importers/`` (the real logs of ``shared/data/``) and ``progress`` (a progress line on a terminal).
"""
