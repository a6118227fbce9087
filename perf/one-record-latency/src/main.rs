//! Produce-to-ack latency with an independent client (librdkafka through the rdkafka crate),
//! 100-byte records, linger.ms=0, Nagle off, into the topic `lat`.
//!
//! Usage: one-record-latency BOOTSTRAP ACKS COUNT [RATE]
//! - without RATE: one request in flight, each delivery awaited (spinning) before the next;
//! - with RATE (records/s): records are sent on a fixed schedule whatever the answers do (an
//!   open loop, librdkafka's default of five requests in flight), and each is timed from its
//!   scheduled send to its delivery report, so a broker that falls behind shows as latency.
//!   The sending thread yields while it waits for each record's time, and librdkafka's own
//!   poll thread serves the delivery reports: a thread spinning without yielding beside
//!   librdkafka's threads on the client's one CPU delayed them by milliseconds (against
//!   `instant-broker`, a listener that answers at once: p50 0.7 ms and p99 15 ms at 2,000/s,
//!   against 0.13 ms and 2 ms now; sleeping instead of yielding gave 0.26 ms and 2.4 ms).
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WARM_UP: usize = 200;

#[derive(Clone)]
struct Timing {
    latencies: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
    failed: Arc<Mutex<usize>>,
}

impl ClientContext for Timing {}

impl ProducerContext for Timing {
    type DeliveryOpaque = Box<(Instant, bool)>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        let (scheduled, counted) = *sent;
        if result.is_err() {
            *self.failed.lock().unwrap() += 1;
        } else if counted {
            let micros = scheduled.elapsed().as_micros() as u64;
            self.latencies.lock().unwrap().record(micros.max(1)).unwrap();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (bootstrap, acks, count): (&str, &str, usize) = (&args[1], &args[2], args[3].parse().unwrap());
    let rate: Option<u64> = args.get(4).map(|r| r.parse().unwrap());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", "0")
        .set("socket.nagle.disable", "true")
        .set("enable.idempotence", "false");
    if rate.is_none() {
        config.set("max.in.flight.requests.per.connection", "1");
    }
    let timing = Timing {
        latencies: Arc::new(Mutex::new(hdrhistogram::Histogram::new(3).unwrap())),
        failed: Arc::new(Mutex::new(0)),
    };
    let value = vec![b'x'; 100];
    let started = Instant::now();
    let context = match rate {
        None => {
            let producer: BaseProducer<Timing> = config.create_with_context(timing).unwrap();
            one_in_flight(&producer, count, &value);
            producer.context().clone()
        }
        Some(rate) => {
            let producer: ThreadedProducer<Timing> = config.create_with_context(timing).unwrap();
            on_schedule(&producer, count, rate, &value, started);
            producer.context().clone()
        }
    };
    let elapsed = started.elapsed();
    let h = context.latencies.lock().unwrap();
    let mode = match rate {
        Some(rate) => format!(
            "{rate} records/s scheduled ({:.0} achieved)",
            (count + WARM_UP) as f64 / elapsed.as_secs_f64()
        ),
        None => "one per request, one in flight".to_string(),
    };
    println!(
        "acks={acks}, 100-byte records, {mode}: p50 {} us, p99 {} us, p99.9 {} us, max {} us ({} records, {} failed)",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        h.len(),
        context.failed.lock().unwrap()
    );
}

/// One request in flight, each delivery awaited by spinning (the client has its own CPU, and
/// nothing else of the client's needs it while a request is out).
fn one_in_flight(producer: &BaseProducer<Timing>, count: usize, value: &[u8]) {
    for i in 0..count + WARM_UP {
        send_timed(
            |record| producer.send(record).err().map(|(_, back)| back),
            value,
            (Instant::now(), i >= WARM_UP),
            || {
                producer.poll(Duration::ZERO);
            },
        );
        while producer.in_flight_count() > 0 {
            producer.poll(Duration::ZERO);
        }
    }
}

/// Records at `rate` a second from `started`, each sent at its time (yielding until then).
fn on_schedule(producer: &ThreadedProducer<Timing>, count: usize, rate: u64, value: &[u8], started: Instant) {
    for i in 0..count + WARM_UP {
        let scheduled = started + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
        while Instant::now() < scheduled {
            std::thread::yield_now();
        }
        send_timed(
            |record| producer.send(record).err().map(|(_, back)| back),
            value,
            (scheduled, i >= WARM_UP),
            || std::thread::sleep(Duration::from_micros(50)),
        );
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

type Timed<'a> = BaseRecord<'a, (), [u8], Box<(Instant, bool)>>;

/// Sends one record of `value` to `lat`, timed from `timing.0` (and counted if `timing.1`),
/// calling `when_full` each time librdkafka's queue is full (`send` hands the record back).
fn send_timed<'a>(
    mut send: impl FnMut(Timed<'a>) -> Option<Timed<'a>>,
    value: &'a [u8],
    timing: (Instant, bool),
    mut when_full: impl FnMut(),
) {
    let mut record = BaseRecord::with_opaque_to("lat", Box::new(timing)).payload(value);
    while let Some(back) = send(record) {
        record = back;
        when_full();
    }
}
