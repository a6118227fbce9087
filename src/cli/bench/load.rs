//! The bench's producers and consumers: plain Kafka over blocking sockets, one thread each,
//! plus a reader thread per producer connection so produce requests are pipelined.

use std::collections::HashMap;
use std::io::{Read, Write};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, FetchRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
    ProduceResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::cli::bench::batch::{read_stamps, BatchBuilder};
use crate::cli::bench::report::{now_us, Stats};
use crate::cli::bench::BenchArgs;
use crate::cli::client::{frame_request, read_frame, Client};
use crate::record::BatchHeader;

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;
/// How long a fetch may wait at the broker for new records.
const FETCH_WAIT_MS: i32 = 100;
/// Longest the bench waits for a new topic's partitions to get leaders.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The topic's partitions and the address of each one's leader.
pub struct Cluster {
    pub topic: String,
    pub partitions: Vec<(i32, String)>,
}

impl Cluster {
    /// Looks the topic up, creating it with `partitions` partitions if it does not exist and
    /// `partitions` is given; without, a missing topic is an error.
    pub fn discover(bootstrap: &str, topic: &str, partitions: Option<i32>) -> anyhow::Result<Cluster> {
        let mut client = Client::connect(bootstrap)?;
        let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
        let mut created = false;
        loop {
            let request = MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.into()))))
                ]))
                .with_allow_auto_topic_creation(false);
            let response = client.call(9, &request)?;
            let brokers: HashMap<i32, String> = response
                .brokers
                .iter()
                .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
                .collect();
            let entry = response
                .topics
                .first()
                .ok_or_else(|| anyhow!("no metadata for {topic}"))?;
            let code = entry.error_code;
            if code == ResponseError::UnknownTopicOrPartition.code() && !created {
                let Some(partitions) = partitions else {
                    bail!("topic {topic} does not exist (a consume run reads an existing topic)");
                };
                create_topic(&mut client, topic, partitions)?;
                created = true;
                continue;
            }
            let leaders: Option<Vec<(i32, String)>> = entry
                .partitions
                .iter()
                .map(|p| {
                    brokers
                        .get(&p.leader_id.0)
                        .map(|addr| (p.partition_index, addr.clone()))
                })
                .collect();
            match leaders {
                Some(mut leaders) if code == 0 && !leaders.is_empty() => {
                    leaders.sort();
                    return Ok(Cluster {
                        topic: topic.to_string(),
                        partitions: leaders,
                    });
                }
                _ if Instant::now() > deadline => bail!("topic {topic} has no leaders (error code {code})"),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The partitions worker `index` of `workers` takes: every `workers`-th, or one in turn
    /// when there are more workers than partitions.
    fn share(&self, index: usize, workers: usize) -> Vec<(i32, String)> {
        if workers >= self.partitions.len() {
            return vec![self.partitions[index % self.partitions.len()].clone()];
        }
        self.partitions
            .iter()
            .enumerate()
            .filter(|(i, _)| i % workers == index)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

fn create_topic(client: &mut Client, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)]);
    let response = client.call(5, &request)?;
    for result in response.topics {
        let code = result.error_code;
        if code != 0 && code != ResponseError::TopicAlreadyExists.code() {
            bail!(
                "creating {topic}: error {code}: {}",
                result.error_message.map(|m| m.to_string()).unwrap_or_default()
            );
        }
    }
    eprintln!("created topic {topic} with {partitions} partitions");
    Ok(())
}

fn pin(cpus: &[usize], index: usize) {
    if cpus.is_empty() {
        return;
    }
    let id = cpus[index % cpus.len()];
    if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
        eprintln!("could not pin a bench thread to CPU {id}");
    }
}

/// A produce request on the wire, waiting for its response.
struct InFlight {
    correlation_id: i32,
    created_us: Vec<i64>,
    bytes: u64,
}

/// One producer connection: requests written here, responses read by its own thread, with at
/// most `--in-flight` outstanding (the bounded channel). [`Client`] answers one call at a
/// time, so producers frame requests themselves.
struct Pipe {
    stream: Box<dyn Write + Send>,
    pending: Option<SyncSender<InFlight>>,
    reader: Option<JoinHandle<()>>,
    correlation_id: i32,
}

impl Pipe {
    fn open(address: &str, in_flight: usize, acks: i16, stats: Arc<Stats>) -> anyhow::Result<Pipe> {
        // Connected (and authenticated, with SASL) as every subcommand connects; the requests
        // are then written here and read by another thread, which a TLS session cannot share.
        // Connected (TLS, SASL) as every subcommand connects; requests are then written here
        // and the responses read by a thread of their own.
        let (stream, responses) = Client::connect(address)?.into_stream().split()?;
        let (pending, reader) = if acks != 0 {
            let (sender, receiver) = sync_channel(in_flight);
            let reader = std::thread::spawn(move || read_acks(responses, receiver, &stats));
            (Some(sender), Some(reader))
        } else {
            (None, None)
        };
        Ok(Pipe {
            stream,
            pending,
            reader,
            correlation_id: 0,
        })
    }

    fn send(
        &mut self,
        request: &ProduceRequest,
        created_us: Vec<i64>,
        bytes: u64,
        stats: &Stats,
    ) -> anyhow::Result<()> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let frame = frame_request(
            ApiKey::Produce,
            PRODUCE_VERSION,
            self.correlation_id,
            "sluice-bench",
            request,
        )?;
        match &self.pending {
            Some(pending) => pending
                .send(InFlight {
                    correlation_id: self.correlation_id,
                    created_us,
                    bytes,
                })
                .map_err(|_| anyhow!("the response reader stopped"))?,
            None => stats.sent(created_us.len() as u64, bytes),
        }
        self.stream.write_all(&frame).context("sending a produce request")
    }

    fn close(mut self) {
        self.pending.take();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Reads produce responses in request order, recording each record's produce-to-ack latency.
fn read_acks(mut stream: Box<dyn Read + Send>, pending: Receiver<InFlight>, stats: &Stats) {
    let mut broken = false;
    while let Ok(request) = pending.recv() {
        if broken {
            stats.error("connection lost with requests in flight".into());
            continue;
        }
        let outcome = read_frame(&mut stream).and_then(|mut body| {
            let header = ResponseHeader::decode(&mut body, ApiKey::Produce.response_header_version(PRODUCE_VERSION))?;
            anyhow::ensure!(
                header.correlation_id == request.correlation_id,
                "response {} to request {}",
                header.correlation_id,
                request.correlation_id
            );
            ProduceResponse::decode(&mut body, PRODUCE_VERSION)
        });
        let now = now_us();
        match outcome {
            Ok(response) => {
                let failed = response
                    .responses
                    .iter()
                    .flat_map(|t| &t.partition_responses)
                    .find(|p| p.error_code != 0);
                match failed {
                    Some(p) => stats.error(format!("partition {}: produce error {}", p.index, p.error_code)),
                    None => stats.acked(now, &request.created_us, request.bytes),
                }
            }
            Err(e) => {
                stats.error(format!("reading a produce response: {e:#}"));
                broken = true;
            }
        }
    }
}

/// Runs the producers to completion: `--records` split among them, or until `deadline`.
pub fn produce(
    args: &BenchArgs,
    cluster: &Cluster,
    stats: &Arc<Stats>,
    deadline: Instant,
    cpus: &Arc<Vec<usize>>,
    cpu_offset: usize,
) -> anyhow::Result<()> {
    let producers = args.producers as u64;
    let handles: Vec<JoinHandle<anyhow::Result<()>>> = (0..args.producers)
        .map(|i| {
            let quota = args.records / producers + u64::from((i as u64) < args.records % producers);
            let partitions = cluster.share(i, args.producers);
            let (args, stats, cpus, topic) = (args.clone(), stats.clone(), cpus.clone(), cluster.topic.clone());
            std::thread::spawn(move || {
                pin(&cpus, cpu_offset + i);
                producer(&args, &topic, &partitions, quota, &stats, deadline)
            })
        })
        .collect();
    join_all(handles)
}

pub fn join_all(handles: Vec<JoinHandle<anyhow::Result<()>>>) -> anyhow::Result<()> {
    let mut first = Ok(());
    for handle in handles {
        let outcome = handle
            .join()
            .map_err(|_| anyhow!("a bench thread panicked"))
            .and_then(|r| r);
        if first.is_ok() {
            first = outcome;
        }
    }
    first
}

/// Waits until the wall clock reads `at_us`: sleeps most of the way, then spins, yielding the
/// CPU on each turn: the producer's ack reader shares its CPU, and a spin that does not yield
/// delays the reader by whole scheduler slices, which would show as the broker's latency.
fn wait_until_us(at_us: i64) {
    loop {
        let left = at_us - now_us();
        if left <= 0 {
            return;
        }
        if left > 200 {
            std::thread::sleep(Duration::from_micros((left - 100) as u64));
        } else {
            std::thread::yield_now();
        }
    }
}

fn producer(
    args: &BenchArgs,
    topic: &str,
    partitions: &[(i32, String)],
    quota: u64,
    stats: &Arc<Stats>,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut builder = BatchBuilder::new(args.record_size, args.compression);
    let batch_records = args.batch_records() as u64;
    let rate = args.rate as f64 / args.producers as f64;
    let linger_us = (args.linger_ms * 1000) as i64;
    let start_us = now_us();
    let due = |k: u64| start_us + (k as f64 * 1e6 / rate) as i64;
    let mut pipes: HashMap<String, Pipe> = HashMap::new();
    let mut sent = 0u64;
    let mut created: Vec<i64> = Vec::with_capacity(batch_records as usize);
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let mut turn = 0usize;
    while sent < quota && Instant::now() < deadline {
        let most = batch_records.min(quota - sent);
        created.clear();
        if rate > 0.0 {
            // Send when the batch is full or its first record has waited `linger.ms`.
            wait_until_us(due(sent + most - 1).min(due(sent) + linger_us));
            let now = now_us();
            let ready = (sent..sent + most).take_while(|&k| due(k) <= now).count().max(1) as u64;
            created.extend((sent..sent + ready).map(due));
        } else {
            let now = now_us();
            created.extend(std::iter::repeat_n(now, most as usize));
        }
        let (partition, leader) = &partitions[turn % partitions.len()];
        turn += 1;
        let batch = builder.build(&created)?;
        let bytes = (created.len() * builder.record_bytes()) as u64;
        let request = ProduceRequest::default()
            .with_acks(args.acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name.clone())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(*partition)
                    .with_records(Some(batch))])]);
        let pipe = match pipes.entry(leader.clone()) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(Pipe::open(leader, args.in_flight, args.acks, stats.clone())?)
            }
        };
        sent += created.len() as u64;
        pipe.send(&request, created.clone(), bytes, stats)?;
    }
    for (_, pipe) in pipes {
        pipe.close();
    }
    Ok(())
}

/// Starts the consumers: from each partition's start (`consume`) or end (`e2e`).
pub fn start_consumers(
    args: &BenchArgs,
    cluster: &Cluster,
    stats: &Arc<Stats>,
    deadline: Instant,
    cpus: &Arc<Vec<usize>>,
    from_end: bool,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<JoinHandle<anyhow::Result<()>>>> {
    let mut handles = Vec::new();
    for i in 0..args.consumers.min(cluster.partitions.len()) {
        let partitions = cluster.share(i, args.consumers.min(cluster.partitions.len()));
        let mut client = Client::connect(&partitions[0].1)?;
        let (start, end) = (
            offsets(&mut client, &cluster.topic, &partitions, -2)?,
            offsets(&mut client, &cluster.topic, &partitions, -1)?,
        );
        let (args, stats, cpus, stop, topic) = (
            args.clone(),
            stats.clone(),
            cpus.clone(),
            stop.clone(),
            cluster.topic.clone(),
        );
        handles.push(std::thread::spawn(move || {
            pin(&cpus, i);
            let from = if from_end { end.clone() } else { start };
            // `consume` reads what the topic held when it started (at most `--records`).
            let until = (!from_end).then_some(end);
            consumer(&args, client, &topic, from, until, &stats, deadline, &stop)
        }));
    }
    Ok(handles)
}

/// Offsets of `partitions` at `timestamp` (-2 earliest, -1 latest).
fn offsets(
    client: &mut Client,
    topic: &str,
    partitions: &[(i32, String)],
    timestamp: i64,
) -> anyhow::Result<Vec<(i32, i64)>> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                partitions
                    .iter()
                    .map(|(p, _)| {
                        ListOffsetsPartition::default()
                            .with_partition_index(*p)
                            .with_timestamp(timestamp)
                    })
                    .collect(),
            )]);
    let response = client.call(5, &request)?;
    let mut out = Vec::new();
    for p in response.topics.iter().flat_map(|t| &t.partitions) {
        if p.error_code != 0 {
            bail!(
                "ListOffsets for partition {}: error {}",
                p.partition_index,
                p.error_code
            );
        }
        out.push((p.partition_index, p.offset));
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn consumer(
    args: &BenchArgs,
    mut client: Client,
    topic: &str,
    from: Vec<(i32, i64)>,
    until: Option<Vec<(i32, i64)>>,
    stats: &Stats,
    deadline: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut positions: HashMap<i32, i64> = from.into_iter().collect();
    let ends: Option<HashMap<i32, i64>> = until.map(|u| u.into_iter().collect());
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let mut stamps = Vec::new();
    // E2e consumers run a little past the producers' deadline to drain what is in flight.
    let hard_deadline = deadline + Duration::from_secs(5);
    loop {
        let caught_up = ends
            .as_ref()
            .is_some_and(|ends| ends.iter().all(|(p, end)| positions[p] >= *end));
        let consumed = stats.consumed_so_far();
        if caught_up
            || (consumed >= args.records && ends.is_some())
            || consumed >= stats.expected()
            || Instant::now() > hard_deadline
            || (ends.is_some() && Instant::now() > deadline)
            || stop.load(Ordering::Relaxed)
        {
            return Ok(());
        }
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(FETCH_WAIT_MS)
            .with_min_bytes(1)
            .with_max_bytes(i32::MAX)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default().with_topic(name.clone()).with_partitions(
                positions
                    .iter()
                    .map(|(p, offset)| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(*offset)
                            .with_partition_max_bytes(args.fetch_size)
                    })
                    .collect(),
            )]);
        let response = client.call(FETCH_VERSION, &request)?;
        let now = now_us();
        for partition in response.responses.iter().flat_map(|t| &t.partitions) {
            if partition.error_code != 0 {
                bail!(
                    "fetch from partition {}: error {}",
                    partition.partition_index,
                    partition.error_code
                );
            }
            let Some(records) = &partition.records else { continue };
            let position = positions
                .get_mut(&partition.partition_index)
                .expect("a fetched partition");
            let (mut count, mut bytes, mut at) = (0u64, 0u64, 0usize);
            while at + 61 <= records.len() {
                let header = BatchHeader::new(&records[at..]).expect("length checked");
                let Some(total) = header.total_bytes().filter(|t| at + t <= records.len()) else {
                    break; // A partial batch at the end of the response.
                };
                if header.last_offset().0 >= *position {
                    count += (header.last_offset().0 - header.base_offset().0.max(*position) + 1) as u64;
                    bytes += total as u64;
                    if ends.is_none() {
                        stamps.clear();
                        read_stamps(&records.slice(at..at + total), &mut stamps)?;
                        stats.arrived(now, &stamps);
                    }
                    *position = header.last_offset().0 + 1;
                }
                at += total;
            }
            stats.consumed(count, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_share_partitions() {
        let cluster = Cluster {
            topic: "t".into(),
            partitions: (0..4).map(|p| (p, "a".to_string())).collect(),
        };
        let shares: Vec<Vec<i32>> = (0..2)
            .map(|i| cluster.share(i, 2).into_iter().map(|(p, _)| p).collect())
            .collect();
        assert_eq!(shares, vec![vec![0, 2], vec![1, 3]]);
        assert_eq!(cluster.share(5, 6).len(), 1, "more workers than partitions: one each");
    }
}
