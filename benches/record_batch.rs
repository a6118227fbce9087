//! Batch validation on the produce path, per MiB of batches: the frame alone (header checks
//! and CRC32C, what storage relies on), the full produce validation of uncompressed batches
//! (frame plus every record), and of lz4 batches (frame, decompression, every record); and
//! offset patching. Run: `cargo bench --bench record_batch`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::Compression;
use sluice::config::TopicConfig;
use sluice::ids::Offset;
use sluice::kafka::record_validate::{self, Rules};
use sluice::record;

/// One batch of `count` records with `value_bytes`-byte values, as a producer builds it.
fn batch(count: usize, value_bytes: usize, compression: Compression) -> Bytes {
    let records = (0..count).map(|i| {
        let key = Bytes::from(format!("key-{i}"));
        (
            Some(key),
            Some(Bytes::from(vec![b'v'; value_bytes])),
            1_700_000_000_000 + i as i64,
        )
    });
    record::encode_batch(records, compression).expect("encode")
}

fn validation(c: &mut Criterion) {
    // 16 KiB batches of 100-byte records: librdkafka's typical shape under load.
    let one = batch(140, 100, Compression::None);
    let per_mib = (1 << 20) / one.len();
    let batches: Vec<Bytes> = (0..per_mib).map(|_| one.clone()).collect();
    let bytes: usize = batches.iter().map(Bytes::len).sum();
    // The same records in lz4 batches; their throughput counts the uncompressed bytes, so the
    // numbers compare per byte of records produced.
    let lz4: Vec<Bytes> = (0..per_mib).map(|_| batch(140, 100, Compression::Lz4)).collect();
    let rules = Rules::for_topic(&TopicConfig::default(), 1_700_000_001_000);

    let mut group = c.benchmark_group("record_batch");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("validate_1MiB_of_16KiB_batches", |b| {
        b.iter(|| {
            for batch in &batches {
                record::validate(batch).expect("valid");
            }
        })
    });
    group.bench_function("validate_produced_1MiB_of_16KiB_batches", |b| {
        b.iter(|| {
            for batch in &batches {
                record_validate::validate_produced(batch, &rules).expect("valid");
            }
        })
    });
    group.bench_function("validate_produced_1MiB_of_16KiB_lz4_batches", |b| {
        b.iter(|| {
            for batch in &lz4 {
                record_validate::validate_produced(batch, &rules).expect("valid");
            }
        })
    });
    group.bench_function("patch_offsets_1MiB", |b| {
        let mut copies: Vec<Vec<u8>> = batches.iter().map(|b| b.to_vec()).collect();
        b.iter(|| {
            for (i, batch) in copies.iter_mut().enumerate() {
                record::patch_offsets(batch, Offset(i as i64 * 140), 0);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
