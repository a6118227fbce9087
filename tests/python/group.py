"""kafka-python as a group consumer against Sluice: consume part of a topic in a group,
commit, stop; then a new consumer in the same group resumes exactly after the commit.

Usage: group.py BOOTSTRAP TOPIC TOTAL FIRST_BATCH
"""
import sys

from kafka import KafkaConsumer

bootstrap, topic, total, first_batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def consumer():
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="python-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=30000,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )


first = consumer()
seen = []
for message in first:
    seen.append(int(message.value.decode()))
    if len(seen) == first_batch:
        break
first.commit()
committed = {tp: first.committed(tp) for tp in first.assignment()}
first.close()

second = consumer()
rest = []
starts = {}
for message in second:
    starts.setdefault(message.partition, message.offset)
    rest.append(int(message.value.decode()))
    if len(seen) + len(rest) == total:
        break
second.close()

for tp, offset in committed.items():
    if tp.partition in starts:
        assert starts[tp.partition] == offset, f"partition {tp.partition} resumed at {starts[tp.partition]}, committed {offset}"
everything = sorted(seen + rest)
assert everything == list(range(total)), f"got {len(everything)} records, expected {total} each once"
print(f"kafka-python group: {len(seen)} before the commit, {len(rest)} after, resumed at the committed offsets")
