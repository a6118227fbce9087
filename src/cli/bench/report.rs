//! Counters and latency histograms shared by the bench's threads, the progress line and the
//! final summary.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cli::bench::{BenchArgs, Mode};

/// Highest latency a histogram tracks (µs); larger values are clamped to it.
const LATENCY_US_MAX: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

pub struct Stats {
    produced: AtomicU64,
    produced_bytes: AtomicU64,
    consumed: AtomicU64,
    consumed_bytes: AtomicU64,
    errors: AtomicU64,
    /// Records the consumers should see before stopping (e2e); u64::MAX until known.
    expected: AtomicU64,
    ack_us: Mutex<Histogram<u64>>,
    e2e_us: Mutex<Histogram<u64>>,
    /// The same latencies since the last progress line (taken and reset by it).
    ack_interval_us: Mutex<Histogram<u64>>,
    e2e_interval_us: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            produced: AtomicU64::new(0),
            produced_bytes: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            consumed_bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            expected: AtomicU64::new(u64::MAX),
            ack_us: Mutex::new(histogram()),
            e2e_us: Mutex::new(histogram()),
            ack_interval_us: Mutex::new(histogram()),
            e2e_interval_us: Mutex::new(histogram()),
            first_error: Mutex::new(None),
        }
    }
}

/// Microseconds since the Unix epoch: the clock records are stamped with.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn record_latencies(histograms: [&Mutex<Histogram<u64>>; 2], now: i64, created_us: &[i64]) {
    for histogram in histograms {
        let mut histogram = histogram.lock().expect("histogram lock");
        for &created in created_us {
            let latency = (now - created).clamp(1, LATENCY_US_MAX as i64) as u64;
            histogram.saturating_record(latency);
        }
    }
}

impl Stats {
    /// A produce acknowledged at `now` (µs) for records created at `created_us`.
    pub fn acked(&self, now: i64, created_us: &[i64], bytes: u64) {
        self.produced.fetch_add(created_us.len() as u64, Ordering::Relaxed);
        self.produced_bytes.fetch_add(bytes, Ordering::Relaxed);
        record_latencies([&self.ack_us, &self.ack_interval_us], now, created_us);
    }

    /// Records sent without acknowledgement (acks=0).
    pub fn sent(&self, records: u64, bytes: u64) {
        self.produced.fetch_add(records, Ordering::Relaxed);
        self.produced_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn consumed(&self, records: u64, bytes: u64) {
        self.consumed.fetch_add(records, Ordering::Relaxed);
        self.consumed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records read at `now` (µs) that were created at `created_us`.
    pub fn arrived(&self, now: i64, created_us: &[i64]) {
        record_latencies([&self.e2e_us, &self.e2e_interval_us], now, created_us);
    }

    pub fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().expect("error lock").get_or_insert(what);
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().expect("error lock").clone()
    }

    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Relaxed)
    }

    pub fn consumed_so_far(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    pub fn set_expected(&self, records: u64) {
        self.expected.store(records, Ordering::Relaxed);
    }

    pub fn expected(&self) -> u64 {
        self.expected.load(Ordering::Relaxed)
    }
}

/// Prints a progress line to stderr every `interval` until `stop`: records and bytes in the
/// interval, and the latency (p50, p99, max) of the records completed in it.
pub fn spawn_progress(
    mode: Mode,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    interval: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut next = started + interval;
        let (mut last_records, mut last_bytes) = (0u64, 0u64);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(interval.min(Duration::from_millis(50)));
            if Instant::now() < next {
                continue;
            }
            next += interval;
            let (records, bytes, histogram) = match mode {
                Mode::Consume => (
                    stats.consumed.load(Ordering::Relaxed),
                    stats.consumed_bytes.load(Ordering::Relaxed),
                    None,
                ),
                Mode::Produce => (
                    stats.produced.load(Ordering::Relaxed),
                    stats.produced_bytes.load(Ordering::Relaxed),
                    Some(&stats.ack_interval_us),
                ),
                Mode::E2e => (
                    stats.consumed.load(Ordering::Relaxed),
                    stats.consumed_bytes.load(Ordering::Relaxed),
                    Some(&stats.e2e_interval_us),
                ),
            };
            let latency = histogram
                .and_then(|h| {
                    let mut h = h.lock().expect("histogram lock");
                    let line = (!h.is_empty()).then(|| {
                        let ms = |us: u64| us as f64 / 1000.0;
                        format!(
                            "  p50 {:.3} p99 {:.3} max {:.3} ms",
                            ms(h.value_at_quantile(0.5)),
                            ms(h.value_at_quantile(0.99)),
                            ms(h.max())
                        )
                    });
                    h.reset();
                    line
                })
                .unwrap_or_default();
            let seconds = interval.as_secs_f64();
            eprintln!(
                "[{:>7.1}s] {:>12.0} records/s {:>9.1} MB/s{latency}",
                started.elapsed().as_secs_f64(),
                (records - last_records) as f64 / seconds,
                (bytes - last_bytes) as f64 / 1e6 / seconds,
            );
            (last_records, last_bytes) = (records, bytes);
        }
    })
}

#[derive(Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub p9999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(histogram: &Mutex<Histogram<u64>>) -> Option<Latency> {
        let h = histogram.lock().expect("histogram lock");
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            p9999_ms: ms(h.value_at_quantile(0.9999)),
            max_ms: ms(h.max()),
        })
    }
}

#[derive(Serialize)]
pub struct Summary {
    pub mode: String,
    pub topic: String,
    pub record_size: usize,
    pub acks: i16,
    pub compression: String,
    pub target_rate: u64,
    pub seconds: f64,
    pub produced: u64,
    pub consumed: u64,
    pub records_per_second: f64,
    pub megabytes_per_second: f64,
    pub produce_to_ack: Option<Latency>,
    pub produce_to_consume: Option<Latency>,
    pub errors: u64,
}

impl Summary {
    pub fn new(args: &BenchArgs, stats: &Stats, elapsed: Duration) -> Summary {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let produced = stats.produced.load(Ordering::Relaxed);
        let consumed = stats.consumed.load(Ordering::Relaxed);
        let (records, bytes) = match args.mode {
            Mode::Produce => (produced, stats.produced_bytes.load(Ordering::Relaxed)),
            Mode::Consume | Mode::E2e => (consumed, stats.consumed_bytes.load(Ordering::Relaxed)),
        };
        Summary {
            mode: format!("{:?}", args.mode).to_lowercase(),
            topic: args.topic.clone(),
            record_size: args.record_size,
            acks: args.acks,
            compression: format!("{:?}", args.compression).to_lowercase(),
            target_rate: args.rate,
            seconds,
            produced,
            consumed,
            records_per_second: records as f64 / seconds,
            megabytes_per_second: bytes as f64 / seconds / 1e6,
            produce_to_ack: Latency::of(&stats.ack_us),
            produce_to_consume: Latency::of(&stats.e2e_us),
            errors: stats.errors.load(Ordering::Relaxed),
        }
    }

    pub fn print_table(&self) {
        println!(
            "{} {}: {} records produced, {} consumed in {:.2} s",
            self.mode, self.topic, self.produced, self.consumed, self.seconds
        );
        println!(
            "throughput: {:.0} records/s, {:.1} MB/s ({}-byte records, acks={}, compression {})",
            self.records_per_second, self.megabytes_per_second, self.record_size, self.acks, self.compression
        );
        println!(
            "{:<20} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        );
        for (name, latency) in [
            ("produce-to-ack", &self.produce_to_ack),
            ("produce-to-consume", &self.produce_to_consume),
        ] {
            if let Some(l) = latency {
                println!(
                    "{name:<20} {:>10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                    l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.p9999_ms, l.max_ms
                );
            }
        }
        if self.errors > 0 {
            println!("errors: {}", self.errors);
        }
    }
}
