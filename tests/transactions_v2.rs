//! Transaction version 2 (KIP-890 part 2), spoken in the raw protocol since none of the
//! clients the suite drives uses it yet: the broker finalizes `transaction.version` 2 in
//! ApiVersions; a producer that never sends AddPartitionsToTxn or AddOffsetsToTxn gets its
//! partitions (Produce v12) and its group's offsets partition (TxnOffsetCommit v5) added to
//! its transaction by the leader; EndTxn v5 bumps the epoch at every ending, answers the
//! epoch to go on with, recognises its own retry, and the markers fence the old epoch. A
//! read_committed librdkafka consumer counts what became visible.

mod common;

use std::time::{Duration, Instant};

use common::txn::{
    batch, describe, end_txn, init_producer_id, produce, str_bytes, transaction_version, until_settled,
    INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, PRODUCER_FENCED, UNSTABLE_OFFSET_COMMIT,
};
use common::{assign, consume, Broker, WAIT};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::TxnOffsetCommitResponse;
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse, ProducerId, TopicName, TransactionalId,
};
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;
use rdkafka::Offset;

fn values(consumer: &BaseConsumer, count: usize) -> Vec<String> {
    let mut got = consume(consumer, count, |m| {
        String::from_utf8(m.payload().expect("a value").to_vec()).expect("utf-8")
    });
    got.sort();
    got
}

/// Polls for `window`, failing if any record arrives.
fn nothing_within(consumer: &BaseConsumer, window: Duration) {
    let until = Instant::now() + window;
    while Instant::now() < until {
        if let Some(result) = consumer.poll(Duration::from_millis(50)) {
            panic!(
                "read a record at offset {} that should not be visible",
                result.unwrap().offset()
            );
        }
    }
}

#[test]
fn a_v2_producer_adds_partitions_by_producing_and_bumps_its_epoch_at_every_ending() {
    let broker = Broker::start();
    broker.create_topic("tv2", 2);
    assert_eq!(transaction_version(&broker), Some(2));
    let id = "tv2-producer";
    let (pid, epoch) = init_producer_id(&broker, id);
    assert_eq!(describe(&broker, id).0, "Empty");

    // No AddPartitionsToTxn: the produce adds both partitions.
    let codes = produce(
        &broker,
        id,
        "tv2",
        vec![
            (0, batch(pid, epoch, 0, &["c-0", "c-1"])),
            (1, batch(pid, epoch, 0, &["c-2"])),
        ],
    );
    assert_eq!(codes, vec![0, 0]);
    let (state, described_epoch, partitions) = describe(&broker, id);
    assert_eq!((state.as_str(), described_epoch), ("Ongoing", epoch));
    assert_eq!(partitions, vec![("tv2".to_string(), 0), ("tv2".to_string(), 1)]);

    let committed = broker.consumer(&[("isolation.level", "read_committed"), ("enable.partition.eof", "false")]);
    assign(&committed, "tv2", 2, Offset::Beginning);
    nothing_within(&committed, Duration::from_millis(500));

    let (code, next) = until_settled("EndTxn", || end_txn(&broker, id, (pid, epoch), true));
    assert_eq!((code, next), (0, (pid, epoch + 1)), "the commit bumps the epoch");
    assert_eq!(values(&committed, 3), vec!["c-0", "c-1", "c-2"]);

    // The next transaction runs at the bumped epoch, its sequences from 0 again.
    let epoch = next.1;
    assert_eq!(
        produce(&broker, id, "tv2", vec![(0, batch(pid, epoch, 0, &["a-0"]))]),
        vec![0]
    );
    let (code, next) = until_settled("EndTxn", || end_txn(&broker, id, (pid, epoch), false));
    assert_eq!((code, next), (0, (pid, epoch + 1)), "the abort bumps the epoch");
    // A retry comes with the epoch before the bump and gets the same answer.
    assert_eq!(
        until_settled("EndTxn retry", || end_txn(&broker, id, (pid, epoch), false)),
        (0, (pid, epoch + 1))
    );
    let (code, _) = end_txn(&broker, id, (pid, epoch), true);
    assert_eq!(code, INVALID_TXN_STATE, "a commit of the aborted transaction");
    let (code, _) = end_txn(&broker, id, (pid, epoch - 1), false);
    assert_eq!(code, PRODUCER_FENCED, "an epoch two behind");
    assert_eq!(describe(&broker, id).0, "CompleteAbort");

    // The abort marker fenced the old epoch: its batches are refused, not a dangling
    // transaction.
    assert_eq!(
        produce(&broker, id, "tv2", vec![(0, batch(pid, epoch, 1, &["late"]))]),
        vec![INVALID_PRODUCER_EPOCH]
    );
    nothing_within(&committed, Duration::from_millis(300));
    let uncommitted = broker.consumer(&[
        ("isolation.level", "read_uncommitted"),
        ("enable.partition.eof", "false"),
    ]);
    assign(&uncommitted, "tv2", 2, Offset::Beginning);
    assert_eq!(values(&uncommitted, 4), vec!["a-0", "c-0", "c-1", "c-2"]);

    // A third transaction at the newest epoch commits and becomes visible.
    let epoch = next.1;
    assert_eq!(
        produce(&broker, id, "tv2", vec![(1, batch(pid, epoch, 0, &["c-3"]))]),
        vec![0]
    );
    let (code, next) = until_settled("EndTxn", || end_txn(&broker, id, (pid, epoch), true));
    assert_eq!((code, next), (0, (pid, epoch + 1)));
    assert_eq!(values(&committed, 1), vec!["c-3"]);
}

#[test]
fn a_v2_producer_commits_offsets_without_add_offsets_to_txn() {
    let broker = Broker::start();
    broker.create_topic("tv2-in", 1);
    broker.create_topic("tv2-out", 1);
    let id = "tv2-offsets";
    let group = "tv2-group";
    let (pid, epoch) = init_producer_id(&broker, id);
    assert_eq!(
        produce(&broker, id, "tv2-out", vec![(0, batch(pid, epoch, 0, &["out-0"]))]),
        vec![0]
    );
    let commit_offsets = || {
        let answer: TxnOffsetCommitResponse = common::raw::call(
            &broker,
            ApiKey::TxnOffsetCommit,
            5,
            &TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(id)))
                .with_group_id(GroupId(str_bytes(group)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_generation_id(-1)
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(str_bytes("tv2-in")))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(42)
                        .with_committed_leader_epoch(-1)])]),
        );
        (answer.topics[0].partitions[0].error_code, ())
    };
    assert_eq!(until_settled("TxnOffsetCommit", commit_offsets).0, 0);
    let (_, _, partitions) = describe(&broker, id);
    assert_eq!(
        partitions.len(),
        2,
        "the output partition and the group's offsets partition: {partitions:?}"
    );
    assert!(partitions.contains(&("tv2-out".to_string(), 0)));
    assert!(partitions.iter().any(|(topic, _)| topic == "__consumer_offsets"));

    let fetch_offset = || {
        let answer: OffsetFetchResponse = common::raw::call(
            &broker,
            ApiKey::OffsetFetch,
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(str_bytes(group)))
                .with_require_stable(true)
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(str_bytes("tv2-in")))
                    .with_partition_indexes(vec![0])])),
        );
        let partition = &answer.topics[0].partitions[0];
        (answer.error_code.max(partition.error_code), partition.committed_offset)
    };
    let (code, offset) = fetch_offset();
    assert!(
        code == UNSTABLE_OFFSET_COMMIT || (code, offset) == (0, -1),
        "offsets of an open transaction are not committed yet: {code} {offset}"
    );
    let (code, _) = until_settled("EndTxn", || end_txn(&broker, id, (pid, epoch), true));
    assert_eq!(code, 0);
    let deadline = Instant::now() + WAIT;
    loop {
        match fetch_offset() {
            (0, 42) => break,
            (UNSTABLE_OFFSET_COMMIT, _) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("the committed offset after the commit: {other:?}"),
        }
    }
}

#[test]
fn transaction_version_1_leaves_adding_partitions_to_the_producer() {
    let broker = Broker::start_with_config("\"transaction.version\" = 1\n");
    broker.create_topic("tv1", 1);
    assert_eq!(transaction_version(&broker), Some(1));
    let id = "tv1-producer";
    let (pid, epoch) = init_producer_id(&broker, id);
    // Without transaction version 2 the leader asks no coordinator: the id's transaction
    // does not begin (this producer breaks the rules of its version).
    assert_eq!(
        produce(&broker, id, "tv1", vec![(0, batch(pid, epoch, 0, &["x"]))]),
        vec![0]
    );
    assert_eq!(describe(&broker, id).0, "Empty");
    let (code, _) = end_txn(&broker, id, (pid, epoch), true);
    assert_eq!(code, INVALID_TXN_STATE);
}
