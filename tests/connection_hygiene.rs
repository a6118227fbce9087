//! What careless or hostile clients leave behind: a flood of bad requests costs a few log
//! lines a second (every one counted in metrics), strings a client chose reach the log
//! escaped, the log carries no colour codes off a terminal, and a deleted topic's committed
//! offsets leave its groups.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{block_on, Broker, WAIT};
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

#[test]
fn a_flood_of_bad_requests_is_counted_not_logged_line_by_line() {
    let broker = Broker::start();
    let started = Instant::now();
    let floods = 3000;
    for i in 0..floods {
        let mut stream = TcpStream::connect(&broker.addr).expect("connect");
        // An unknown API key, with a client string full of control bytes after it.
        let mut body = vec![0x7f, 0x7f, 0, 0];
        body.extend_from_slice(&(i as i32).to_be_bytes());
        body.extend_from_slice(b"\x00\x09\x1b[31mred\n\x07");
        stream.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
        stream.write_all(&body).unwrap();
    }
    let deadline = Instant::now() + WAIT;
    while broker.counter("connection_errors_total") < floods {
        assert!(Instant::now() < deadline, "not every bad request was counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs() + 2;
    let lines = broker
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("closing connection"))
        .count() as u64;
    // Ten lines a second per shard, two shards.
    assert!(
        lines <= 20 * elapsed,
        "{lines} log lines for {floods} bad requests in {elapsed} s"
    );
    assert!(lines > 0, "bad requests are still logged, just not every one");
}

#[test]
fn client_strings_reach_the_log_escaped_and_the_log_has_no_colour() {
    let broker = Broker::start_with_config("\"group.initial.rebalance.delay.ms\" = 0\n");
    broker.create_topic("painted", 1);
    let group = "\u{1b}[31mred\nfake line";
    let consumer = broker.consumer(&[("group.id", group), ("session.timeout.ms", "6000")]);
    consumer.subscribe(&["painted"]).unwrap();
    let deadline = Instant::now() + WAIT;
    while consumer.assignment().unwrap().count() == 0 {
        assert!(Instant::now() < deadline, "never assigned");
        consumer.poll(Duration::from_millis(50));
    }
    broker.wait_for_log("for the group's generation", |line| {
        line.contains("generation") && line.contains("red")
    });
    let log = broker.log.lock().unwrap();
    let generation = log
        .iter()
        .find(|l| l.contains("generation") && l.contains("red"))
        .unwrap();
    assert!(
        generation.contains("\\u{1b}[31mred\\nfake line"),
        "the group id is escaped: {generation:?}"
    );
    assert!(
        log.iter().all(|line| !line.contains('\u{1b}')),
        "no raw escape byte in the log (no colour off a terminal, no client bytes)"
    );
}

#[test]
fn deleting_a_topic_removes_its_committed_offsets_from_groups() {
    let mut broker = Broker::start_with_config("\"group.initial.rebalance.delay.ms\" = 0\n");
    broker.create_topic("kept", 1);
    broker.create_topic("gone", 1);
    let producer = broker.producer(&[("acks", "all")]);
    for topic in ["kept", "gone"] {
        for _ in 0..5 {
            common::send(&producer, BaseRecord::to(topic).payload(&b"v"[..]).key(&[][..]));
        }
    }
    producer.flush(WAIT).unwrap();
    let consumer = broker.consumer(&[("group.id", "readers")]);
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset("kept", 0, Offset::Offset(5)).unwrap();
    offsets.add_partition_offset("gone", 0, Offset::Offset(4)).unwrap();
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");

    let deleted = block_on(broker.admin().delete_topics(&["gone"], &AdminOptions::new())).expect("delete");
    assert!(deleted[0].is_ok(), "{deleted:?}");
    let committed = |consumer: &rdkafka::consumer::BaseConsumer| {
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition("kept", 0);
        wanted.add_partition("gone", 0);
        let got = consumer.committed_offsets(wanted, WAIT).expect("offset fetch");
        (
            got.find_partition("kept", 0).unwrap().offset(),
            got.find_partition("gone", 0).unwrap().offset(),
        )
    };
    assert_eq!(committed(&consumer), (Offset::Offset(5), Offset::Invalid));
    drop(consumer);
    broker.restart();
    let consumer = broker.consumer(&[("group.id", "readers")]);
    assert_eq!(
        committed(&consumer),
        (Offset::Offset(5), Offset::Invalid),
        "still gone after a restart"
    );
}
