//! Transactions with librdkafka: commits and aborts as read_committed and read_uncommitted
//! consumers see them, an open transaction holding read_committed consumers back until the
//! moment it commits, a second producer with the same transactional id fencing the first, a
//! consume-transform-produce loop that aborts every few batches yielding every input exactly
//! once, and a broker SIGKILLed mid-transaction finishing or aborting it after restart.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{assign, consume, send, Broker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(30);

/// Broker settings that let timeouts show within a test: abandoned transactions are looked
/// for every 200 ms.
const QUICK_TIMEOUTS: &str = "\"transaction.abort.timed.out.transaction.cleanup.interval.ms\" = 200\n";

fn transactional_producer(broker: &Broker, id: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut settings = vec![("transactional.id", id), ("linger.ms", "0")];
    settings.extend_from_slice(extra);
    let producer = broker.producer(&settings);
    producer.init_transactions(WAIT).expect("init_transactions");
    producer
}

fn consumer(broker: &Broker, isolation: &str) -> BaseConsumer {
    broker.consumer(&[("isolation.level", isolation), ("enable.partition.eof", "false")])
}

fn values(consumer: &BaseConsumer, count: usize) -> Vec<String> {
    consume(consumer, count, |m| {
        String::from_utf8(m.payload().expect("a value").to_vec()).expect("utf-8")
    })
}

/// Polls for `window`, failing if any record arrives: what a read_committed consumer must
/// not see yet.
fn nothing_within(consumer: &BaseConsumer, window: Duration) {
    let until = Instant::now() + window;
    while Instant::now() < until {
        if let Some(result) = consumer.poll(Duration::from_millis(50)) {
            let message = result.expect("consumer error");
            panic!(
                "read a record at offset {} that should not be visible yet",
                message.offset()
            );
        }
    }
}

fn produce(producer: &BaseProducer, topic: &str, partition: i32, values: impl IntoIterator<Item = String>) {
    for value in values {
        send(
            producer,
            BaseRecord::to(topic)
                .partition(partition)
                .payload(value.as_bytes())
                .key(b"k".as_slice()),
        );
    }
    producer.flush(WAIT).expect("flush");
}

#[test]
fn commits_are_seen_and_aborts_are_not_by_read_committed_consumers() {
    let broker = Broker::start();
    broker.create_topic("txn-basic", 1);
    let producer = transactional_producer(&broker, "basic", &[]);
    producer.begin_transaction().unwrap();
    produce(&producer, "txn-basic", 0, (0..10).map(|i| format!("committed-{i}")));
    producer.commit_transaction(WAIT).unwrap();
    producer.begin_transaction().unwrap();
    produce(&producer, "txn-basic", 0, (0..10).map(|i| format!("aborted-{i}")));
    producer.abort_transaction(WAIT).unwrap();
    producer.begin_transaction().unwrap();
    produce(&producer, "txn-basic", 0, (0..5).map(|i| format!("after-{i}")));
    producer.commit_transaction(WAIT).unwrap();

    let committed = consumer(&broker, "read_committed");
    assign(&committed, "txn-basic", 1, Offset::Beginning);
    let seen = values(&committed, 15);
    let expected: Vec<String> = (0..10)
        .map(|i| format!("committed-{i}"))
        .chain((0..5).map(|i| format!("after-{i}")))
        .collect();
    assert_eq!(
        seen, expected,
        "read_committed sees the committed records, in order, and no aborted one"
    );

    let uncommitted = consumer(&broker, "read_uncommitted");
    assign(&uncommitted, "txn-basic", 1, Offset::Beginning);
    let all = values(&uncommitted, 25);
    assert_eq!(all.iter().filter(|v| v.starts_with("aborted-")).count(), 10);
    // 25 records and 3 markers: the markers take offsets but are never delivered as records.
    let (low, high) = committed.fetch_watermarks("txn-basic", 0, WAIT).expect("watermarks");
    assert_eq!((low, high), (0, 28));
}

#[test]
fn a_read_committed_consumer_waits_at_an_open_transaction_and_sees_it_when_it_commits() {
    let broker = Broker::start();
    broker.create_topic("txn-open", 1);
    let producer = transactional_producer(&broker, "open", &[]);
    producer.begin_transaction().unwrap();
    produce(&producer, "txn-open", 0, (0..5).map(|i| format!("open-{i}")));
    // A plain record after the open transaction: read_uncommitted sees all six.
    let plain = broker.producer(&[]);
    produce(&plain, "txn-open", 0, ["plain".to_string()]);
    let uncommitted = consumer(&broker, "read_uncommitted");
    assign(&uncommitted, "txn-open", 1, Offset::Beginning);
    assert_eq!(values(&uncommitted, 6).last().map(String::as_str), Some("plain"));

    let committed = consumer(&broker, "read_committed");
    assign(&committed, "txn-open", 1, Offset::Beginning);
    nothing_within(&committed, Duration::from_secs(2));
    let started = Instant::now();
    producer.commit_transaction(WAIT).unwrap();
    let seen = values(&committed, 6);
    assert_eq!(seen[0], "open-0");
    assert_eq!(seen[5], "plain");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the records appeared {:?} after the commit",
        started.elapsed()
    );
}

#[test]
fn a_second_producer_with_the_same_id_fences_the_first_and_aborts_its_transaction() {
    let broker = Broker::start();
    broker.create_topic("txn-fence", 1);
    let zombie = transactional_producer(&broker, "fenced-id", &[]);
    zombie.begin_transaction().unwrap();
    produce(&zombie, "txn-fence", 0, (0..3).map(|i| format!("zombie-{i}")));

    let successor = transactional_producer(&broker, "fenced-id", &[]);
    let refused = zombie
        .commit_transaction(WAIT)
        .expect_err("the fenced producer's commit");
    assert!(
        refused.to_string().to_lowercase().contains("fenced"),
        "the zombie is told it is fenced: {refused}"
    );
    successor.begin_transaction().unwrap();
    produce(&successor, "txn-fence", 0, (0..3).map(|i| format!("successor-{i}")));
    successor.commit_transaction(WAIT).unwrap();

    let committed = consumer(&broker, "read_committed");
    assign(&committed, "txn-fence", 1, Offset::Beginning);
    assert_eq!(
        values(&committed, 3),
        vec!["successor-0", "successor-1", "successor-2"],
        "the zombie's records were aborted"
    );
}

#[test]
fn an_abandoned_transaction_times_out_and_unblocks_read_committed_consumers() {
    let broker = Broker::start_with_config(QUICK_TIMEOUTS);
    broker.create_topic("txn-timeout", 1);
    let abandoned = transactional_producer(
        &broker,
        "abandoned",
        &[
            ("transaction.timeout.ms", "2000"),
            ("socket.timeout.ms", "2000"),
            ("message.timeout.ms", "2000"),
        ],
    );
    abandoned.begin_transaction().unwrap();
    produce(&abandoned, "txn-timeout", 0, ["abandoned".to_string()]);
    let plain = broker.producer(&[]);
    produce(&plain, "txn-timeout", 0, ["after".to_string()]);
    let committed = consumer(&broker, "read_committed");
    assign(&committed, "txn-timeout", 1, Offset::Beginning);
    // The coordinator aborts it past its 2 s timeout; then only the plain record is stable.
    assert_eq!(values(&committed, 1), vec!["after"]);
    drop(abandoned);
}

#[test]
fn a_broker_killed_mid_transaction_completes_or_aborts_it_after_restart() {
    let mut broker = Broker::start_with_config(QUICK_TIMEOUTS);
    broker.create_topic("txn-kill", 1);
    {
        let committed = transactional_producer(&broker, "kill-committed", &[]);
        committed.begin_transaction().unwrap();
        produce(&committed, "txn-kill", 0, (0..5).map(|i| format!("committed-{i}")));
        committed.commit_transaction(WAIT).unwrap();
        let open = transactional_producer(
            &broker,
            "kill-open",
            &[
                ("transaction.timeout.ms", "3000"),
                ("socket.timeout.ms", "3000"),
                ("message.timeout.ms", "3000"),
            ],
        );
        open.begin_transaction().unwrap();
        produce(&open, "txn-kill", 0, (0..5).map(|i| format!("open-{i}")));
        broker.kill();
    }
    broker.restart();
    // The open transaction's producer is gone: the restarted coordinator, which replayed it
    // as ongoing, aborts it at its timeout; a later transaction then becomes visible.
    let later = transactional_producer(&broker, "kill-later", &[]);
    later.begin_transaction().unwrap();
    produce(&later, "txn-kill", 0, ["later".to_string()]);
    later.commit_transaction(WAIT).unwrap();
    let committed = consumer(&broker, "read_committed");
    assign(&committed, "txn-kill", 1, Offset::Beginning);
    let seen = values(&committed, 6);
    let expected: Vec<String> = (0..5)
        .map(|i| format!("committed-{i}"))
        .chain(["later".to_string()])
        .collect();
    assert_eq!(seen, expected);
    // The id of the killed producer can start again: its old transaction is complete.
    let again = transactional_producer(&broker, "kill-open", &[]);
    again.begin_transaction().unwrap();
    again.abort_transaction(WAIT).unwrap();
}

/// Reads every input record once, writes its transform to the output inside a transaction
/// with the input offsets, and aborts every third transaction (rewinding to the last commit).
#[test]
fn consume_transform_produce_with_aborts_yields_every_input_exactly_once() {
    const INPUTS: usize = 600;
    const BATCH: usize = 25;
    let broker = Broker::start();
    broker.create_topic("ctp-in", 3);
    broker.create_topic("ctp-out", 3);
    let plain = broker.producer(&[]);
    for i in 0..INPUTS {
        send(
            &plain,
            BaseRecord::to("ctp-in")
                .partition((i % 3) as i32)
                .payload(format!("{i}").as_bytes())
                .key(b"k".as_slice()),
        );
    }
    plain.flush(WAIT).unwrap();

    let group = "ctp-group";
    let input = broker.consumer(&[
        ("group.id", group),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
    ]);
    let producer = transactional_producer(&broker, "ctp", &[]);
    // Positions start from the group's committed offsets (none yet: the beginning).
    let mut positions: BTreeMap<i32, i64> = (0..3).map(|p| (p, 0)).collect();
    let rewind = |positions: &BTreeMap<i32, i64>| {
        let mut list = TopicPartitionList::new();
        for (p, offset) in positions {
            list.add_partition_offset("ctp-in", *p, Offset::Offset(*offset))
                .unwrap();
        }
        input.assign(&list).unwrap();
    };
    rewind(&positions);
    let mut committed_inputs = 0usize;
    let mut round = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_inputs < INPUTS {
        assert!(
            Instant::now() < deadline,
            "only {committed_inputs} of {INPUTS} inputs committed"
        );
        round += 1;
        producer.begin_transaction().unwrap();
        let mut next = positions.clone();
        let mut taken = 0usize;
        let batch_deadline = Instant::now() + Duration::from_secs(5);
        while taken < BATCH && Instant::now() < batch_deadline && committed_inputs + taken < INPUTS {
            match input.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                    send(
                        &producer,
                        BaseRecord::to("ctp-out")
                            .partition(m.partition())
                            .payload(format!("out-{value}").as_bytes())
                            .key(b"k".as_slice()),
                    );
                    next.insert(m.partition(), m.offset() + 1);
                    taken += 1;
                }
                Some(Err(e)) => panic!("input consumer error: {e}"),
                None => {}
            }
        }
        let mut offsets = TopicPartitionList::new();
        for (p, offset) in &next {
            offsets
                .add_partition_offset("ctp-in", *p, Offset::Offset(*offset))
                .unwrap();
        }
        producer
            .send_offsets_to_transaction(&offsets, &input.group_metadata().unwrap(), WAIT)
            .unwrap();
        // A BaseProducer's delivery reports are served by polling: flush before ending.
        producer.flush(WAIT).unwrap();
        if round % 3 == 0 {
            producer.abort_transaction(WAIT).unwrap();
            rewind(&positions);
        } else {
            producer.commit_transaction(WAIT).unwrap();
            positions = next;
            committed_inputs += taken;
        }
    }

    // The group's committed offsets are the inputs' ends.
    let committed = input.committed(WAIT).unwrap();
    for element in committed.elements() {
        assert_eq!(
            element.offset(),
            Offset::Offset((INPUTS / 3) as i64),
            "partition {}",
            element.partition()
        );
    }
    let output = consumer(&broker, "read_committed");
    assign(&output, "ctp-out", 3, Offset::Beginning);
    let mut seen: Vec<usize> = values(&output, INPUTS)
        .into_iter()
        .map(|v| v.strip_prefix("out-").unwrap().parse().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..INPUTS).collect::<Vec<_>>(), "every input exactly once");
    nothing_within(&output, Duration::from_millis(500));
}

fn sluice(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("run sluice");
    assert!(
        output.status.success(),
        "sluice {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn sluice_txn_lists_and_describes_transactions() {
    let broker = Broker::start();
    broker.create_topic("txn-cli", 2);
    let producer = transactional_producer(&broker, "cli-txn", &[]);
    producer.begin_transaction().unwrap();
    produce(&producer, "txn-cli", 1, ["x".to_string()]);
    let described = sluice(&["txn", "-b", &broker.addr, "describe", "cli-txn"]);
    assert!(described.contains("state        Ongoing"), "{described}");
    assert!(described.contains("partitions   txn-cli [1]"), "{described}");
    let listed = sluice(&["txn", "-b", &broker.addr, "list"]);
    let row = listed
        .lines()
        .find(|l| l.starts_with("cli-txn "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("Ongoing"), "{row}");
    producer.commit_transaction(WAIT).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let described = sluice(&["txn", "-b", &broker.addr, "describe", "cli-txn"]);
        if described.contains("state        CompleteCommit") {
            assert!(!described.contains("partitions"), "{described}");
            break;
        }
        assert!(Instant::now() < deadline, "never complete: {described}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["txn", "-b", &broker.addr, "describe", "no-such-id"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("TRANSACTIONAL_ID_NOT_FOUND"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// A partition refuses a marker from an older coordinator than its producer's last marker
/// (TRANSACTION_COORDINATOR_FENCED), as Kafka does: a coordinator that lost its state
/// partition cannot end a transaction its successor owns.
#[test]
fn markers_of_an_older_coordinator_are_refused() {
    use common::txn::{batch, init_producer_id, produce};
    use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
    use kafka_protocol::messages::{ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
    let broker = Broker::start();
    broker.create_topic("txn-coordinator-epochs", 1);
    let id = "coordinator-epochs";
    let (pid, epoch) = init_producer_id(&broker, id);
    let marker = |coordinator_epoch: i32| -> i16 {
        let answer: WriteTxnMarkersResponse = common::raw::call(
            &broker,
            ApiKey::WriteTxnMarkers,
            1,
            &WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(coordinator_epoch)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(common::txn::str_bytes("txn-coordinator-epochs")))
                    .with_partition_indexes(vec![0])])]),
        );
        answer.markers[0].topics[0].partitions[0].error_code
    };
    let write = |sequence: i32| {
        produce(
            &broker,
            id,
            "txn-coordinator-epochs",
            vec![(0, batch(pid, epoch, sequence, &["x"]))],
        )
    };
    assert_eq!(write(0), vec![0]);
    assert_eq!(marker(5), 0, "the marker of coordinator epoch 5");
    assert_eq!(write(1), vec![0]);
    const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
    assert_eq!(marker(4), TRANSACTION_COORDINATOR_FENCED);
    assert_eq!(marker(5), 0, "the same coordinator's marker is written");
}
