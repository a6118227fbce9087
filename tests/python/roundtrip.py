"""kafka-python against Sluice: a second, independent implementation of the protocol.

Consumes what librdkafka produced to `from-rdkafka` (checking every record once, in order),
then creates `from-python` and produces records the Rust test reads back with librdkafka.
Exits non-zero on any mismatch.
"""
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

bootstrap, expected_from_rdkafka, to_produce = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

consumer = KafkaConsumer(
    bootstrap_servers=bootstrap,
    group_id=None,
    enable_auto_commit=False,
    consumer_timeout_ms=30000,
)
partitions = [TopicPartition("from-rdkafka", p) for p in consumer.partitions_for_topic("from-rdkafka")]
consumer.assign(partitions)
consumer.seek_to_beginning()
seen = {}
last_offset = {}
for message in consumer:
    i = int(message.value.decode())
    assert i not in seen, f"record {i} consumed twice"
    assert message.key == f"key-{i % 10}".encode(), message.key
    assert dict(message.headers).get("n") == str(i).encode(), message.headers
    previous = last_offset.get(message.partition, -1)
    assert message.offset == previous + 1, f"partition {message.partition}: offset {message.offset} after {previous}"
    last_offset[message.partition] = message.offset
    seen[i] = message.partition
    if len(seen) == expected_from_rdkafka:
        break
assert sorted(seen) == list(range(expected_from_rdkafka)), f"got {len(seen)} of {expected_from_rdkafka}"
consumer.close()

admin = KafkaAdminClient(bootstrap_servers=bootstrap)
admin.create_topics([NewTopic("from-python", 3, 1)])
# kafka-python 3 turns idempotence on by default: InitProducerId and sequenced batches.
producer = KafkaProducer(
    bootstrap_servers=bootstrap,
    acks="all",
    compression_type="gzip",
    linger_ms=5,
)
assert producer.config["enable_idempotence"], "kafka-python's default producer is idempotent"

futures = [
    producer.send("from-python", key=f"key-{i % 7}".encode(), value=str(i).encode(), headers=[("n", str(i).encode())])
    for i in range(to_produce)
]
producer.flush()
for future in futures:
    future.get(timeout=30)
# The records went out as an idempotent producer's: with a producer id from InitProducerId.
assert producer._transaction_manager.producer_id_and_epoch.producer_id >= 0, "no producer id"
producer.close()
print(f"kafka-python: consumed {len(seen)} records from librdkafka, produced {to_produce}")
