"""kafka-python's config admin against Sluice (which it takes for Kafka 4.2): the broker's
configs under Kafka's names with their sources and read-only flags, a dynamic topic default
changed on the broker and seen by a topic, read-only and unknown broker configs refused by
name, group configs described and altered within their bounds, and every Kafka 4.2 topic
config described.

Usage: configs.py BOOTSTRAP TOPIC GROUP
The broker's config file must set num.partitions = 3 and nothing about retention.
"""

import sys

from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, KafkaAdminClient

KAFKA_42_TOPIC_CONFIGS = {
    "cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages",
    "flush.ms", "follower.replication.throttled.replicas", "index.interval.bytes",
    "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms", "message.timestamp.type", "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms", "min.insync.replicas", "preallocate", "remote.log.copy.disable",
    "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes", "retention.ms",
    "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
    "unclean.leader.election.enable",
}


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")


def describe(admin, kind, name, keys=None):
    resource = ConfigResource(kind, name, keys)
    answer = admin.describe_configs([resource], include_synonyms=True, config_filter="all")
    return answer[kind.name.lower()][name]


def alter(admin, kind, name, configs):
    resource = ConfigResource(kind, name, configs)
    answer = admin.alter_configs([resource], raise_on_unknown=False, incremental=True)
    return answer[kind.name.lower()][name]


def main():
    bootstrap, topic, group = sys.argv[1:4]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    broker = ConfigResourceType.BROKER
    node = "0"  # the test broker's node.id
    # kafka-python infers the broker's release from its ApiVersions (ListOffsets 11: 4.2).
    inferred = admin._manager.broker_version
    check(inferred == (4, 2), f"kafka-python infers Kafka 4.2, not {inferred}")

    configs = describe(admin, broker, node)
    for name in ["advertised.listeners", "listeners", "node.id", "num.partitions", "log.retention.ms",
                 "log.segment.bytes", "auto.create.topics.enable", "message.max.bytes", "log.dirs"]:
        check(name in configs, f"broker describes {name}: {sorted(configs)}")
    check(configs["advertised.listeners"]["value"] == f"PLAINTEXT://{bootstrap}",
          f"advertised.listeners is the bootstrap address: {configs['advertised.listeners']}")
    check(configs["node.id"]["value"] == node, f"node.id: {configs['node.id']}")
    partitions = configs["num.partitions"]
    check(partitions["value"] == "3" and partitions["config_source"] == "STATIC_BROKER_CONFIG"
          and partitions["read_only"], f"num.partitions from the config file, read-only: {partitions}")
    retention = configs["log.retention.ms"]
    check(retention["value"] == "604800000" and retention["config_source"] == "DEFAULT_CONFIG"
          and not retention["read_only"], f"log.retention.ms defaulted and dynamic: {retention}")
    check(configs["auto.create.topics.enable"]["read_only"], "auto.create.topics.enable is read-only")
    check(configs["log.segment.bytes"]["config_type"] == "INT", f"types: {configs['log.segment.bytes']}")

    # kafka-python's own filter: the dynamic ones are exactly those not read-only.
    dynamic = admin.describe_configs([ConfigResource(broker, node)], config_filter="dynamic")["broker"][node]
    check("log.retention.ms" in dynamic and "num.partitions" not in dynamic, f"dynamic: {sorted(dynamic)}")

    # A dynamic topic default reaches a topic that does not override it, with its source.
    check(alter(admin, broker, node, {"log.retention.ms": (AlterConfigOp.SET, "123456")}) == "OK",
          "log.retention.ms is dynamic")
    seen = describe(admin, ConfigResourceType.TOPIC, topic, ["retention.ms"])["retention.ms"]
    check(seen["value"] == "123456" and seen["config_source"] == "DYNAMIC_BROKER_CONFIG",
          f"topic sees the broker's dynamic default: {seen}")
    sources = [(s["name"], s["source"]) for s in seen["synonyms"]]
    check(sources == [("log.retention.ms", "DYNAMIC_BROKER_CONFIG"), ("log.retention.ms", "DEFAULT_CONFIG")],
          f"synonyms in precedence order: {seen['synonyms']}")
    check(describe(admin, broker, node, ["log.retention.ms"])["log.retention.ms"]["value"] == "123456",
          "the broker describes its dynamic value")

    # Read-only and unknown broker configs are refused, by name.
    refused = alter(admin, broker, node, {"num.partitions": (AlterConfigOp.SET, "5")})
    check("InvalidRequest" in refused and "num.partitions" in refused, f"read-only refused: {refused}")
    unknown = alter(admin, broker, node, {"no.such.config": (AlterConfigOp.SET, "1")})
    check("InvalidConfig" in unknown and "no.such.config" in unknown, f"unknown refused: {unknown}")
    bad = alter(admin, broker, node, {"log.segment.bytes": (AlterConfigOp.SET, "12")})
    check("InvalidConfig" in bad, f"out-of-range value refused: {bad}")
    check(alter(admin, broker, node, {"log.retention.ms": (AlterConfigOp.DELETE, None)}) == "OK", "delete")
    seen = describe(admin, ConfigResourceType.TOPIC, topic, ["retention.ms"])["retention.ms"]
    check(seen["value"] == "604800000" and seen["config_source"] == "DEFAULT_CONFIG", f"back to default: {seen}")

    # Group configs: the broker's defaults, a group's own value within the bounds, refusals.
    kind = ConfigResourceType.GROUP
    configs = describe(admin, kind, group)
    check(set(configs) == {"consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"}, f"group: {configs}")
    check(configs["consumer.session.timeout.ms"]["value"] == "45000"
          and configs["consumer.session.timeout.ms"]["config_source"] == "DEFAULT_CONFIG", f"{configs}")
    check(alter(admin, kind, group, {"consumer.session.timeout.ms": (AlterConfigOp.SET, "50000"),
                                     "consumer.heartbeat.interval.ms": (AlterConfigOp.SET, "6000")}) == "OK",
          "group configs alter")
    configs = describe(admin, kind, group)
    check(configs["consumer.session.timeout.ms"]["value"] == "50000"
          and configs["consumer.session.timeout.ms"]["config_source"] == "DYNAMIC_GROUP_CONFIG", f"{configs}")
    check(configs["consumer.heartbeat.interval.ms"]["value"] == "6000", f"{configs}")
    low = alter(admin, kind, group, {"consumer.session.timeout.ms": (AlterConfigOp.SET, "1000")})
    check("InvalidConfig" in low and "group.consumer.min.session.timeout.ms" in low, f"bound: {low}")
    share = alter(admin, kind, group, {"share.session.timeout.ms": (AlterConfigOp.SET, "45000")})
    check("InvalidConfig" in share and "share" in share, f"share-group config refused: {share}")
    listed = admin.list_config_resources(["GROUP"])
    check(group in listed.get("group", []), f"the group is listed: {listed}")

    # Every topic config Kafka 4.2 defines is described.
    configs = describe(admin, ConfigResourceType.TOPIC, topic)
    check(set(configs) == KAFKA_42_TOPIC_CONFIGS,
          f"topic configs: missing {KAFKA_42_TOPIC_CONFIGS - set(configs)}, extra {set(configs) - KAFKA_42_TOPIC_CONFIGS}")
    stored = alter(admin, ConfigResourceType.TOPIC, topic, {"min.cleanable.dirty.ratio": (AlterConfigOp.SET, "0.7")})
    check(stored == "OK", f"a stored-only topic config alters: {stored}")
    tiered = alter(admin, ConfigResourceType.TOPIC, topic, {"remote.storage.enable": (AlterConfigOp.SET, "true")})
    check("InvalidConfig" in tiered, f"tiered storage refused: {tiered}")
    check(describe(admin, ConfigResourceType.TOPIC, topic, ["min.cleanable.dirty.ratio"])
          ["min.cleanable.dirty.ratio"]["value"] == "0.7", "stored value described")
    admin.close()
    print("ok")


if __name__ == "__main__":
    main()
