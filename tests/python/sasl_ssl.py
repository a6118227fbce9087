"""kafka-python over SASL_SSL against Sluice: alice produces with SCRAM-SHA-512, admin consumes
with SCRAM-SHA-256, both checking the broker's certificate against the test CA; a producer with
a wrong password fails to connect.

Usage: sasl_ssl.py BOOTSTRAP CAFILE TOPIC
"""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

bootstrap, cafile, topic = sys.argv[1], sys.argv[2], sys.argv[3]
COUNT = 20


def security(mechanism, user, password):
    return dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        ssl_cafile=cafile,
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )


producer = KafkaProducer(acks="all", **security("SCRAM-SHA-512", "alice", "alice-secret"))
for i in range(COUNT):
    producer.send(topic, key=b"k", value=f"python-sasl-{i}".encode(), partition=0)
producer.flush()
producer.close()

consumer = KafkaConsumer(consumer_timeout_ms=30000, **security("SCRAM-SHA-256", "admin", "admin-secret"))
partition = TopicPartition(topic, 0)
consumer.assign([partition])
consumer.seek_to_beginning(partition)
seen = []
for message in consumer:
    seen.append(message.value.decode())
    if len(seen) == COUNT:
        break
consumer.close()
assert seen == [f"python-sasl-{i}" for i in range(COUNT)], seen

try:
    refused = KafkaProducer(
        request_timeout_ms=5000,
        max_block_ms=5000,
        **security("SCRAM-SHA-512", "alice", "wrong"),
    )
    refused.send(topic, value=b"never").get(timeout=10)
except KafkaError as e:
    print(f"a wrong password is refused: {type(e).__name__}")
else:
    raise AssertionError("a producer with a wrong password was served")
print("kafka-python over SASL_SSL: ok")
