//! Produce-to-ack latency with an independent client (librdkafka through the rdkafka crate):
//! one 100-byte record per request, linger.ms=0, one request in flight, each delivery awaited
//! (spinning) before the next. Usage: one-record-latency BOOTSTRAP ACKS COUNT (the topic is `lat`).
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::{Duration, Instant};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (bootstrap, acks, count): (&str, &str, usize) = (&args[1], &args[2], args[3].parse().unwrap());
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", "0")
        .set("max.in.flight.requests.per.connection", "1")
        .set("enable.idempotence", "false")
        .create()
        .unwrap();
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    let value = vec![b'x'; 100];
    for i in 0..count + 200 {
        let started = Instant::now();
        producer.send(BaseRecord::<(), [u8]>::to("lat").payload(&value)).unwrap();
        // Spin (the client has its own CPU): rdkafka's poll with a timeout can sleep out the
        // whole timeout after serving the delivery report, which would be measured.
        while producer.in_flight_count() > 0 {
            producer.poll(Duration::ZERO);
        }
        if i >= 200 {
            h.record(started.elapsed().as_micros() as u64).unwrap();
        }
    }
    println!(
        "acks={acks}, 100-byte records, one per request: p50 {} us, p99 {} us, p99.9 {} us, max {} us ({count} records)",
        h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.value_at_quantile(0.999), h.max()
    );
}
