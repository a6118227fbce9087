//! Batch validation on the produce path: header checks, CRC32C and the record walk, per MiB of
//! batches, and offset patching. Run: `cargo bench --bench record_batch`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::Compression;
use sluice::ids::Offset;
use sluice::kafka::record_batch;

/// One batch of `count` records with `value_bytes`-byte values, as a producer builds it.
fn batch(count: usize, value_bytes: usize) -> Bytes {
    let records = (0..count).map(|i| {
        let key = Bytes::from(format!("key-{i}"));
        (
            Some(key),
            Some(Bytes::from(vec![b'v'; value_bytes])),
            1_700_000_000_000 + i as i64,
        )
    });
    record_batch::encode_batch(records, Compression::None).expect("encode")
}

fn validation(c: &mut Criterion) {
    // 16 KiB batches of 100-byte records: librdkafka's typical shape under load.
    let one = batch(140, 100);
    let per_mib = (1 << 20) / one.len();
    let batches: Vec<Bytes> = (0..per_mib).map(|_| one.clone()).collect();
    let bytes: usize = batches.iter().map(Bytes::len).sum();

    let mut group = c.benchmark_group("record_batch");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("validate_1MiB_of_16KiB_batches", |b| {
        b.iter(|| {
            for batch in &batches {
                record_batch::validate(batch).expect("valid");
            }
        })
    });
    group.bench_function("patch_offsets_1MiB", |b| {
        let mut copies: Vec<Vec<u8>> = batches.iter().map(|b| b.to_vec()).collect();
        b.iter(|| {
            for (i, batch) in copies.iter_mut().enumerate() {
                record_batch::patch_offsets(batch, Offset(i as i64 * 140), 0);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
