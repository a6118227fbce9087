"""kafka-python against Sluice's authorizer, over SASL_SSL with SCRAM-SHA-256.

setup: admin (a super user) creates the topics and the ACLs the librdkafka tests rely on, reads
them back with DescribeAcls (a LITERAL filter and a MATCH one), and deletes one with DeleteAcls;
alice (no super user) is refused CreateAcls with CLUSTER_AUTHORIZATION_FAILED.
enforce: with those ACLs, alice writes and reads "orders", is refused "secret" both ways, and
does not see "secret" in the metadata; bob's prefixed ALLOW on "pay-" is beaten by the DENY of
READ on "pay-in". The librdkafka tests (tests/security_acl.rs) use the same ACLs.

close: on a broker with allow.everyone.if.no.acl.found and no super users, alice gives herself
WRITE on the topic "closed", which then no one else may write.

Usage: acls.py setup|enforce|close BOOTSTRAP CAFILE
"""
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)

step, bootstrap, cafile = sys.argv[1], sys.argv[2], sys.argv[3]


def security(user):
    return dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        ssl_cafile=cafile,
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username=user,
        sasl_plain_password=f"{user}-secret",
    )


def acl(principal, operation, permission, kind, name, pattern=ACLResourcePatternType.LITERAL):
    return ACL(
        principal=principal,
        host="*",
        operation=operation,
        permission_type=permission,
        resource_pattern=ResourcePattern(kind, name, pattern),
    )


ALLOW, DENY = ACLPermissionType.ALLOW, ACLPermissionType.DENY
TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
PREFIXED = ACLResourcePatternType.PREFIXED

# What the librdkafka tests expect (tests/security_acl.rs).
WANTED = [
    acl("User:alice", ACLOperation.WRITE, ALLOW, TOPIC, "orders"),
    acl("User:alice", ACLOperation.READ, ALLOW, TOPIC, "orders"),
    acl("User:alice", ACLOperation.READ, ALLOW, GROUP, "alice-", PREFIXED),
    acl("User:bob", ACLOperation.ALL, ALLOW, TOPIC, "pay-", PREFIXED),
    acl("User:bob", ACLOperation.READ, DENY, TOPIC, "pay-in"),
    acl("User:bob", ACLOperation.READ, ALLOW, GROUP, "bob-", PREFIXED),
    acl("User:bob", ACLOperation.WRITE, ALLOW, ResourceType.TRANSACTIONAL_ID, "bob-tx"),
]
# Made and deleted again here.
DOOMED = acl("User:carol", ACLOperation.READ, ALLOW, TOPIC, "orders")


def key(a):
    p = a.resource_pattern
    return (a.principal, a.host, int(a.operation), int(a.permission_type), int(p.resource_type), p.resource_name, int(p.pattern_type))


def setup():
    admin = KafkaAdminClient(**security("admin"))
    admin.create_topics([NewTopic(name, 1, 1) for name in ["orders", "secret", "pay-in", "pay-out"]])
    created = admin.create_acls(WANTED + [DOOMED])
    assert not created["failed"], created
    everything = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    found, _ = admin.describe_acls(everything)
    assert sorted(map(key, found)) == sorted(map(key, WANTED + [DOOMED])), found
    # MATCH finds what applies to the topic pay-in: bob's prefixed ALLOW and literal DENY.
    applying = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(TOPIC, "pay-in", ACLResourcePatternType.MATCH),
    )
    found, _ = admin.describe_acls(applying)
    assert sorted(map(key, found)) == sorted(map(key, WANTED[3:5])), found
    carols = ACLFilter(
        principal="User:carol",
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    [(_, deleted, error)] = admin.delete_acls([carols])
    assert error.errno == 0 and list(map(key, deleted)) == [key(DOOMED)], (deleted, error)
    found, _ = admin.describe_acls(everything)
    assert sorted(map(key, found)) == sorted(map(key, WANTED)), found
    admin.close()

    alice = KafkaAdminClient(**security("alice"))
    outcome = alice.create_acls([DOOMED])
    assert outcome["failed"] == [ClusterAuthorizationFailedError], outcome
    alice.close()
    print("kafka-python ACL setup: ok")


def refused_write(producer, topic):
    try:
        producer.send(topic, value=b"never").get(timeout=20)
    except TopicAuthorizationFailedError:
        return
    except KafkaError as e:
        raise AssertionError(f"writing {topic}: {type(e).__name__}, not TopicAuthorizationFailed")
    raise AssertionError(f"a write to {topic} was taken")


def enforce():
    producer = KafkaProducer(acks="all", max_block_ms=20000, **security("alice"))
    for i in range(5):
        producer.send("orders", value=f"python-{i}".encode(), partition=0).get(timeout=20)
    refused_write(producer, "secret")
    producer.close()

    consumer = KafkaConsumer(consumer_timeout_ms=20000, **security("alice"))
    topics = consumer.topics()
    assert "orders" in topics and "secret" not in topics, topics
    partition = TopicPartition("orders", 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    seen = [m.value for m in consumer if m.value.startswith(b"python-")][:5]
    assert seen == [f"python-{i}".encode() for i in range(5)], seen
    consumer.close()

    bob = KafkaConsumer(consumer_timeout_ms=10000, **security("bob"))
    bob.assign([TopicPartition("pay-in", 0)])
    try:
        for _ in bob:
            break
    except TopicAuthorizationFailedError:
        pass
    else:
        raise AssertionError("bob read pay-in past the DENY")
    bob.close()
    print("kafka-python ACL enforcement: ok")


def close():
    alice = KafkaAdminClient(**security("alice"))
    outcome = alice.create_acls([acl("User:alice", ACLOperation.WRITE, ALLOW, TOPIC, "closed")])
    assert not outcome["failed"], outcome
    alice.close()
    print("kafka-python ACL close: ok")


{"setup": setup, "enforce": enforce, "close": close}[step]()
