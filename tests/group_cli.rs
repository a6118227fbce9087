//! `sluice group list|describe` against a running broker with a live, committing group.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{flush, send, Broker, WAIT};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::BaseRecord;

fn sluice(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
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
fn list_and_describe_show_members_offsets_and_lag() {
    let broker = Broker::start_with_config("\"group.initial.rebalance.delay.ms\" = 200\n");
    broker.create_topic("ledger", 2);
    let producer = broker.producer(&[]);
    for i in 0..100 {
        let partition = i % 2;
        send(
            &producer,
            BaseRecord::to("ledger")
                .partition(partition)
                .key(b"k".as_slice())
                .payload(b"entry".as_slice()),
        );
    }
    flush(&producer);

    let consumer = broker.consumer(&[
        ("group.id", "auditors"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.offset.store", "true"),
    ]);
    consumer.subscribe(&["ledger"]).unwrap();
    // Read 60 of the 100 records, commit, and keep the member alive for the inspection.
    let deadline = Instant::now() + WAIT;
    let mut read = 0;
    while read < 60 {
        assert!(Instant::now() < deadline, "read only {read} records");
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(50)) {
            read += 1;
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();

    let listed = sluice(&["group", "-b", &broker.addr, "list"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with("auditors"))
        .unwrap_or_else(|| panic!("not listed:\n{listed}"));
    assert!(line.contains("Stable") && line.contains("consumer"), "{line}");

    let described = sluice(&["group", "-b", &broker.addr, "describe", "auditors"]);
    assert!(
        described.contains("Stable") && described.contains("1 members"),
        "{described}"
    );
    let rows: Vec<Vec<&str>> = described
        .lines()
        .filter(|l| l.starts_with("ledger"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{described}");
    let (mut committed, mut lag) = (0i64, 0i64);
    for row in &rows {
        assert_eq!(row[3], "50", "log end offset of each partition: {described}");
        committed += row[2].parse::<i64>().unwrap();
        lag += row[4].parse::<i64>().unwrap();
        // The owner: the member id (librdkafka's client id, then a UUID) and its host.
        assert!(row[5].starts_with("rdkafka-"), "owner's member id: {described}");
        assert_eq!(row[6], "/127.0.0.1", "owner's host: {described}");
    }
    assert_eq!((committed, lag), (60, 40), "{described}");
}
