//! Acknowledged writes survive SIGKILL: producers write with acks=all while the broker is
//! killed at pseudo-random moments and restarted on the same data dir, 20 times (or
//! `SLUICE_CRASH_KILLS` times, with seed `SLUICE_CRASH_SEED`: the soak mode `perf/soak.sh`). Every
//! acknowledged record is found exactly once at the offset it was acknowledged with, in
//! order, and every log reads cleanly to its end.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assign, consume, Broker};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::Offset;

const TOPIC: &str = "crashy";
const PARTITIONS: i32 = 3;
const PRODUCERS: u64 = 3;
/// Kills in the suite; `SLUICE_CRASH_KILLS` asks for more (never fewer).
const KILLS_MIN: u64 = 20;

fn kills() -> u64 {
    common::env_at_least("SLUICE_CRASH_KILLS", KILLS_MIN)
}

/// (partition, offset, value) of every acknowledged record.
type Acked = Arc<Mutex<Vec<(i32, i64, u64)>>>;

struct Acks(Acked);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, value: Box<u64>) {
        if let Ok(message) = result {
            self.0
                .lock()
                .unwrap()
                .push((message.partition(), message.offset(), *value));
        }
    }
}

/// A small deterministic generator, so a failing kill point can be replayed.
fn next_random(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

#[test]
fn acknowledged_records_survive_twenty_sigkills() {
    let mut broker = Broker::start();
    broker.create_topic(TOPIC, PARTITIONS);
    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    let seed = std::env::var("SLUICE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut random = seed;
    let kills = kills();

    for round in 0..kills {
        if round > 0 && round % 50 == 0 {
            eprintln!(
                "crash soak: {round} of {kills} kills, {} records acknowledged",
                acked.lock().unwrap().len()
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let (addr, acked, stop) = (broker.addr.clone(), acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    let client: BaseProducer<Acks> = ClientConfig::new()
                        .set("bootstrap.servers", &addr)
                        .set("acks", "all")
                        .set("linger.ms", "1")
                        // One write per acknowledgement: a retry could store a record twice.
                        .set("message.send.max.retries", "0")
                        .set("enable.idempotence", "false")
                        // After a kill, queued records fail fast instead of holding up the round.
                        .set("message.timeout.ms", "1000")
                        .create_with_context(Acks(acked))
                        .expect("producer");
                    // Values carry round, producer and sequence, so each is unique.
                    let mut sequence = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let value = (round << 40) | (producer << 32) | sequence;
                        let payload = value.to_string();
                        let record = BaseRecord::with_opaque_to(TOPIC, Box::new(value))
                            .key(payload.as_bytes())
                            .payload(payload.as_bytes());
                        if client.send(record).is_ok() {
                            sequence += 1;
                        }
                        client.poll(Duration::from_millis(1));
                    }
                    let _ = client.flush(Duration::from_secs(3));
                })
            })
            .collect();
        // Kill somewhere between 50 and 450 ms into the round.
        std::thread::sleep(Duration::from_millis(50 + next_random(&mut random) % 400));
        broker.kill();
        stop.store(true, Ordering::Relaxed);
        for producer in producers {
            producer.join().expect("producer thread");
        }
        broker.restart();
    }

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 1000,
        "the rounds acknowledged only {} records",
        acked.len()
    );
    let consumer = broker.consumer(&[]);
    let mut ends = HashMap::new();
    let mut total = 0;
    for p in 0..PARTITIONS {
        let (low, high) = consumer.fetch_watermarks(TOPIC, p, common::WAIT).unwrap();
        assert_eq!(low, 0);
        ends.insert(p, high);
        total += high as usize;
    }
    // Every record of every log, read to the end.
    assign(&consumer, TOPIC, PARTITIONS, Offset::Beginning);
    let stored: Vec<(i32, i64, u64)> = consume(&consumer, total, |m| {
        let value = std::str::from_utf8(m.payload().unwrap()).unwrap().parse().unwrap();
        (m.partition(), m.offset(), value)
    });
    let at: HashMap<(i32, i64), u64> = stored.iter().map(|(p, o, v)| ((*p, *o), *v)).collect();
    let mut count: HashMap<u64, usize> = HashMap::new();
    for (_, _, value) in &stored {
        *count.entry(*value).or_default() += 1;
    }
    for (partition, offset, value) in &acked {
        assert_eq!(
            at.get(&(*partition, *offset)),
            Some(value),
            "acknowledged {value} at {partition}@{offset}"
        );
        assert_eq!(count[value], 1, "acknowledged {value} stored more than once");
    }
    // Per partition, each producer's values appear in the order they were sent.
    let mut last: HashMap<(i32, u64), u64> = HashMap::new();
    for (partition, _, value) in &stored {
        let source = value >> 32;
        if let Some(previous) = last.insert((*partition, source), *value) {
            assert!(*value > previous, "partition {partition}: {value} after {previous}");
        }
    }
    eprintln!(
        "{} records acknowledged across {kills} kills (seed {seed}); {total} stored",
        acked.len()
    );
}
