"""Runs without a broker: the worker's and the learner's code over a file of events.

``driver`` is :class:`ReplayDriver`, which pipes events and reads outputs like Kafka Streams'
TopologyTestDriver (the tests, the parity check and the benchmark use it); ``cli`` is ``streamscore replay``,
which reads events files, recordings and the real logs' importers and writes the outputs as files.
"""

from streams.replay.driver import ReplayDriver

__all__ = ["ReplayDriver"]
