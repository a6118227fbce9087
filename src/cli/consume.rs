//! `sluice consume`: prints a topic's records, like `kcat -C`, over plain Kafka.
//!
//! Partitions are fetched from their leaders (one request per leader, the partitions'
//! order rotated each time so a busy one cannot starve the others), at most
//! [`FETCH_BYTES_MAX`] per response; batches of every codec are decoded. With `-g` the
//! command is a member of a classic consumer group ([`member`]): it reads the partitions
//! assigned to it from the group's committed offsets (`-o` applies where there is none) and
//! commits what it printed when it rebalances and when it exits (`-e`, `-n`, SIGINT, SIGTERM).

mod format;
mod member;

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::constants::BATCH_DECOMPRESSED_BYTES_MAX;
use crate::kafka::record_validate::decompress_owned;

use crate::cli::client::{check, list_offsets, topic_name, topic_with_leaders, Brokers, Client, TopicInfo};
use crate::record::{BatchHeader, HEADER_BYTES};
use format::{Format, Place};
use member::{Beat, Member};

const FETCH_VERSION: i16 = 12;
/// Longest a fetch waits at the broker for new records; heartbeats and signals are looked at
/// between fetches, so this bounds how late they are.
const FETCH_WAIT_MS: i32 = 500;
/// Bytes of records one fetch response may hold (the first batch may exceed it, as in Kafka).
const FETCH_BYTES_MAX: i32 = 8 * 1024 * 1024;
/// Bytes of records one partition may contribute to a response.
const FETCH_PARTITION_BYTES_MAX: i32 = 1024 * 1024;
/// Pause after a retriable partition error (a leader moving) before fetching again.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// A broker to start from.
    #[arg(long, short = 'b', default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    bootstrap: String,
    /// Topic to read.
    #[arg(long, short = 't')]
    topic: String,
    /// Read only this partition (not with -g).
    #[arg(short = 'p', long, conflicts_with = "group")]
    partition: Option<i32>,
    /// Where to start: beginning, end, an offset, or -N (N records before each partition's end).
    /// With -g, only where the group has no committed offset.
    #[arg(short = 'o', long, default_value = "beginning", value_parser = parse_start, allow_hyphen_values = true)]
    offset: Start,
    /// Consume as a member of this consumer group, committing what was printed.
    #[arg(short = 'g', long)]
    group: Option<String>,
    /// Exit once every partition read has reached its end.
    #[arg(short = 'e', long)]
    exit_at_end: bool,
    /// Exit after printing this many records.
    #[arg(short = 'n', long)]
    count: Option<u64>,
    /// Output format: %k key, %s value, %t topic, %p partition, %o offset, %T timestamp,
    /// %h headers, %K/%S key/value length, %%; escapes \n \t \r \\ (default "%s\n").
    #[arg(short = 'f', long)]
    format: Option<String>,
}

#[derive(Clone, Copy, Debug)]
enum Start {
    Beginning,
    End,
    At(i64),
    /// This many records before the end.
    BeforeEnd(i64),
}

fn parse_start(start: &str) -> Result<Start, String> {
    match start {
        "beginning" => Ok(Start::Beginning),
        "end" => Ok(Start::End),
        _ => match start.parse::<i64>() {
            Ok(n) if n < 0 => Ok(Start::BeforeEnd(n.saturating_neg())),
            Ok(n) => Ok(Start::At(n)),
            Err(_) => Err(format!("expected beginning, end, an offset or -N, got {start:?}")),
        },
    }
}

struct Consumer {
    bootstrap: String,
    topic: TopicInfo,
    brokers: Brokers,
    start: Start,
    format: Format,
    out: BufWriter<Stdout>,
    /// Each partition read and the next offset to read from it.
    positions: BTreeMap<i32, i64>,
    /// Each partition's high watermark, as last seen.
    ends: BTreeMap<i32, i64>,
    /// Partitions printed from since the last commit.
    consumed: BTreeMap<i32, i64>,
    printed: u64,
    count: Option<u64>,
    fetches: usize,
    /// Set when stdout is closed (a pipe to `head`): a reason to stop, not an error.
    stdout_closed: bool,
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let format = match &args.format {
        Some(format) => Format::parse(format)?,
        None => Format::values(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("handling signals")?;
    }
    let mut client = Client::connect(&args.bootstrap)?;
    let topic = topic_with_leaders(&mut client, &args.topic, false)?;
    if let Some(p) = args.partition {
        topic.partition(p)?;
    }
    let mut consumer = Consumer {
        bootstrap: args.bootstrap.clone(),
        topic,
        brokers: Brokers::default(),
        start: args.offset,
        format,
        out: BufWriter::new(io::stdout()),
        positions: BTreeMap::new(),
        ends: BTreeMap::new(),
        consumed: BTreeMap::new(),
        printed: 0,
        count: args.count,
        fetches: 0,
        stdout_closed: false,
    };
    let mut member = match &args.group {
        Some(group) => {
            let mut member = Member::new(&args.bootstrap, group, &args.topic)?;
            let assigned = member.join()?;
            let committed = member.committed(&assigned)?;
            consumer.start_at(&assigned, &committed)?;
            Some(member)
        }
        None => {
            let partitions = args.partition.map_or_else(|| consumer.topic.indexes(), |p| vec![p]);
            consumer.start_at(&partitions, &BTreeMap::new())?;
            None
        }
    };

    let outcome = (|| -> anyhow::Result<()> {
        while !stop.load(Ordering::Relaxed) && !consumer.done(args.exit_at_end) {
            if let Some(member) = member.as_mut() {
                let beat = member.heartbeat_if_due()?;
                if !matches!(beat, Beat::Stable) {
                    if matches!(beat, Beat::Rebalance) {
                        member.commit(&std::mem::take(&mut consumer.consumed))?;
                    }
                    consumer.consumed.clear();
                    let assigned = member.join()?;
                    let committed = member.committed(&assigned)?;
                    consumer.start_at(&assigned, &committed)?;
                }
            }
            consumer.fetch()?;
        }
        Ok(())
    })();
    let flushed = consumer.out.flush();
    if let Some(member) = member.as_mut() {
        // What was printed is committed even when reading failed.
        let committed = member.commit(&consumer.consumed);
        let left = member.leave();
        outcome.and(committed).and(left)?;
    } else {
        outcome?;
    }
    match flushed {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

impl Consumer {
    /// Reads `partitions` from now on, each from its committed offset or else where `-o` says,
    /// within the log.
    fn start_at(&mut self, partitions: &[i32], committed: &BTreeMap<i32, i64>) -> anyhow::Result<()> {
        let starts = list_offsets(&mut self.brokers, &self.topic, partitions, -2)?;
        self.ends = list_offsets(&mut self.brokers, &self.topic, partitions, -1)?;
        self.positions.clear();
        for p in partitions {
            let (start, end) = (starts[p], self.ends[p]);
            let position = match (committed.get(p), self.start) {
                (Some(offset), _) => *offset,
                (None, Start::Beginning) => start,
                (None, Start::End) => end,
                (None, Start::At(offset)) => offset,
                (None, Start::BeforeEnd(n)) => end.saturating_sub(n),
            };
            self.positions.insert(*p, position.clamp(start, end.max(start)));
        }
        Ok(())
    }

    fn done(&self, exit_at_end: bool) -> bool {
        let counted = self.count.is_some_and(|count| self.printed >= count);
        let at_end = exit_at_end
            && self
                .positions
                .iter()
                .all(|(p, position)| self.ends.get(p).is_some_and(|end| position >= end));
        counted || at_end || self.stdout_closed
    }

    /// One fetch from each leader, printing what arrives.
    fn fetch(&mut self) -> anyhow::Result<()> {
        if self.positions.is_empty() {
            // Nothing assigned to this group member: wait for a rebalance to bring partitions.
            std::thread::sleep(Duration::from_millis(FETCH_WAIT_MS as u64));
            return Ok(());
        }
        self.fetches += 1;
        let by_leader = self.topic.by_leader(self.positions.keys().copied())?;
        for (address, mut partitions) in by_leader {
            let turn = self.fetches % partitions.len();
            partitions.rotate_left(turn);
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(FETCH_WAIT_MS)
                .with_min_bytes(1)
                .with_max_bytes(FETCH_BYTES_MAX)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic_name(&self.topic.name))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(*p)
                                    .with_current_leader_epoch(-1)
                                    .with_fetch_offset(self.positions[p])
                                    .with_log_start_offset(-1)
                                    .with_partition_max_bytes(FETCH_PARTITION_BYTES_MAX)
                            })
                            .collect(),
                    )]);
            let response = match self.brokers.get(&address)?.call(FETCH_VERSION, &request) {
                Ok(response) => response,
                Err(e) => {
                    self.brokers.forget(&address);
                    return Err(e);
                }
            };
            check(response.error_code, None, format_args!("fetching from {address}"))?;
            for data in response.responses.into_iter().flat_map(|t| t.partitions) {
                let p = data.partition_index;
                let name = format!("{}-{p}", self.topic.name);
                match ResponseError::try_from_code(data.error_code) {
                    None => {}
                    Some(ResponseError::OffsetOutOfRange) => {
                        // The log moved (retention, deletion): start again where it now begins.
                        let start = list_offsets(&mut self.brokers, &self.topic, &[p], -2)?[&p];
                        eprintln!(
                            "sluice: {name}: offset {} is out of range, reading from {start}",
                            self.positions[&p]
                        );
                        self.positions.insert(p, start);
                        continue;
                    }
                    Some(error) if error.is_retriable() => {
                        eprintln!("sluice: {name}: {error}; looking up its leader again");
                        std::thread::sleep(RETRY_BACKOFF);
                        let mut client = Client::connect(&self.bootstrap)?;
                        self.topic = topic_with_leaders(&mut client, &self.topic.name, false)?;
                        return Ok(());
                    }
                    Some(_) => check(data.error_code, None, &name)?,
                }
                self.ends.insert(p, data.high_watermark);
                if let Some(records) = data.records {
                    self.print(p, &records)
                        .with_context(|| format!("reading {name} at offset {}", self.positions[&p]))?;
                }
                if self.done(false) {
                    break;
                }
            }
            self.out.flush().or_else(|e| self.closed(e))?;
        }
        Ok(())
    }

    /// Prints the records of `records` from the partition's position on, as far as `-n`
    /// allows, and moves the position past them. A batch cut off at the end is left for
    /// the next fetch.
    fn print(&mut self, partition: i32, records: &Bytes) -> anyhow::Result<()> {
        let mut at = 0;
        while at + HEADER_BYTES <= records.len() {
            let header = BatchHeader::new(&records[at..]).expect("length checked");
            let Some(total) = header.total_bytes().filter(|t| at + t <= records.len()) else {
                break;
            };
            let mut batch = records.slice(at..at + total);
            at += total;
            let last = header.last_offset().0;
            if last < self.positions[&partition] {
                continue;
            }
            if !header.is_control() {
                // Decompressed within the broker's own bound: a hostile broker's bomb costs at
                // most that.
                let bounded = |payload: &mut Bytes, compression: Compression| {
                    let codec = match compression {
                        Compression::Gzip => 1,
                        Compression::Snappy => 2,
                        Compression::Lz4 => 3,
                        Compression::Zstd => 4,
                        Compression::None => return Ok(payload.clone()),
                    };
                    decompress_owned(codec, payload, BATCH_DECOMPRESSED_BYTES_MAX)
                        .map(Bytes::from)
                        .map_err(|e| anyhow::anyhow!("{e}"))
                };
                let set = RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(bounded))
                    .with_context(|| format!("decoding the batch at offset {}", header.base_offset().0))?;
                for record in &set.records {
                    if record.offset < self.positions[&partition] {
                        continue;
                    }
                    if self.count.is_some_and(|count| self.printed >= count) || self.stdout_closed {
                        return Ok(());
                    }
                    let timestamp = if header.is_log_append_time() {
                        header.max_timestamp()
                    } else {
                        record.timestamp
                    };
                    let place = Place {
                        topic: &self.topic.name,
                        partition,
                        timestamp,
                    };
                    if let Err(e) = self.format.write(&mut self.out, &place, record) {
                        return self.closed(e);
                    }
                    self.printed += 1;
                    self.positions.insert(partition, record.offset + 1);
                    self.consumed.insert(partition, record.offset + 1);
                }
            }
            // Past the batch's last offset, which compaction or a control batch may leave
            // without a record to print.
            self.positions.insert(partition, last + 1);
        }
        Ok(())
    }

    /// A closed stdout ends the run quietly; any other write error is an error.
    fn closed(&mut self, e: io::Error) -> anyhow::Result<()> {
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.stdout_closed = true;
            return Ok(());
        }
        Err(e).context("writing to stdout")
    }
}
