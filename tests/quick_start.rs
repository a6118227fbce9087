//! The README's quick start: `sluice serve` with its embedded defaults (data in the relative
//! `./sluice-data`) starts, serves a real client, and stops cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::WAIT;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[test]
fn serve_with_the_default_relative_data_dir() {
    let cwd = tempfile::tempdir().unwrap();
    // Only the ports are changed from the defaults, so tests can run side by side.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--cores",
            "0,1",
        ])
        .current_dir(cwd.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("a start-up line").unwrap();
    assert!(line.starts_with("sluice listening on"), "{line}");
    let data = std::fs::canonicalize(cwd.path()).unwrap().join("sluice-data");
    assert!(line.contains(&format!("data in {}", data.display())), "{line}");
    let addr = line.split_whitespace().nth(3).unwrap().to_string();

    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &addr).create().unwrap();
    producer
        .send(BaseRecord::to("first").key("k").payload("hello"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(WAIT).unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .set("group.id", "quick-start")
        .create()
        .unwrap();
    common::assign(&consumer, "first", 1, rdkafka::Offset::Beginning);
    let deadline = std::time::Instant::now() + WAIT;
    let value = loop {
        assert!(std::time::Instant::now() < deadline, "nothing consumed within {WAIT:?}");
        if let Some(message) = consumer.poll(std::time::Duration::from_millis(100)) {
            let message = message.unwrap();
            break rdkafka::message::Message::payload(&message).unwrap().to_vec();
        }
    };
    assert_eq!(value, b"hello");
    assert!(data.join("first-0").is_dir(), "the partition lives under ./sluice-data");
    // Clients go first: librdkafka takes long to give up on a broker that has gone.
    drop(consumer);
    drop(producer);

    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert!(child.wait().unwrap().success(), "a clean stop");
    assert_eq!(
        lines.next().map(Result::unwrap).as_deref(),
        Some("sluice stopped cleanly")
    );
}
