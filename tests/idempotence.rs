//! Idempotent producers: InitProducerId, duplicate retries answered with their original
//! offsets, sequence gaps and old epochs refused, state kept across clean and unclean restarts,
//! and librdkafka with `enable.idempotence=true` writing every record exactly once while a
//! proxy drops connections after produce requests reached the broker.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::raw::{connect, request, response};
use common::{assign, consume, send, Broker};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

fn init_producer_id(broker: &Broker) -> (i64, i16) {
    let answer: InitProducerIdResponse = common::raw::call(
        broker,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    );
    assert_eq!(answer.error_code, 0, "InitProducerId failed");
    (answer.producer_id.0, answer.producer_epoch)
}

/// A batch of `count` records as an idempotent producer sends it.
fn batch(producer_id: i64, epoch: i16, first_sequence: i32, count: usize) -> Bytes {
    let records = (0..count).map(|i| {
        (
            None,
            Some(Bytes::from(format!("seq-{}", first_sequence as usize + i))),
            1_700_000_000_000,
        )
    });
    let plain = sluice::record::encode_batch(records, kafka_protocol::records::Compression::None).unwrap();
    let mut bytes = plain.to_vec();
    bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
    bytes[51..53].copy_from_slice(&epoch.to_be_bytes());
    bytes[53..57].copy_from_slice(&first_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

/// Produces one batch to `topic`-0 with acks=all; returns (error code, base offset).
fn produce(broker: &Broker, topic: &'static str, records: Bytes) -> (i16, i64) {
    let request_body = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let mut stream = connect(broker);
    stream
        .write_all(&request(ApiKey::Produce, 9, 7, &request_body))
        .unwrap();
    let answer: ProduceResponse = response(&mut stream, ApiKey::Produce, 9, 7);
    let partition = &answer.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

fn values(broker: &Broker, topic: &str) -> Vec<String> {
    let consumer = broker.consumer(&[("enable.partition.eof", "true")]);
    let (_, high) = consumer.fetch_watermarks(topic, 0, common::WAIT).expect("watermarks");
    assign(&consumer, topic, 1, rdkafka::Offset::Beginning);
    consume(&consumer, high as usize, |m| {
        String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap()
    })
}

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_RECORD: i16 = 87;

#[test]
fn retries_are_deduplicated_gaps_and_old_epochs_refused_across_restarts() {
    let mut broker = Broker::start();
    broker.create_topic("idem", 1);
    let (id, epoch) = init_producer_id(&broker);
    let (other, _) = init_producer_id(&broker);
    assert_ne!(id, other, "every InitProducerId gets a fresh id");
    assert_eq!(epoch, 0);

    assert_eq!(produce(&broker, "idem", batch(id, 0, 0, 3)), (0, 0));
    assert_eq!(produce(&broker, "idem", batch(id, 0, 3, 2)), (0, 3));
    // Retries of either batch get their original offsets; nothing is written again.
    assert_eq!(produce(&broker, "idem", batch(id, 0, 0, 3)), (0, 0));
    assert_eq!(produce(&broker, "idem", batch(id, 0, 3, 2)), (0, 3));
    // A gap, and a batch of another producer in between.
    assert_eq!(
        produce(&broker, "idem", batch(id, 0, 9, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(produce(&broker, "idem", batch(other, 0, 0, 1)), (0, 5));
    // A newer epoch starts at 0; after it, the old epoch is fenced.
    assert_eq!(
        produce(&broker, "idem", batch(id, 1, 4, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(produce(&broker, "idem", batch(id, 1, 0, 1)), (0, 6));
    assert_eq!(produce(&broker, "idem", batch(id, 0, 5, 1)).0, INVALID_PRODUCER_EPOCH);
    // Two batches of an idempotent producer in one partition's data are refused whole.
    let two = [batch(id, 1, 1, 1), batch(id, 1, 2, 1)].concat();
    assert_eq!(produce(&broker, "idem", Bytes::from(two)).0, INVALID_RECORD);
    assert_eq!(
        values(&broker, "idem"),
        ["seq-0", "seq-1", "seq-2", "seq-3", "seq-4", "seq-0", "seq-0"]
    );

    // A clean restart keeps the state (snapshot on close) ...
    broker.restart();
    assert_eq!(produce(&broker, "idem", batch(other, 0, 0, 1)), (0, 5));
    assert_eq!(produce(&broker, "idem", batch(id, 1, 0, 1)), (0, 6));
    assert_eq!(produce(&broker, "idem", batch(id, 1, 1, 1)), (0, 7));
    // ... and so does a crash (replay of the log after the snapshot).
    broker.kill();
    broker.restart();
    assert_eq!(produce(&broker, "idem", batch(id, 1, 1, 1)), (0, 7));
    assert_eq!(
        produce(&broker, "idem", batch(id, 1, 3, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(produce(&broker, "idem", batch(id, 0, 2, 1)).0, INVALID_PRODUCER_EPOCH);
    assert_eq!(values(&broker, "idem").len(), 8);
    // Producer ids are never handed out twice, even after a crash.
    let (after, _) = init_producer_id(&broker);
    assert!(after > other, "id {after} reused after restart (had {id}, {other})");
}

#[test]
fn state_is_replayed_from_the_log_when_the_snapshot_is_gone() {
    // Small segments make every few batches roll (and snapshot); the snapshot is then removed.
    let mut broker = Broker::start();
    broker.create_topic_with("replayed", 1, &[("segment.bytes", "4096")]);
    let (id, _) = init_producer_id(&broker);
    for i in 0..150 {
        assert_eq!(
            produce(&broker, "replayed", batch(id, 0, i * 2, 2)),
            (0, i64::from(i) * 2)
        );
    }
    broker.kill();
    let snapshot = broker.data_dir().join("replayed-0").join("producer-state");
    assert!(snapshot.exists(), "rolling wrote a producer snapshot");
    std::fs::remove_file(&snapshot).unwrap();
    broker.restart();
    for i in 145..150 {
        assert_eq!(
            produce(&broker, "replayed", batch(id, 0, i * 2, 2)),
            (0, i64::from(i) * 2)
        );
    }
    assert_eq!(
        produce(&broker, "replayed", batch(id, 0, 298, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(produce(&broker, "replayed", batch(id, 0, 300, 1)), (0, 300));
}

/// A TCP proxy in front of the broker that closes both sides of a connection instead of
/// passing on some produce responses: the request reached the broker and was appended, but
/// the client never hears of it and must retry.
struct DroppingProxy {
    addr: String,
    dropped: Arc<AtomicUsize>,
}

impl DroppingProxy {
    /// Drops every `every`-th produce response, at most `limit` times in all.
    fn start(listener: TcpListener, broker_addr: String, every: usize, limit: usize) -> DroppingProxy {
        let addr = listener.local_addr().unwrap().to_string();
        let dropped = Arc::new(AtomicUsize::new(0));
        let produced = Arc::new(AtomicUsize::new(0));
        let counter = dropped.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&broker_addr) else {
                    return;
                };
                let produce_ids = Arc::new(Mutex::new(HashSet::new()));
                let (c2, s2, ids) = (
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    produce_ids.clone(),
                );
                std::thread::spawn(move || forward_requests(c2, s2, ids));
                let (dropped, produced) = (counter.clone(), produced.clone());
                std::thread::spawn(move || {
                    forward_responses(server, client, produce_ids, |_| {
                        let n = produced.fetch_add(1, Ordering::SeqCst) + 1;
                        let drop = n % every == 0 && dropped.load(Ordering::SeqCst) < limit;
                        if drop {
                            dropped.fetch_add(1, Ordering::SeqCst);
                        }
                        drop
                    })
                });
            }
        });
        DroppingProxy { addr, dropped }
    }
}

fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).ok()?;
    Some([&length[..], &body].concat())
}

/// Client to broker: remembers the correlation ids of produce requests.
fn forward_requests(mut client: TcpStream, mut server: TcpStream, produce_ids: Arc<Mutex<HashSet<i32>>>) {
    while let Some(frame) = read_frame(&mut client) {
        let api_key = i16::from_be_bytes([frame[4], frame[5]]);
        let correlation_id = i32::from_be_bytes(frame[8..12].try_into().unwrap());
        if api_key == ApiKey::Produce as i16 {
            produce_ids.lock().unwrap().insert(correlation_id);
        }
        if server.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

/// Broker to client: passes responses on unless `drop_it` says to cut a produce response.
fn forward_responses(
    mut server: TcpStream,
    mut client: TcpStream,
    produce_ids: Arc<Mutex<HashSet<i32>>>,
    mut drop_it: impl FnMut(i32) -> bool,
) {
    while let Some(frame) = read_frame(&mut server) {
        let correlation_id = i32::from_be_bytes(frame[4..8].try_into().unwrap());
        let is_produce = produce_ids.lock().unwrap().remove(&correlation_id);
        if (is_produce && drop_it(correlation_id)) || client.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

/// Counts delivery reports by outcome.
#[derive(Default)]
struct Deliveries {
    ok: AtomicUsize,
    failed: Mutex<Vec<String>>,
}

struct Counting(Arc<Deliveries>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.ok.fetch_add(1, Ordering::SeqCst);
            }
            Err((e, _)) => self.0.failed.lock().unwrap().push(e.to_string()),
        }
    }
}

const RECORDS: usize = 3000;
const PARTITIONS: i32 = 3;

/// Produces RECORDS numbered records through a dropping proxy; returns, per partition, the
/// record numbers read back in log order, and how many responses the proxy dropped.
fn produce_through_dropping_proxy(idempotent: bool) -> (BTreeMap<i32, Vec<usize>>, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = listener.local_addr().unwrap().to_string();
    let broker = Broker::start_with(&["--advertise", &proxy_addr]);
    // Clients learn the proxy's address from Metadata, so every connection goes through it.
    let proxy = DroppingProxy::start(listener, broker.addr.clone(), 7, 6);
    broker.create_topic("exactly-once", PARTITIONS);

    let deliveries = Arc::new(Deliveries::default());
    let mut config = broker.client_config();
    config
        .set("bootstrap.servers", &proxy.addr)
        .set("enable.idempotence", if idempotent { "true" } else { "false" })
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("batch.num.messages", "40")
        .set("retry.backoff.ms", "20")
        .set("reconnect.backoff.ms", "20");
    let producer: rdkafka::producer::BaseProducer<Counting> = config
        .create_with_context(Counting(deliveries.clone()))
        .expect("producer");
    for i in 0..RECORDS {
        let payload = i.to_string();
        let key = (i % PARTITIONS as usize).to_string();
        let record = BaseRecord::to("exactly-once")
            .partition(i as i32 % PARTITIONS)
            .key(key.as_bytes())
            .payload(payload.as_bytes());
        send(&producer, record);
        producer.poll(Duration::ZERO);
    }
    producer.flush(common::WAIT).expect("all records delivered");
    assert!(
        deliveries.failed.lock().unwrap().is_empty(),
        "deliveries failed: {:?}",
        deliveries.failed.lock().unwrap()
    );
    assert_eq!(deliveries.ok.load(Ordering::SeqCst), RECORDS);

    let consumer = broker.consumer(&[]);
    let mut total = 0;
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks("exactly-once", p, common::WAIT)
            .expect("watermarks");
        total += high as usize;
    }
    assign(&consumer, "exactly-once", PARTITIONS, rdkafka::Offset::Beginning);
    let mut read: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (partition, number) in consume(&consumer, total, |m| {
        let text = std::str::from_utf8(m.payload().unwrap()).unwrap();
        (m.partition(), text.parse::<usize>().unwrap())
    }) {
        read.entry(partition).or_default().push(number);
    }
    (read, proxy.dropped.load(Ordering::SeqCst))
}

#[test]
fn librdkafka_idempotent_producer_writes_exactly_once_despite_dropped_responses() {
    let (read, dropped) = produce_through_dropping_proxy(true);
    assert!(dropped >= 3, "the proxy dropped only {dropped} produce responses");
    for p in 0..PARTITIONS {
        let expected: Vec<usize> = (0..RECORDS).filter(|i| *i as i32 % PARTITIONS == p).collect();
        assert_eq!(
            read.get(&p),
            Some(&expected),
            "partition {p}: every record once, in order"
        );
    }
}

#[test]
fn without_idempotence_the_same_drops_duplicate_records() {
    // The control: the proxy's drops really do make a plain producer write twice.
    let (read, dropped) = produce_through_dropping_proxy(false);
    assert!(dropped >= 3, "the proxy dropped only {dropped} produce responses");
    let total: usize = read.values().map(Vec::len).sum();
    assert!(total > RECORDS, "{total} records read: the retries wrote no duplicates");
    let distinct: HashSet<usize> = read.values().flatten().copied().collect();
    assert_eq!(distinct.len(), RECORDS, "every record arrived at least once");
}
