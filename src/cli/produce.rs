//! `sluice produce`: one record per line of stdin, like `kcat -P`, over plain Kafka.
//!
//! A reader thread hands lines over a bounded channel; the main thread gathers them into one
//! request per partition leader, sent when [`REQUEST_RECORD_BYTES_MAX`] bytes of records are
//! waiting, `--linger-ms` after the first of them arrived, or at the end of stdin. Records go
//! to `-p`'s partition, else by the murmur2 hash of their key (Kafka's default partitioner),
//! else all unkeyed records of one request to one partition, the next request to the next
//! (starting from a random one).
//! Every refused record is reported and makes the command exit non-zero.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::io::{self, BufRead, Read};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use clap::Args;
use indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

use crate::cli::bench::batch::Codec;
use crate::cli::client::{check, error_name, topic_name, topic_with_leaders, Brokers, Client, TopicInfo};
use crate::cli::key_value;

const PRODUCE_VERSION: i16 = 9;
/// How long the broker may take to answer a produce (replication and flush included).
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Bytes of records gathered before a request is sent; well under the 1 MiB
/// `max.message.bytes` brokers default to, so a partition's batch fits.
const REQUEST_RECORD_BYTES_MAX: usize = 512 * 1024;
/// Longest line accepted; brokers refuse far shorter records by default.
const LINE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Lines the reader thread may have read ahead of the sender.
const LINES_QUEUED_MAX: usize = 1024;
/// What a record costs in a batch besides its key, value and headers (varints, attributes).
const RECORD_OVERHEAD_BYTES: usize = 24;

#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// A broker to start from.
    #[arg(long, short = 'b', default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    bootstrap: String,
    /// Topic to produce to; created if the broker auto-creates topics.
    #[arg(long, short = 't')]
    topic: String,
    /// Split each line into key and value at the first SEP (a line without it has no key).
    #[arg(short = 'k', long = "key-delimiter", value_name = "SEP")]
    key_delimiter: Option<String>,
    /// Partition to produce every record to (default: by key).
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Acknowledgements: all (-1), 1 or 0 (no answer, so no errors either).
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    acks: i16,
    /// A header added to every record, `name=value`; may be repeated.
    #[arg(short = 'H', long = "header", value_name = "NAME=VALUE", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// Compression of the batches.
    #[arg(short = 'z', long, value_enum, default_value_t = Codec::None)]
    compression: Codec,
    /// How long a line may wait for more before its request is sent (ms).
    #[arg(long, default_value_t = 100)]
    linger_ms: u64,
}

fn parse_acks(acks: &str) -> Result<i16, String> {
    match acks {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("acks must be all, -1, 0 or 1, not {acks:?}")),
    }
}

/// A record read from stdin, waiting to be sent.
struct Pending {
    line: u64,
    partition: i32,
    record: Record,
}

struct Producer {
    args: ProduceArgs,
    topic: TopicInfo,
    brokers: Brokers,
    headers: IndexMap<StrBytes, Option<Bytes>>,
    pending: Vec<Pending>,
    pending_bytes: usize,
    /// When the oldest pending record was read.
    first_pending_at: Option<Instant>,
    lines: u64,
    failed: u64,
    /// Where unkeyed records go: the partition at this position, moving on each request.
    unkeyed_turn: usize,
}

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap)?;
    let topic = topic_with_leaders(&mut client, &args.topic, true)?;
    if let Some(p) = args.partition {
        topic.partition(p)?;
    }
    let headers = args
        .headers
        .iter()
        .map(|(k, v)| (StrBytes::from_string(k.clone()), Some(Bytes::from(v.clone()))))
        .collect();
    let linger = Duration::from_millis(args.linger_ms);
    let mut producer = Producer {
        args,
        topic,
        brokers: Brokers::default(),
        headers,
        pending: Vec::new(),
        pending_bytes: 0,
        first_pending_at: None,
        lines: 0,
        failed: 0,
        // A random first partition, so short runs without keys do not all fill the first.
        unkeyed_turn: RandomState::new().hash_one(0) as usize,
    };

    let (sender, lines) = sync_channel(LINES_QUEUED_MAX);
    std::thread::spawn(move || read_lines(sender));
    loop {
        let received = match producer.first_pending_at {
            None => lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => lines.recv_timeout((at + linger).saturating_duration_since(Instant::now())),
        };
        match received {
            Ok(Ok(line)) => {
                producer.add(line);
                if producer.pending_bytes >= REQUEST_RECORD_BYTES_MAX {
                    producer.flush();
                }
            }
            Ok(Err(e)) => {
                producer.flush();
                return Err(e).with_context(|| format!("reading line {} of stdin", producer.lines + 1));
            }
            Err(RecvTimeoutError::Timeout) => producer.flush(),
            Err(RecvTimeoutError::Disconnected) => {
                producer.flush();
                break;
            }
        }
    }
    anyhow::ensure!(
        producer.failed == 0,
        "{} of {} records failed",
        producer.failed,
        producer.lines
    );
    Ok(())
}

/// Sends each line of stdin (without its `\n`) until the end of stdin or the first error.
fn read_lines(sender: SyncSender<io::Result<Vec<u8>>>) {
    let mut stdin = io::stdin().lock();
    loop {
        let mut line = Vec::new();
        let read = (&mut stdin)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line);
        let outcome = match read {
            Ok(0) => return,
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                Ok(line)
            }
            Ok(_) if line.len() > LINE_BYTES_MAX => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line is longer than {LINE_BYTES_MAX} bytes"),
            )),
            Ok(_) => Ok(line), // The last line, without a newline.
            Err(e) => Err(e),
        };
        let failed = outcome.is_err();
        if sender.send(outcome).is_err() || failed {
            return;
        }
    }
}

impl Producer {
    fn add(&mut self, mut line: Vec<u8>) {
        self.lines += 1;
        let key = match self.args.key_delimiter.as_deref().map(str::as_bytes) {
            Some(separator) if !separator.is_empty() => {
                match line.windows(separator.len()).position(|w| w == separator) {
                    Some(at) => {
                        let value = line.split_off(at + separator.len());
                        line.truncate(at);
                        Some(std::mem::replace(&mut line, value))
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let partition = self.partition_for(key.as_deref());
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: 0,
            timestamp: now_ms(),
            key: key.map(Bytes::from),
            value: Some(Bytes::from(line)),
            headers: self.headers.clone(),
        };
        let header_bytes: usize = self.args.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.pending_bytes += record.key.as_ref().map_or(0, Bytes::len)
            + record.value.as_ref().map_or(0, Bytes::len)
            + header_bytes
            + RECORD_OVERHEAD_BYTES;
        self.first_pending_at.get_or_insert_with(Instant::now);
        self.pending.push(Pending {
            line: self.lines,
            partition,
            record,
        });
    }

    fn partition_for(&self, key: Option<&[u8]>) -> i32 {
        if let Some(p) = self.args.partition {
            return p;
        }
        let partitions = &self.topic.partitions;
        let at = match key {
            Some(key) => (murmur2(key) & 0x7fff_ffff) as usize % partitions.len(),
            None => self.unkeyed_turn % partitions.len(),
        };
        partitions[at].index
    }

    /// Sends every pending record, one request per leader, and reports what failed.
    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        self.first_pending_at = None;
        self.unkeyed_turn = self.unkeyed_turn.wrapping_add(1);
        let mut by_partition: BTreeMap<i32, Vec<Pending>> = BTreeMap::new();
        for record in pending {
            by_partition.entry(record.partition).or_default().push(record);
        }
        let by_leader = match self.topic.by_leader(by_partition.keys().copied()) {
            Ok(by_leader) => by_leader,
            Err(e) => {
                let records = by_partition.values().map(Vec::len).sum::<usize>();
                self.fail(records, format_args!("{e:#}"));
                return;
            }
        };
        for (address, partitions) in by_leader {
            let batches: Vec<(i32, Vec<Pending>)> = partitions
                .iter()
                .map(|p| (*p, by_partition.remove(p).expect("grouped above")))
                .collect();
            if let Err(e) = self.send(&address, &batches) {
                let records = batches.iter().map(|(_, b)| b.len()).sum();
                self.fail(records, format_args!("producing to {address}: {e:#}"));
                self.brokers.forget(&address);
            }
        }
    }

    fn fail(&mut self, records: usize, why: std::fmt::Arguments<'_>) {
        self.failed += records as u64;
        eprintln!("sluice: {records} records failed: {why}");
    }

    /// One produce request to the leader at `address` with a batch per partition.
    fn send(&mut self, address: &str, batches: &[(i32, Vec<Pending>)]) -> anyhow::Result<()> {
        let options = RecordEncodeOptions {
            version: 2,
            compression: compression(self.args.compression),
        };
        let mut partition_data = Vec::with_capacity(batches.len());
        for (partition, records) in batches {
            // Offsets are the records' indexes in the batch; sequences run alongside from -1,
            // the base sequence of a producer without an id, so the encoder keeps them in one batch.
            let records: Vec<Record> = records
                .iter()
                .enumerate()
                .map(|(i, pending)| Record {
                    offset: i as i64,
                    sequence: i as i32 - 1,
                    ..pending.record.clone()
                })
                .collect();
            let mut batch = BytesMut::new();
            RecordBatchEncoder::encode(&mut batch, &records, &options)?;
            partition_data.push(
                PartitionProduceData::default()
                    .with_index(*partition)
                    .with_records(Some(batch.freeze())),
            );
        }
        let request = ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(self.args.acks)
            .with_timeout_ms(PRODUCE_TIMEOUT_MS)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&self.topic.name))
                .with_partition_data(partition_data)]);
        let client = self.brokers.get(address)?;
        if self.args.acks == 0 {
            return client.send(PRODUCE_VERSION, &request);
        }
        let response = client.call(PRODUCE_VERSION, &request)?;
        let mut answered: BTreeMap<i32, _> = response
            .responses
            .into_iter()
            .flat_map(|t| t.partition_responses)
            .map(|p| (p.index, p))
            .collect();
        for (partition, records) in batches {
            let name = format!("{}-{partition}", self.topic.name);
            let lines = format!("lines {} to {}", records[0].line, records[records.len() - 1].line);
            let Some(answer) = answered.remove(partition) else {
                self.fail(
                    records.len(),
                    format_args!("{name} ({lines}): no answer for the partition"),
                );
                continue;
            };
            if let Err(e) = check(answer.error_code, answer.error_message.as_ref(), &name) {
                self.fail(records.len(), format_args!("{e:#} ({lines})"));
                for refused in &answer.record_errors {
                    let line = usize::try_from(refused.batch_index)
                        .ok()
                        .and_then(|i| records.get(i))
                        .map_or_else(|| "?".to_string(), |r| r.line.to_string());
                    eprintln!(
                        "sluice:   line {line}: {} ({})",
                        refused.batch_index_error_message.as_ref().map_or("", |m| m.as_str()),
                        error_name(answer.error_code)
                    );
                }
            }
        }
        Ok(())
    }
}

fn compression(codec: Codec) -> Compression {
    match codec {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), which its default partitioner applies
/// to keys.
fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Vectors from Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 4] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
        ];
        for (key, hash) in cases {
            assert_eq!(murmur2(key), hash, "{}", String::from_utf8_lossy(key));
        }
    }
}
