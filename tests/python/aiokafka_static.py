"""aiokafka static members (group_instance_id) against Sluice: the first consumer owns both
partitions of a two-partition topic; once the second has started, each owns exactly one and
no partition is ever owned by both; the coordinator's record of the group (DescribeGroups)
agrees. The first heartbeats every 3 s, so it may hear of the rebalance later than the
second's whole session timeout (1 s), which must not matter while the second waits on its
join. The first then restarts with the same instance id and gets its partition back while
the second keeps its own. Offsets are committed throughout (auto-commit and on revocation).

Usage: aiokafka_static.py BOOTSTRAP TOPIC GROUP
"""
import asyncio
import struct
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
WAIT_S = 60
# A few heartbeat intervals of the first member, with room for a slow machine.
SPLIT_WITHIN_S = 12


def consumer(instance, session_timeout_ms, heartbeat_interval_ms):
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        group_instance_id=instance,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        auto_commit_interval_ms=200,
    )


def slow():
    return consumer("first", 30000, 3000)


def quick():
    return consumer("second", 1000, 300)


def owned(member):
    return sorted(tp.partition for tp in member.assignment())


async def pump(members, what, done):
    """Consumes on every member until done(owners) holds; no partition may be owned twice."""
    deadline = time.monotonic() + WAIT_S
    while True:
        for member in members:
            await member.getmany(timeout_ms=20)
        owners = [owned(m) for m in members]
        flat = [p for o in owners for p in o]
        assert len(flat) == len(set(flat)), f"a partition owned twice: {owners}"
        if done(owners):
            return owners
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT_S}s: {owners}"


def partitions_of(assignment):
    """The partitions of `topic` in a ConsumerProtocolAssignment."""
    if not assignment:
        return []
    offset = 2
    (topics,) = struct.unpack_from(">i", assignment, offset)
    offset += 4
    found = []
    for _ in range(topics):
        (length,) = struct.unpack_from(">h", assignment, offset)
        offset += 2
        name = assignment[offset : offset + length].decode()
        offset += length
        (count,) = struct.unpack_from(">i", assignment, offset)
        offset += 4
        for _ in range(count):
            (partition,) = struct.unpack_from(">i", assignment, offset)
            offset += 4
            if name == topic:
                found.append(partition)
    return sorted(found)


async def described():
    """(state, sorted partitions of each member) as DescribeGroups shows the group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        answer = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _error, _group_id, state, _protocol_type, _protocol, members, *_ = answer[0].groups[0]
    return state, sorted(partitions_of(m[-1]) for m in members)


async def main():
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    for i in range(20):
        await producer.send_and_wait(topic, str(i).encode(), partition=i % 2)
    await producer.stop()

    first = slow()
    await first.start()
    await pump([first], "the first member to own both partitions", lambda o: o[0] == [0, 1])

    second = quick()
    started = time.monotonic()
    await second.start()
    owners = await pump(
        [first, second], "a split into one partition each", lambda o: len(o[0]) == 1 and len(o[1]) == 1
    )
    # The first member rejoins at its next heartbeat: a few seconds, not a session timeout.
    took = time.monotonic() - started
    assert took < SPLIT_WITHIN_S, f"the split took {took:.1f}s"
    state, members = await described()
    assert (state, members) == ("Stable", sorted(owners)), f"DescribeGroups says {state} {members}, clients {owners}"

    # A static member's stop() does not leave the group: its restart with the same instance
    # id takes over its partition, and the other member's never changes.
    await first.stop()
    first = slow()
    await first.start()

    def back(o):
        assert o[1] == owners[1], f"the second member's partitions changed: {o}"
        return o[0] == owners[0]

    await pump([first, second], "the restarted member to get its partition back", back)
    for member in (first, second):
        await member.commit()
    for member in (first, second):
        for tp in member.assignment():
            assert await member.committed(tp) is not None, f"no commit for {tp}"
    await first.stop()
    await second.stop()
    print(f"aiokafka static members: split {owners}, restart kept it")


asyncio.run(main())
