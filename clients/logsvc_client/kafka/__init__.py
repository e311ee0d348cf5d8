"""The client on an Apache Kafka cluster (``kafka://host:port,...``), through librdkafka.

logsvc hashes keys as Kafka does, and its records, offsets, groups and commits mean what Kafka's
mean, so the same :class:`~logsvc_client.Producer`, :class:`~logsvc_client.Consumer` and
:class:`~logsvc_client.Admin` (and so the CLI and the connectors) run on a Kafka cluster when
given a ``kafka://`` address. They are built on ``confluent-kafka`` (librdkafka), the well-kept
client, not on a Kafka protocol of our own; install with ``pip install 'logsvc[kafka]'``.

- address.py: parsing ``kafka://h1:9092,h2:9092[?property=value...]``.
- settings.py: librdkafka settings from the address, TLS and SASL, made in one place.
- errors.py: librdkafka's errors as the project's exceptions.
- producer.py: :class:`~logsvc_client.kafka.producer.KafkaProducer`, what ``Producer("kafka://...")``
  is; futures.py: its per-record future, completed by librdkafka's delivery reports.
- admin.py: :class:`~logsvc_client.kafka.admin.KafkaAdminTransport`, the admin's transport on Kafka
  (topics, offsets, records); group_admin.py: its consumer-group calls; log_reader.py: a
  partition's records read back as logsvc batches for the log tools.
- consumer.py: :class:`~logsvc_client.kafka.consumer.KafkaConsumer`, what
  ``Consumer("kafka://...")`` returns, with consumer_config.py (its librdkafka settings),
  rebalance.py (the group's rebalance callbacks), consumer_errors.py (errors handed out instead
  of records), records.py (librdkafka's messages as Records) and lanes.py (priority lanes: the
  buffers, and the partitions to pause).

Nothing here is imported until a ``kafka://`` address is used: confluent-kafka is an optional
dependency.
"""
