//! A full disk: producers of the affected partitions get KAFKA_STORAGE_ERROR, everything
//! already written stays readable and undamaged, and writes succeed again, at the right
//! offsets, once space returns. The small disk is a size-limited tmpfs mounted by the test
//! (the tests run as root); glommio falls back to buffered writes on tmpfs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assign, consume, Broker};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::Offset;

/// A tmpfs of a given size, unmounted when dropped.
struct SmallDisk {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root; the test suite runs as root"
        );
        SmallDisk {
            mount_point: dir.path().to_path_buf(),
            _dir: dir,
        }
    }

    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.mount_point)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount");
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount_point).status();
    }
}

/// Delivery outcomes: acknowledged (offset, value) pairs and the error codes of failures.
#[derive(Default)]
struct Outcomes {
    acked: Vec<(i64, u64)>,
    failed: Vec<RDKafkaErrorCode>,
}

struct Track(Arc<Mutex<Outcomes>>);

impl ClientContext for Track {}

impl ProducerContext for Track {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, value: Box<u64>) {
        let mut outcomes = self.0.lock().unwrap();
        match result {
            Ok(message) => outcomes.acked.push((message.offset(), *value)),
            Err((KafkaError::MessageProduction(code), _)) => outcomes.failed.push(*code),
            Err((e, _)) => panic!("unexpected delivery error: {e}"),
        }
    }
}

fn producer(broker: &Broker, outcomes: &Arc<Mutex<Outcomes>>) -> BaseProducer<Track> {
    ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("message.send.max.retries", "0")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "10000")
        .create_with_context(Track(outcomes.clone()))
        .expect("producer")
}

/// Sends the values one at a time (so acknowledged offsets are contiguous), each after the
/// previous one's delivery report; stops at the first failure.
fn produce(producer: &BaseProducer<Track>, outcomes: &Arc<Mutex<Outcomes>>, values: std::ops::Range<u64>) {
    let payload_tail = "x".repeat(10_000);
    for value in values {
        let (reported, failed_before) = {
            let outcomes = outcomes.lock().unwrap();
            (outcomes.acked.len() + outcomes.failed.len(), outcomes.failed.len())
        };
        let payload = format!("{value}:{payload_tail}");
        let record = BaseRecord::with_opaque_to("filling", Box::new(value))
            .key(b"k".as_slice())
            .payload(payload.as_bytes());
        producer.send(record).map_err(|(e, _)| e).expect("queue");
        let deadline = std::time::Instant::now() + common::WAIT;
        loop {
            producer.poll(Duration::from_millis(5));
            let outcomes = outcomes.lock().unwrap();
            if outcomes.acked.len() + outcomes.failed.len() > reported {
                if outcomes.failed.len() > failed_before {
                    return;
                }
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no delivery report for {value}");
        }
    }
}

#[test]
fn a_full_disk_refuses_writes_keeps_data_and_recovers() {
    let disk = SmallDisk::mount("4m");
    let data = disk.path().join("data");
    let broker = Broker::start_in(&data);
    broker.create_topic("filling", 1);
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let client = producer(&broker, &outcomes);

    // About 4 MiB of 10 kB records: the disk fills before the 600th, and producing stops at
    // the first refusal.
    produce(&client, &outcomes, 0..600);
    let (acked_before, failures) = {
        let outcomes = outcomes.lock().unwrap();
        (outcomes.acked.clone(), outcomes.failed.clone())
    };
    assert!(!failures.is_empty(), "the disk never filled");
    assert!(
        failures.iter().all(|code| *code == RDKafkaErrorCode::KafkaStorageError),
        "full disk answered with {failures:?}"
    );
    assert!(acked_before.len() > 100, "only {} records fit", acked_before.len());

    // Everything acknowledged is readable and intact.
    let consumer = broker.consumer(&[]);
    assign(&consumer, "filling", 1, Offset::Beginning);
    let stored = consume(&consumer, acked_before.len(), |m| {
        let payload = std::str::from_utf8(m.payload().unwrap()).unwrap();
        (m.offset(), payload.split(':').next().unwrap().parse::<u64>().unwrap())
    });
    assert_eq!(stored, acked_before, "acknowledged records read back unchanged");

    // Space returns: writes succeed again and continue right after the last acknowledged one.
    disk.grow("64m");
    produce(&client, &outcomes, 1000..1010);
    let after: Vec<(i64, u64)> = outcomes.lock().unwrap().acked[acked_before.len()..].to_vec();
    assert_eq!(after.len(), 10, "writes work again once there is space");
    let next = acked_before.len() as i64;
    assert_eq!(
        after.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (next..next + 10).collect::<Vec<_>>()
    );
}
