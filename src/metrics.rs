//! Per-shard metrics in Prometheus text format.
//!
//! Each shard counts in its own [`ShardMetrics`]: plain `Cell`s, no atomics, touched only by
//! the shard's thread. A scrape asks every shard for a [`Snapshot`] over the mesh and renders
//! them together, each sample labelled with its shard.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Kafka API keys counted per API (keys at or above it are counted under the last slot).
pub const API_KEYS: usize = 80;

/// Upper bounds (µs) of the latency histogram buckets; +Inf follows.
const LATENCY_BOUNDS_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];
/// Upper bounds of the records-per-flush buckets.
const FLUSH_RECORD_BOUNDS: &[u64] = &[1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];
/// Upper bounds (ns) of the produce-stage buckets: stages take from under a microsecond
/// (decode) to milliseconds (a flush).
const STAGE_BOUNDS_NS: &[u64] = &[
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Where a produce request's time goes, stage by stage, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// From the frame's length to its last byte arriving.
    Read,
    /// Header and body decoded.
    Decode,
    /// Batches validated, routed to their partitions' owner shards and queued there (the hop
    /// included).
    Route,
    /// Queued behind the partition's write in flight.
    WriteWait,
    /// Offsets assigned, copied into the direct-I/O buffer and written.
    Write,
    /// Written until durable: waiting for the flush in flight, then the one covering it.
    FlushWait,
    /// Every partition answered until the connection's writer takes the response (it writes
    /// responses in request order).
    ResponseWait,
    /// The response written to the socket.
    ResponseWrite,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Read,
        Stage::Decode,
        Stage::Route,
        Stage::WriteWait,
        Stage::Write,
        Stage::FlushWait,
        Stage::ResponseWait,
        Stage::ResponseWrite,
    ];

    fn label(self) -> &'static str {
        match self {
            Stage::Read => "stage=\"read\"",
            Stage::Decode => "stage=\"decode\"",
            Stage::Route => "stage=\"route\"",
            Stage::WriteWait => "stage=\"write_wait\"",
            Stage::Write => "stage=\"write\"",
            Stage::FlushWait => "stage=\"flush_wait\"",
            Stage::ResponseWait => "stage=\"response_wait\"",
            Stage::ResponseWrite => "stage=\"response_write\"",
        }
    }
}

/// A fixed-bucket histogram of one shard.
pub struct Histogram {
    bounds: &'static [u64],
    buckets: Vec<Cell<u64>>,
    sum: Cell<u64>,
}

impl Histogram {
    fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| Cell::new(0)).collect(),
            sum: Cell::new(0),
        }
    }

    pub fn observe(&self, value: u64) {
        let at = self.bounds.partition_point(|&bound| bound < value);
        let bucket = &self.buckets[at];
        bucket.set(bucket.get() + 1);
        self.sum.set(self.sum.get().saturating_add(value));
    }

    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            buckets: self.buckets.iter().map(Cell::get).collect(),
            sum: self.sum.get(),
        }
    }
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

/// One shard's counters.
pub struct ShardMetrics {
    requests: Vec<Cell<u64>>,
    request_errors: Vec<Cell<u64>>,
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    pub produce_latency_us: Histogram,
    pub fetch_latency_us: Histogram,
    pub flush_latency_us: Histogram,
    pub flush_records: Histogram,
    /// Produce stages, indexed by [`Stage`]; each is counted on the shard where it ran.
    stages: Vec<Histogram>,
    pub cache_hits: Cell<u64>,
    pub cache_misses: Cell<u64>,
    pub hops: Cell<u64>,
    pub connections_accepted: Cell<u64>,
    pub connections_open: Cell<u64>,
    /// Connections closed because of what the client sent (malformed, refused, too large).
    pub connection_errors: Cell<u64>,
    /// Connections closed for idling past `connections.max.idle.ms` or for a frame that did
    /// not arrive within `request.frame.timeout.ms`.
    pub connections_timed_out: Cell<u64>,
    /// Authentications refused (a wrong password, an unknown user, a malformed exchange, a
    /// request before authenticating, a failed TLS handshake), by API key ([`NO_API`] for a
    /// TLS handshake) and listener.
    authentication_failures: RefCell<BTreeMap<(i16, String), u64>>,
    /// Requests (or parts of them) the authorizer refused, by API key and listener.
    authorization_denials: RefCell<BTreeMap<(i16, String), u64>>,
    /// Frame reads that had to wait for the shard's `queued.max.request.bytes` budget.
    pub request_budget_waits: Cell<u64>,
    /// Response sends that found the socket's buffer full and waited for the client to read.
    pub response_send_waits: Cell<u64>,
    io_reads: Cell<u64>,
    io_read_bytes: Cell<u64>,
    io_writes: Cell<u64>,
    io_write_bytes: Cell<u64>,
    /// Followers this shard, leading, took out of an ISR and put back into one.
    isr_shrinks: Cell<u64>,
    isr_expands: Cell<u64>,
}

impl Default for ShardMetrics {
    fn default() -> ShardMetrics {
        ShardMetrics {
            requests: (0..API_KEYS).map(|_| Cell::new(0)).collect(),
            request_errors: (0..API_KEYS).map(|_| Cell::new(0)).collect(),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            produce_latency_us: Histogram::new(LATENCY_BOUNDS_US),
            fetch_latency_us: Histogram::new(LATENCY_BOUNDS_US),
            flush_latency_us: Histogram::new(LATENCY_BOUNDS_US),
            flush_records: Histogram::new(FLUSH_RECORD_BOUNDS),
            stages: Stage::ALL.iter().map(|_| Histogram::new(STAGE_BOUNDS_NS)).collect(),
            cache_hits: Cell::new(0),
            cache_misses: Cell::new(0),
            hops: Cell::new(0),
            connections_accepted: Cell::new(0),
            connections_open: Cell::new(0),
            connection_errors: Cell::new(0),
            authentication_failures: RefCell::default(),
            authorization_denials: RefCell::default(),
            connections_timed_out: Cell::new(0),
            request_budget_waits: Cell::new(0),
            response_send_waits: Cell::new(0),
            io_reads: Cell::new(0),
            io_read_bytes: Cell::new(0),
            io_writes: Cell::new(0),
            io_write_bytes: Cell::new(0),
            isr_shrinks: Cell::new(0),
            isr_expands: Cell::new(0),
        }
    }
}

fn slot(api_key: i16) -> usize {
    usize::try_from(api_key).unwrap_or(0).min(API_KEYS - 1)
}

impl ShardMetrics {
    /// Counts `elapsed` for one produce request's `stage`.
    pub fn stage(&self, stage: Stage, elapsed: std::time::Duration) {
        self.stages[stage as usize].observe(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn request(&self, api_key: i16) {
        bump(&self.requests[slot(api_key)], 1);
    }

    /// A request that failed as a whole (refused, malformed) or had a partition fail.
    pub fn request_error(&self, api_key: i16) {
        bump(&self.request_errors[slot(api_key)], 1);
    }

    /// An authentication refused on `listener` during `api_key` ([`NO_API`]: TLS).
    pub fn authentication_failed(&self, api_key: i16, listener: &str) {
        count_labelled(&self.authentication_failures, api_key, listener);
    }

    /// A request (or a partition, topic or group in it) the authorizer refused.
    pub fn authorization_denied(&self, api_key: i16, listener: &str) {
        count_labelled(&self.authorization_denials, api_key, listener);
    }

    pub fn add(cell: &Cell<u64>, by: u64) {
        bump(cell, by);
    }

    /// An ISR change this shard's leader made: a shrink or an expansion.
    pub fn isr_changed(&self, shrinking: bool) {
        bump(
            if shrinking {
                &self.isr_shrinks
            } else {
                &self.isr_expands
            },
            1,
        );
    }

    pub fn connection_closed(&self) {
        self.connections_open.set(self.connections_open.get().saturating_sub(1));
    }

    /// Folds in the reactor's file I/O counts since the last call (glommio resets them).
    /// Runs on the shard's executor, before [`ShardMetrics::snapshot`].
    pub fn gather_io(&self) {
        let io = crate::runtime::io_counts();
        bump(&self.io_reads, io.reads);
        bump(&self.io_read_bytes, io.read_bytes);
        bump(&self.io_writes, io.writes);
        bump(&self.io_write_bytes, io.write_bytes);
    }

    /// Everything counted so far, with the gauges the shard knows, to send to the shard
    /// rendering a scrape.
    pub fn snapshot(&self, shard: usize, gauges: ShardGauges) -> Snapshot {
        let per_api = |cells: &[Cell<u64>]| {
            cells
                .iter()
                .enumerate()
                .filter(|(_, c)| c.get() > 0)
                .map(|(key, c)| (key as i16, c.get()))
                .collect()
        };
        let labelled = |counts: &RefCell<BTreeMap<(i16, String), u64>>| {
            counts
                .borrow()
                .iter()
                .map(|((key, listener), n)| (*key, listener.clone(), *n))
                .collect()
        };
        Snapshot {
            shard,
            requests: per_api(&self.requests),
            request_errors: per_api(&self.request_errors),
            per_listener: vec![
                (
                    "authentication_failures_total",
                    "Authentications refused, by API (none: a TLS handshake) and listener.",
                    labelled(&self.authentication_failures),
                ),
                (
                    "authorization_denials_total",
                    "Requests, or topics, partitions or groups in them, the authorizer refused, by API and listener.",
                    labelled(&self.authorization_denials),
                ),
            ],
            counters: vec![
                (
                    "bytes_received_total",
                    "Request bytes read from clients.",
                    self.bytes_in.get(),
                ),
                (
                    "bytes_sent_total",
                    "Response bytes written to clients.",
                    self.bytes_out.get(),
                ),
                (
                    "cache_hits_total",
                    "Reads served from the batch cache.",
                    self.cache_hits.get(),
                ),
                (
                    "cache_misses_total",
                    "Reads that went to disk.",
                    self.cache_misses.get(),
                ),
                ("cross_shard_hops_total", "Jobs sent to another shard.", self.hops.get()),
                (
                    "isr_shrinks_total",
                    "Followers taken out of an ISR by this shard's leaders.",
                    self.isr_shrinks.get(),
                ),
                (
                    "isr_expands_total",
                    "Followers put back into an ISR by this shard's leaders.",
                    self.isr_expands.get(),
                ),
                (
                    "connections_accepted_total",
                    "Client connections accepted.",
                    self.connections_accepted.get(),
                ),
                (
                    "connection_errors_total",
                    "Connections closed for what the client sent.",
                    self.connection_errors.get(),
                ),
                (
                    "connections_timed_out_total",
                    "Connections closed idle or with a frame that stopped arriving.",
                    self.connections_timed_out.get(),
                ),
                (
                    "request_budget_waits_total",
                    "Frame reads that waited for the shard's request byte budget.",
                    self.request_budget_waits.get(),
                ),
                (
                    "response_send_waits_total",
                    "Response sends that found the socket buffer full and waited for the client.",
                    self.response_send_waits.get(),
                ),
                (
                    "io_file_reads_total",
                    "File reads submitted to the shard's io_uring rings.",
                    self.io_reads.get(),
                ),
                (
                    "io_file_read_bytes_total",
                    "Bytes read from files.",
                    self.io_read_bytes.get(),
                ),
                (
                    "io_file_writes_total",
                    "File writes submitted to the shard's io_uring rings.",
                    self.io_writes.get(),
                ),
                (
                    "io_file_write_bytes_total",
                    "Bytes written to files.",
                    self.io_write_bytes.get(),
                ),
            ],
            gauges: vec![
                ("connections", "Open client connections.", self.connections_open.get()),
                (
                    "partitions",
                    "Partitions this shard owns and serves.",
                    gauges.partitions,
                ),
                (
                    "leader_partitions",
                    "Partitions this shard holds that this broker leads.",
                    gauges.leading,
                ),
                (
                    "under_replicated_partitions",
                    "Partitions this shard leads with fewer replicas in sync than assigned.",
                    gauges.under_replicated,
                ),
                (
                    "offline_partitions",
                    "Partitions this shard holds a replica of that have no leader, or that it refuses (corrupt).",
                    gauges.offline,
                ),
                (
                    "follower_lag_records_max",
                    "The most records any follower of a partition this shard leads is behind the log end.",
                    gauges.follower_lag_max,
                ),
                (
                    "controller_active",
                    "1 while this node is the cluster's active controller (a single node always is).",
                    gauges.controller_active,
                ),
                (
                    "broker_fenced",
                    "1 while the controller has this broker fenced (it leads and follows nothing).",
                    gauges.fenced,
                ),
            ],
            histograms: [
                (
                    "produce_latency_microseconds",
                    "Produce requests from decode to response, acks included.",
                    "",
                    self.produce_latency_us.snapshot(),
                ),
                (
                    "fetch_latency_microseconds",
                    "Fetch requests from decode to response, long-poll waits included.",
                    "",
                    self.fetch_latency_us.snapshot(),
                ),
                (
                    "flush_latency_microseconds",
                    "fdatasync of a partition's active segment.",
                    "",
                    self.flush_latency_us.snapshot(),
                ),
                (
                    "flush_records",
                    "Records made durable by one flush.",
                    "",
                    self.flush_records.snapshot(),
                ),
            ]
            .into_iter()
            .chain(Stage::ALL.iter().map(|&stage| {
                (
                    "produce_stage_nanoseconds",
                    "Produce requests stage by stage: read, decode, route, write_wait, write, flush_wait (acks 1 and all), \
                     response_wait and response_write (both but acks 0); each counted on the shard it ran on.",
                    stage.label(),
                    self.stages[stage as usize].snapshot(),
                )
            }))
            .collect(),
        }
    }
}

pub struct HistogramSnapshot {
    bounds: &'static [u64],
    buckets: Vec<u64>,
    sum: u64,
}

/// Counts by API key and listener.
type PerListener = Vec<(i16, String, u64)>;

/// One shard's metrics as plain values.
pub struct Snapshot {
    shard: usize,
    requests: Vec<(i16, u64)>,
    request_errors: Vec<(i16, u64)>,
    /// Name, help, and counts by API key and listener.
    per_listener: Vec<(&'static str, &'static str, PerListener)>,
    counters: Vec<(&'static str, &'static str, u64)>,
    gauges: Vec<(&'static str, &'static str, u64)>,
    /// Name, help, extra labels (`key="value"` or empty), values.
    histograms: Vec<(&'static str, &'static str, &'static str, HistogramSnapshot)>,
}

/// The API key label of a count made outside any request (a TLS handshake).
pub const NO_API: i16 = -1;

fn count_labelled(counts: &RefCell<BTreeMap<(i16, String), u64>>, api_key: i16, listener: &str) {
    *counts.borrow_mut().entry((api_key, listener.to_string())).or_insert(0) += 1;
}

fn api_name(key: i16) -> String {
    if key == NO_API {
        return "none".to_string();
    }
    kafka_protocol::messages::ApiKey::try_from(key).map_or_else(|_| format!("key{key}"), |api| format!("{api:?}"))
}

/// The gauges a shard reads off its state for a scrape.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShardGauges {
    pub partitions: u64,
    pub leading: u64,
    pub under_replicated: u64,
    pub offline: u64,
    pub follower_lag_max: u64,
    pub controller_active: u64,
    pub fenced: u64,
}

/// Prometheus text exposition of every shard's snapshot, families grouped.
pub fn render(snapshots: &[Snapshot]) -> String {
    let mut out = String::new();
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP sluice_{name} {help}\n# TYPE sluice_{name} {kind}");
    };
    for (name, help, pick) in [
        (
            "requests_total",
            "Requests handled, by API.",
            (|s: &Snapshot| &s.requests) as fn(&Snapshot) -> &Vec<(i16, u64)>,
        ),
        (
            "request_errors_total",
            "Requests refused or answered with an error, by API.",
            |s: &Snapshot| &s.request_errors,
        ),
    ] {
        family(&mut out, name, "counter", help);
        for snapshot in snapshots {
            for (key, value) in pick(snapshot) {
                let _ = writeln!(
                    out,
                    "sluice_{name}{{shard=\"{}\",api=\"{}\"}} {value}",
                    snapshot.shard,
                    api_name(*key)
                );
            }
        }
    }
    let Some(first) = snapshots.first() else {
        return out;
    };
    for (i, (name, help, _)) in first.per_listener.iter().enumerate() {
        family(&mut out, name, "counter", help);
        for snapshot in snapshots {
            for (key, listener, value) in &snapshot.per_listener[i].2 {
                let _ = writeln!(
                    out,
                    "sluice_{name}{{shard=\"{}\",api=\"{}\",listener=\"{listener}\"}} {value}",
                    snapshot.shard,
                    api_name(*key)
                );
            }
        }
    }
    for (i, (name, help, _)) in first.counters.iter().enumerate() {
        family(&mut out, name, "counter", help);
        for snapshot in snapshots {
            let _ = writeln!(
                out,
                "sluice_{name}{{shard=\"{}\"}} {}",
                snapshot.shard, snapshot.counters[i].2
            );
        }
    }
    for (i, (name, help, _)) in first.gauges.iter().enumerate() {
        family(&mut out, name, "gauge", help);
        for snapshot in snapshots {
            let _ = writeln!(
                out,
                "sluice_{name}{{shard=\"{}\"}} {}",
                snapshot.shard, snapshot.gauges[i].2
            );
        }
    }
    for (i, (name, help, labels, _)) in first.histograms.iter().enumerate() {
        if i == 0 || first.histograms[i - 1].0 != *name {
            family(&mut out, name, "histogram", help);
        }
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!(",{labels}")
        };
        for snapshot in snapshots {
            let histogram = &snapshot.histograms[i].3;
            let shard = snapshot.shard;
            let mut cumulative = 0;
            for (bucket, count) in histogram.buckets.iter().enumerate() {
                cumulative += count;
                let le = histogram
                    .bounds
                    .get(bucket)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "sluice_{name}_bucket{{shard=\"{shard}\"{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(out, "sluice_{name}_sum{{shard=\"{shard}\"{labels}}} {}", histogram.sum);
            let _ = writeln!(out, "sluice_{name}_count{{shard=\"{shard}\"{labels}}} {cumulative}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(partitions: u64) -> ShardGauges {
        ShardGauges {
            partitions,
            ..ShardGauges::default()
        }
    }

    #[test]
    fn histograms_bucket_and_render_cumulatively() {
        let metrics = ShardMetrics::default();
        for value in [10, 60, 60, 2_000_000] {
            metrics.produce_latency_us.observe(value);
        }
        metrics.request(0);
        metrics.request(0);
        metrics.request(1);
        ShardMetrics::add(&metrics.bytes_in, 42);
        let text = render(&[
            metrics.snapshot(0, partitions(3)),
            ShardMetrics::default().snapshot(1, partitions(0)),
        ]);
        assert!(
            text.contains("sluice_requests_total{shard=\"0\",api=\"Produce\"} 2"),
            "{text}"
        );
        assert!(text.contains("sluice_requests_total{shard=\"0\",api=\"Fetch\"} 1"));
        assert!(text.contains("sluice_bytes_received_total{shard=\"0\"} 42"));
        assert!(text.contains("sluice_bytes_received_total{shard=\"1\"} 0"));
        assert!(text.contains("sluice_produce_latency_microseconds_bucket{shard=\"0\",le=\"50\"} 1"));
        assert!(text.contains("sluice_produce_latency_microseconds_bucket{shard=\"0\",le=\"100\"} 3"));
        assert!(text.contains("sluice_produce_latency_microseconds_bucket{shard=\"0\",le=\"+Inf\"} 4"));
        assert!(text.contains("sluice_produce_latency_microseconds_count{shard=\"0\"} 4"));
        assert!(text.contains("sluice_partitions{shard=\"0\"} 3"));
        assert_eq!(text.matches("# TYPE sluice_bytes_received_total counter").count(), 1);
        metrics.stage(Stage::Decode, std::time::Duration::from_nanos(1_500));
        let text = render(&[metrics.snapshot(0, partitions(3))]);
        assert!(
            text.contains("sluice_produce_stage_nanoseconds_bucket{shard=\"0\",stage=\"decode\",le=\"2500\"} 1"),
            "{text}"
        );
        assert!(text.contains("sluice_produce_stage_nanoseconds_count{shard=\"0\",stage=\"read\"} 0"));
        assert_eq!(
            text.matches("# TYPE sluice_produce_stage_nanoseconds histogram")
                .count(),
            1
        );
    }
}
