"""Transactional producers of kafka-python and aiokafka against Sluice: each commits one
transaction and aborts another (aiokafka also sends offsets in its committed one), and a
read_committed consumer of each library sees exactly the committed records.

Usage: transactional.py BOOTSTRAP TOPIC GROUP
"""
import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from kafka import KafkaConsumer, KafkaProducer

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
WAIT_S = 60


def kafka_python_side():
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kafka-python-txn")
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(10):
        producer.send(topic, key=b"k", value=f"kp-commit-{i}".encode(), partition=0)
    producer.commit_transaction()
    producer.begin_transaction()
    for i in range(10):
        producer.send(topic, key=b"k", value=f"kp-abort-{i}".encode(), partition=0)
    # Flushed first, so the aborted records are in the log (an abort drops unsent ones).
    producer.flush()
    producer.abort_transaction()
    producer.close()


async def aiokafka_side():
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="aiokafka-txn")
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(10):
                await producer.send_and_wait(topic, key=b"k", value=f"aio-commit-{i}".encode(), partition=0)
            await producer.send_offsets_to_transaction(
                {TopicPartition(topic, 0): OffsetAndMetadata(7, "")}, group
            )
        await producer.begin_transaction()
        for i in range(10):
            await producer.send_and_wait(topic, key=b"k", value=f"aio-abort-{i}".encode(), partition=0)
        await producer.abort_transaction()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        seen = []
        deadline = time.monotonic() + WAIT_S
        while len(seen) < 20:
            assert time.monotonic() < deadline, f"aiokafka read_committed saw only {seen}"
            batches = await consumer.getmany(tp, timeout_ms=500)
            for records in batches.values():
                seen.extend(r.value.decode() for r in records)
        return seen
    finally:
        await consumer.stop()


def committed_offset():
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        from kafka import TopicPartition as KTopicPartition

        deadline = time.monotonic() + WAIT_S
        while True:
            offset = consumer.committed(KTopicPartition(topic, 0))
            if offset == 7:
                return
            assert time.monotonic() < deadline, f"the transaction's offset never became committed: {offset}"
            time.sleep(0.1)
    finally:
        consumer.close()


kafka_python_side()
seen = asyncio.run(aiokafka_side())
# Every aborted record was written (and so had to be skipped): 40 records and 4 markers.
ends = KafkaConsumer(bootstrap_servers=bootstrap)
from kafka import TopicPartition as EndPartition  # noqa: E402

end = ends.end_offsets([EndPartition(topic, 0)])[EndPartition(topic, 0)]
ends.close()
assert end == 44, f"the log ends at {end}, not 44"

expected = [f"kp-commit-{i}" for i in range(10)] + [f"aio-commit-{i}" for i in range(10)]
assert seen == expected, f"aiokafka read_committed saw {seen}"

consumer = KafkaConsumer(
    bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False, consumer_timeout_ms=3000
)
from kafka import TopicPartition as KTopicPartition  # noqa: E402

consumer.assign([KTopicPartition(topic, 0)])
consumer.seek_to_beginning(KTopicPartition(topic, 0))
read = []
deadline = time.monotonic() + WAIT_S
while len(read) < 20 and time.monotonic() < deadline:
    for records in consumer.poll(timeout_ms=500).values():
        read.extend(r.value.decode() for r in records)
consumer.close()
assert read == expected, f"kafka-python read_committed saw {read}"
committed_offset()
print("ok")
