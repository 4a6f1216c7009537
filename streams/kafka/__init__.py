"""Talking to Kafka, for everything but faust's own consumer and producer.

``admin`` (is the broker there, create the topics, a topic's partitions), ``clients`` (the consumers and
producers of the learner and the tools, and one "start a client or say the broker is unreachable"),
``follow`` (read a topic from the beginning on every worker, for ever), ``broker`` and ``kafka_broker`` (the
local brokers of ``streamscore broker``: Apache Kafka, noida-db, Tansu). ``_aiokafka`` holds the one aiokafka
internal these clients need. Nothing is re-exported: each module is imported for itself, so a command loads
only the client it uses.
"""
