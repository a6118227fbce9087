//! The metadata store's tests: creating and placing topics, limits, re-placing on a new
//! shard count, and the golden bytes of `cluster.json`.

use super::*;
use crate::node::placement::place_topic;

#[test]
fn create_validates_and_places() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::load(dir.path(), &ServerConfig::default(), 2, place_topic).unwrap();
    let meta = store.plan_create("orders", 4, BTreeMap::new()).unwrap();
    assert_eq!(meta.placement.len(), 4);
    assert_eq!(
        store.plan_create("bad name", 1, BTreeMap::new()).unwrap_err().code,
        KafkaCode::InvalidTopicException
    );
    assert_eq!(
        store.plan_create("t", 0, BTreeMap::new()).unwrap_err().code,
        KafkaCode::InvalidPartitions
    );
    let mut bad = BTreeMap::new();
    bad.insert("retention.ms".to_string(), "soon".to_string());
    assert_eq!(
        store.plan_create("t", 1, bad).unwrap_err().code,
        KafkaCode::InvalidConfig
    );
}

#[test]
fn topics_and_partitions_past_max_partitions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MetadataStore::load(dir.path(), &ServerConfig::default(), 2, place_topic).unwrap();
    store.set_partitions_max(10);
    let meta = store.plan_create("a", 8, BTreeMap::new()).unwrap();
    store.insert(meta);
    let refused = store.plan_create("b", 3, BTreeMap::new()).unwrap_err();
    assert_eq!(refused.code, KafkaCode::PolicyViolation);
    assert!(refused.message.contains("max.partitions (10)"), "{}", refused.message);
    store.plan_create("b", 2, BTreeMap::new()).unwrap();
    assert_eq!(
        store.plan_partitions("a", 11).unwrap_err().code,
        KafkaCode::PolicyViolation
    );
    assert_eq!(store.plan_partitions("a", 10).unwrap().len(), 10);
}

/// Golden bytes of `meta/cluster.json` as a broker writes it: a file an earlier build wrote
/// must load, and re-encode to the same bytes.
const CLUSTER_JSON: &str = r#"{
  "cluster_id": "c9u1r8fQTNuKGtrtYp3B0g",
  "shard_count": 2,
  "topics": [
    {
      "name": "orders",
      "id": "01234567-89ab-cdef-0123-456789abcdef",
      "placement": [
        1,
        0
      ],
      "overrides": {
        "retention.ms": "60000"
      },
      "internal": false
    }
  ],
  "producer_ids_allocated": 2000,
  "configs": {
    "cluster": {
      "log.retention.ms": "120000"
    },
    "brokers": {},
    "groups": {}
  }
}"#;

#[test]
fn cluster_json_golden_bytes_load_and_encode_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    std::fs::write(dir.path().join("meta/cluster.json"), CLUSTER_JSON).unwrap();
    let store = MetadataStore::load(dir.path(), &ServerConfig::default(), 2, place_topic).unwrap();
    assert_eq!(store.cluster_id, "c9u1r8fQTNuKGtrtYp3B0g");
    assert_eq!(store.producer_ids_allocated, 2000);
    let orders = store.get("orders").unwrap();
    assert_eq!(
        orders.id,
        uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
    );
    assert_eq!(orders.placement, vec![ShardId(1), ShardId(0)]);
    assert_eq!(orders.overrides.get("retention.ms").map(String::as_str), Some("60000"));
    assert_eq!(String::from_utf8(store.encode()).unwrap(), CLUSTER_JSON);
}

#[test]
fn shard_count_change_re_places_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MetadataStore::load(dir.path(), &ServerConfig::default(), 1, place_topic).unwrap();
    let meta = store.plan_create("t", 4, BTreeMap::new()).unwrap();
    store.topics.insert(meta.name.clone(), meta);
    store.persist_blocking().unwrap();
    let cluster_id = store.cluster_id.clone();
    let reloaded = MetadataStore::load(dir.path(), &ServerConfig::default(), 2, place_topic).unwrap();
    assert_eq!(reloaded.cluster_id, cluster_id);
    let shards: Vec<usize> = reloaded.get("t").unwrap().placement.iter().map(|s| s.0).collect();
    assert!(shards.contains(&0) && shards.contains(&1), "{shards:?}");
}

#[test]
fn cluster_ids_look_like_kafkas() {
    let id = new_cluster_id();
    assert_eq!(id.len(), 22);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
}
