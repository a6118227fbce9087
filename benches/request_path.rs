//! The request path's hot pieces, per MiB of record batches: decoding a produce request,
//! appending to a partition log (direct I/O, with the flusher running as under acks=1), and
//! assembling a fetch response; and per request for a one-record produce: decode and
//! validate, append, and joining ready answers for one write.
//! Run: `cargo bench --bench request_path`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchResponse, ProduceRequest, RequestHeader, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::Compression;
use sluice::config::TopicConfig;
use sluice::ids::{PartitionId, ShardId};
use sluice::metrics::ShardMetrics;
use sluice::record;
use sluice::storage::cache::CacheBudget;
use sluice::storage::log::PartitionLog;

/// A 16 KiB batch of 100-byte records, as librdkafka builds them under load.
fn batch() -> Bytes {
    let records = (0..140).map(|i| (None, Some(Bytes::from(vec![b'v'; 100])), 1_700_000_000_000 + i));
    record::encode_batch(records, Compression::None).expect("encode")
}

/// How many such batches make a MiB.
fn per_mib(batch: &Bytes) -> usize {
    (1 << 20) / batch.len()
}

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str("bench"))
}

fn decode(c: &mut Criterion) {
    let batch = batch();
    let partitions = per_mib(&batch);
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default().with_name(name()).with_partition_data(
            (0..partitions as i32)
                .map(|p| {
                    PartitionProduceData::default()
                        .with_index(p)
                        .with_records(Some(batch.clone()))
                })
                .collect(),
        )]);
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(9)
        .with_correlation_id(1)
        .encode(&mut frame, ApiKey::Produce.request_header_version(9))
        .unwrap();
    request.encode(&mut frame, 9).unwrap();
    let frame = frame.freeze();

    let mut group = c.benchmark_group("request_path");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode_produce_request_1MiB", |b| {
        b.iter(|| {
            let mut body = frame.clone();
            RequestHeader::decode(&mut body, ApiKey::Produce.request_header_version(9)).unwrap();
            RequestKind::decode(ApiKey::Produce, &mut body, 9).unwrap()
        })
    });
    group.finish();
}

fn fetch_assembly(c: &mut Criterion) {
    let batch = batch();
    let partitions = per_mib(&batch);
    let mut group = c.benchmark_group("request_path");
    group.throughput(Throughput::Bytes((partitions * batch.len()) as u64));
    group.bench_function("assemble_fetch_response_1MiB", |b| {
        b.iter(|| {
            let response = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_topic(name())
                .with_partitions(
                    (0..partitions as i32)
                        .map(|p| {
                            PartitionData::default()
                                .with_partition_index(p)
                                .with_high_watermark(1_000_000)
                                .with_records(Some(batch.clone()))
                        })
                        .collect(),
                )]);
            let mut out = BytesMut::with_capacity(partitions * batch.len() + 4096);
            ResponseKind::Fetch(response).encode(&mut out, 12).unwrap();
            out
        })
    });
    group.finish();
}

/// Appends `count` batches to a fresh log in its own executor and returns the time taken.
fn time_appends(batch: &Bytes, count: u64) -> Duration {
    let dir = tempfile::tempdir_in(std::env::var("SLUICE_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
        .expect("bench dir");
    let path = dir.path().to_path_buf();
    let batch = batch.clone();
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            sluice::storage::probe::probe_direct_io(&path, ShardId(0))
                .await
                .expect("direct I/O");
            let log = PartitionLog::open(
                path.join("bench-0"),
                "bench",
                PartitionId(0),
                uuid::Uuid::new_v4(),
                TopicConfig::default(),
                CacheBudget::new(256 << 20),
                Rc::new(ShardMetrics::default()),
            )
            .await
            .expect("open log");
            let batches = [batch];
            let started = Instant::now();
            for _ in 0..count {
                log.append(&batches).await.expect("append");
            }
            let elapsed = started.elapsed();
            log.close().await.expect("close");
            elapsed
        })
        .expect("executor")
        .join()
        .expect("bench executor")
}

fn append(c: &mut Criterion) {
    let batch = batch();
    let mut group = c.benchmark_group("request_path");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.sample_size(20);
    group.bench_function("append_16KiB_batch", |b| {
        b.iter_custom(|iters| time_appends(&batch, iters))
    });
    group.finish();
}

/// One 100-byte record per request, as a `linger.ms=0` producer sends them: the frame through
/// the broker's own decoder and record validation (what `decode` and `route` cost before the
/// hop), its append, and ten small answers joined into one write's buffer.
fn one_record(c: &mut Criterion) {
    let record = record::encode_batch(
        [(None, Some(Bytes::from(vec![b'v'; 100])), 1_700_000_000_000)],
        Compression::None,
    )
    .expect("encode");
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default().with_name(name()).with_partition_data(
            vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(record.clone()))],
        )]);
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(9)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("bench")))
        .encode(&mut frame, ApiKey::Produce.request_header_version(9))
        .unwrap();
    request.encode(&mut frame, 9).unwrap();
    let frame = frame.freeze();
    let rules = sluice::kafka::record_validate::Rules::for_topic(&TopicConfig::default(), 1_700_000_000_000);

    let mut group = c.benchmark_group("one_record");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_and_validate_produce", |b| {
        b.iter(|| {
            let Ok(sluice::kafka::Decoded::Request {
                request: RequestKind::Produce(produce),
                ..
            }) = sluice::kafka::decode_request(frame.clone())
            else {
                panic!("a produce request");
            };
            let records = produce.topic_data[0].partition_data[0]
                .records
                .as_ref()
                .expect("records");
            for range in record::split_batches(records).expect("batches") {
                sluice::kafka::record_validate::validate_produced(&records[range], &rules).expect("valid");
            }
        })
    });
    group.sample_size(20);
    group.bench_function("append_one_record_batch", |b| {
        b.iter_custom(|iters| time_appends(&record, iters))
    });
    let answers: Vec<Bytes> = (0..10).map(|_| Bytes::from(vec![0u8; 60])).collect();
    group.bench_function("join_ten_answers", |b| {
        b.iter(|| {
            let mut joined = BytesMut::new();
            for answer in &answers {
                joined.extend_from_slice(answer);
            }
            joined.freeze()
        })
    });
    group.finish();
}

criterion_group!(benches, decode, fetch_assembly, append, one_record);
criterion_main!(benches);
