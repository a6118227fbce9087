//! Deleting topics that are being written: background work (recovery-point checkpoints,
//! retention, compaction) stops before a partition's directory goes, so nothing is written
//! into a deleted directory and nothing fails in the log.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{block_on, Broker, WAIT};
use rdkafka::admin::AdminOptions;
use rdkafka::producer::{BaseRecord, Producer};

#[test]
fn topics_deleted_while_written_leave_no_errors_and_no_files() {
    // Background work every few milliseconds, so it races the deletes.
    let broker = Broker::start_with_config(
        "\"auto.create.topics.enable\" = false\n\"log.flush.offset.checkpoint.interval.ms\" = 1\n\
         \"log.retention.check.interval.ms\" = 1\n\"log.cleaner.backoff.ms\" = 1\n",
    );
    let topics: Vec<String> = (0..8).map(|i| format!("doomed-{i}")).collect();
    for (i, topic) in topics.iter().enumerate() {
        let policy = if i % 2 == 0 { "delete" } else { "compact" };
        broker.create_topic_with(topic, 2, &[("cleanup.policy", policy), ("segment.bytes", "8192")]);
    }
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let producer = broker.producer(&[("acks", "1"), ("linger.ms", "1"), ("message.timeout.ms", "5000")]);
        let topics = topics.clone();
        let writing = writing.clone();
        std::thread::spawn(move || {
            let value = [b'd'; 200];
            let mut i = 0u64;
            while writing.load(Ordering::Relaxed) {
                let topic = &topics[(i % topics.len() as u64) as usize];
                let key = format!("k{}", i % 50);
                // Sends to deleted topics fail; the writer carries on regardless.
                let _ = producer.send(BaseRecord::to(topic).payload(&value[..]).key(key.as_bytes()));
                producer.poll(Duration::ZERO);
                i += 1;
                if i % 200 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let _ = producer.flush(Duration::from_secs(10));
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    for topic in &topics {
        let deleted = block_on(broker.admin().delete_topics(&[topic.as_str()], &AdminOptions::new())).expect("delete");
        assert!(deleted[0].is_ok(), "{deleted:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    writing.store(false, Ordering::Relaxed);
    writer.join().unwrap();

    let leftovers: Vec<String> = std::fs::read_dir(broker.data_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("doomed-"))
        .collect();
    assert!(leftovers.is_empty(), "directories left behind: {leftovers:?}");
    let log = broker.log.lock().unwrap();
    let errors: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        // A slow-append line reports time spent (a loaded CI machine can take 100 ms to roll a
        // segment), not a failure; anything else at WARN or above is one.
        .filter(|l| !is_slow_append_line(l))
        .collect();
    assert!(errors.is_empty(), "the broker logged failures: {errors:#?}");
    drop(log);
    // The broker still serves.
    broker
        .producer(&[])
        .client()
        .fetch_metadata(None, WAIT)
        .expect("metadata");
}

/// Whether `line` is the storage layer's slow-append timing report
/// (`<partition>: an append of N bytes took T ms (phases)`).
fn is_slow_append_line(line: &str) -> bool {
    line.contains("sluice::storage::log:") && line.contains(": an append of ") && line.contains(" took ")
}
