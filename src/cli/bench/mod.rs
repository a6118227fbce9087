//! `sluice bench`: a load generator that speaks plain Kafka, so the same run can be pointed at
//! Sluice, Kafka or Redpanda.
//!
//! - `produce`: producers build batches themselves ([`batch`]) and pipeline up to
//!   `--in-flight` produce requests per connection; produce-to-ack latency per record.
//! - `consume`: consumers fetch every partition from its start; throughput.
//! - `e2e`: consumers from the end plus producers at `--rate`; produce-to-consume latency,
//!   from the creation time each record carries in its value.
//!
//! Latencies go to HdrHistograms in microseconds. A progress line goes to stderr each second;
//! at the end a table, or with `--json` one JSON object on stdout.

pub mod batch;
mod load;
mod report;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::cli::bench::batch::Codec;
use crate::cli::bench::load::Cluster;
use crate::cli::bench::report::Stats;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Produce,
    Consume,
    E2e,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    mode: Mode,
    /// A broker to start from.
    #[arg(long, short = 'b', default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    bootstrap: String,
    /// Topic to use; created with `--partitions` if missing (except by `consume`).
    #[arg(long, default_value = "sluice-bench")]
    topic: String,
    /// Partitions of a topic the bench creates.
    #[arg(long, default_value_t = 2)]
    partitions: i32,
    /// Bytes of each record's value (at least 8: the creation time).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Records to produce (or consume); the run also ends after `--duration`.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Longest the run may take, in seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Acknowledgements asked of the broker: 0, 1 or -1 (all).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    acks: i16,
    /// Bytes of records per batch (Kafka's `batch.size`).
    #[arg(long, default_value_t = 16384)]
    batch_size: usize,
    /// With `--rate`, how long a batch waits for more records (ms; Kafka's `linger.ms`).
    #[arg(long, default_value_t = 1)]
    linger_ms: u64,
    /// Produce requests in flight per connection.
    #[arg(long, default_value_t = 5)]
    in_flight: usize,
    /// Compression of the batches.
    #[arg(long, value_enum, default_value_t = Codec::None)]
    compression: Codec,
    /// Target records per second over all producers (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Producer threads.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Consumer threads.
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Bytes a fetch asks for per partition.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    fetch_size: i32,
    /// CPUs to pin the bench's threads to, in turn (e.g. `1` or `2,3`).
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// Print the result as one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Milliseconds between progress lines on stderr; each line's latencies are those of the
    /// records completed in its interval.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    progress_ms: u64,
}

impl BenchArgs {
    fn batch_records(&self) -> usize {
        (self.batch_size / self.record_size.max(batch::STAMP_BYTES)).max(1)
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!((-1..=1).contains(&args.acks), "--acks must be -1, 0 or 1");
    anyhow::ensure!(args.in_flight >= 1, "--in-flight must be at least 1");
    anyhow::ensure!(
        args.producers >= 1 && args.consumers >= 1,
        "need at least one producer and consumer"
    );
    // A consume run reads what is there: it must not create an empty topic to read.
    let create_with = (args.mode != Mode::Consume).then_some(args.partitions);
    let cluster = Cluster::discover(&args.bootstrap, &args.topic, create_with)
        .with_context(|| format!("preparing topic {}", args.topic))?;
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let started = Instant::now();
    let progress = report::spawn_progress(
        args.mode,
        stats.clone(),
        stop.clone(),
        Duration::from_millis(args.progress_ms),
    );
    let cpus = Arc::new(args.cpus.clone());

    let outcome = match args.mode {
        Mode::Produce => load::produce(&args, &cluster, &stats, deadline, &cpus, 0),
        Mode::Consume => {
            let consumers = load::start_consumers(&args, &cluster, &stats, deadline, &cpus, false, &stop)?;
            load::join_all(consumers)
        }
        Mode::E2e => {
            let consumers = load::start_consumers(&args, &cluster, &stats, deadline, &cpus, true, &stop)?;
            let produced = load::produce(&args, &cluster, &stats, deadline, &cpus, args.consumers);
            // Consumers stop once they have seen everything produced, or at the deadline.
            stats.set_expected(stats.produced());
            let consumed = load::join_all(consumers);
            produced.and(consumed)
        }
    };
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = progress.join();
    outcome?;
    let summary = report::Summary::new(&args, &stats, elapsed);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        summary.print_table();
    }
    anyhow::ensure!(
        summary.errors == 0,
        "{} requests failed; the first: {}",
        summary.errors,
        stats.first_error().unwrap_or_default()
    );
    Ok(())
}
