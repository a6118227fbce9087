//! Transactional produce against idempotent produce with an independent client (librdkafka),
//! 100-byte records into the topic `txn`, acks=all, linger.ms=5, librdkafka's default of five
//! requests in flight.
//!
//! Usage: transactions BOOTSTRAP TRANSACTIONS RECORDS_PER_TRANSACTION
//! Runs the same records twice: once as an idempotent producer (one flush at the end), once as
//! a transactional one (begin, the records, commit, repeated), and prints the records/s of each
//! and the commit latency percentiles (from the commit's start: the transaction's records
//! delivered, then commit_transaction's call, which waits for EndTxn).
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Prints librdkafka's trace (with SLUICE_PERF_DEBUG) to stderr, each line stamped with the
/// time since the program started.
struct Trace(Instant);

impl ClientContext for Trace {
    fn log(&self, _level: RDKafkaLogLevel, facility: &str, message: &str) {
        eprintln!(
            "{:>10.3} ms {facility} {message}",
            self.0.elapsed().as_secs_f64() * 1000.0
        );
    }
}

impl ProducerContext for Trace {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// A producer of `config`, tracing librdkafka when SLUICE_PERF_DEBUG asks for it.
fn producer(config: &ClientConfig, started: Instant) -> BaseProducer<Trace> {
    config.create_with_context(Trace(started)).unwrap()
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("socket.nagle.disable", "true")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .set_log_level(RDKafkaLogLevel::Debug);
    // librdkafka's own trace, for seeing where time goes (e.g. SLUICE_PERF_DEBUG=eos,protocol).
    if let Ok(debug) = std::env::var("SLUICE_PERF_DEBUG") {
        config.set("debug", debug);
    }
    config
}

fn send_all<C: ProducerContext<DeliveryOpaque = ()>>(producer: &BaseProducer<C>, value: &[u8], count: usize) {
    for _ in 0..count {
        let mut record = BaseRecord::<(), [u8]>::to("txn").payload(value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
}

/// Waits, polling, until every record sent has its delivery report. rust-rdkafka's own
/// `flush` (which `commit_transaction` calls first) polls in rounds of a whole 100 ms once
/// anything is outstanding, which would put 100 ms of the client's making into every commit;
/// draining here first leaves it nothing to wait for.
fn drain<C: ProducerContext<DeliveryOpaque = ()>>(producer: &BaseProducer<C>) {
    let deadline = Instant::now() + TIMEOUT;
    while producer.in_flight_count() > 0 {
        assert!(Instant::now() < deadline, "records still in flight after {TIMEOUT:?}");
        producer.poll(Duration::from_micros(200));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = &args[1];
    let transactions: usize = args[2].parse().unwrap();
    let per_transaction: usize = args[3].parse().unwrap();
    let value = vec![b'v'; 100];
    let total = transactions * per_transaction;

    let program = Instant::now();
    let idempotent = producer(&config(bootstrap), program);
    // Connected, with its producer id and the topic's metadata, before the clock starts (as the
    // transactional producer is by init_transactions).
    send_all(&idempotent, &value, 1);
    drain(&idempotent);
    let started = Instant::now();
    send_all(&idempotent, &value, total);
    drain(&idempotent);
    let idempotent_rate = total as f64 / started.elapsed().as_secs_f64();

    let transactional = producer(config(bootstrap).set("transactional.id", "perf-transactions"), program);
    transactional.init_transactions(TIMEOUT).unwrap();
    let mut commits = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    for _ in 0..transactions {
        transactional.begin_transaction().unwrap();
        send_all(&transactional, &value, per_transaction);
        let commit = Instant::now();
        drain(&transactional);
        transactional.commit_transaction(TIMEOUT).unwrap();
        commits.record((commit.elapsed().as_micros() as u64).max(1)).unwrap();
    }
    let transactional_rate = total as f64 / started.elapsed().as_secs_f64();
    let ms = |q: f64| commits.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{total} records of 100 bytes, acks=all, linger.ms=5: idempotent {idempotent_rate:.0} records/s; \
         transactional ({transactions} transactions of {per_transaction}) {transactional_rate:.0} records/s \
         ({:.0}% of idempotent); commit latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        100.0 * transactional_rate / idempotent_rate,
        ms(0.5),
        ms(0.99),
        commits.max() as f64 / 1000.0
    );
}
