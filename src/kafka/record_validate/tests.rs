//! Unit tests of produce validation: every fault, each codec valid and garbage,
//! decompression bombs, timestamps at and beyond their bounds, and golden batches.

use super::*;
use bytes::BytesMut;
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

/// The broker's clock in these tests: a little after the records `encode_batch` makes.
pub(crate) const NOW_MS: i64 = 1_700_000_100_000;
const HOUR_MS: i64 = 3_600_000;

pub(crate) fn rules() -> Rules {
    Rules::for_topic(&TopicConfig::default(), NOW_MS)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            put_varint(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
        None => put_varint(out, -1),
    }
}

/// One record's body (without its length), field by field.
pub(crate) struct Record<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

impl Record<'_> {
    pub(crate) fn at(index: i32) -> Record<'static> {
        Record {
            timestamp_delta: i64::from(index),
            offset_delta: index,
            key: Some(b"key"),
            value: Some(b"value"),
            headers: &[(b"h", Some(b"v"))],
        }
    }

    pub(crate) fn body(&self) -> Vec<u8> {
        let mut out = vec![0];
        put_varint(&mut out, self.timestamp_delta);
        put_varint(&mut out, i64::from(self.offset_delta));
        put_bytes(&mut out, self.key);
        put_bytes(&mut out, self.value);
        put_varint(&mut out, self.headers.len() as i64);
        for (key, value) in self.headers {
            put_bytes(&mut out, Some(key));
            put_bytes(&mut out, *value);
        }
        out
    }
}

/// A record body behind its length prefix.
pub(crate) fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i64);
    out.extend_from_slice(body);
    out
}

/// Compresses `records` as Kafka clients do (kafka-protocol's encoders).
pub(crate) fn compress(codec: u8, records: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let put = |buffer: &mut BytesMut| {
        buffer.extend_from_slice(records);
        Ok(())
    };
    match codec {
        0 => out.extend_from_slice(records),
        1 => Gzip::compress(&mut out, put).unwrap(),
        2 => Snappy::compress(&mut out, put).unwrap(),
        3 => Lz4::compress(&mut out, put).unwrap(),
        4 => Zstd::compress(&mut out, put).unwrap(),
        _ => panic!("codec {codec}"),
    }
    out.to_vec()
}

/// A whole batch around `payload` (records, compressed with the codec in `attributes`),
/// with a valid length and CRC.
pub(crate) fn seal(payload: &[u8], count: i32, attributes: i16, base_timestamp: i64, max_timestamp: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, set below
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // CRC, set below
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&(count - 1).to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    out.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(payload);
    reseal(&mut out);
    out
}

/// Fixes the length and CRC after a test changed the bytes, so only the validation of
/// what is inside can catch the change.
pub(crate) fn reseal(batch: &mut [u8]) {
    let length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A batch of `records` (bodies) compressed with `codec`, based at [`NOW_MS`], with
/// timestamps taken from the bodies' deltas as `Record::at` makes them.
fn batch_of(bodies: &[Vec<u8>], codec: u8) -> Vec<u8> {
    let records: Vec<u8> = bodies.iter().flat_map(|b| framed(b)).collect();
    let count = bodies.len() as i32;
    seal(
        &compress(codec, &records),
        count,
        i16::from(codec),
        NOW_MS,
        NOW_MS + i64::from(count) - 1,
    )
}

fn good(count: i32, codec: u8) -> Vec<u8> {
    let bodies: Vec<Vec<u8>> = (0..count).map(|i| Record::at(i).body()).collect();
    batch_of(&bodies, codec)
}

/// `good(3, codec)` with record 1 replaced by `body`.
fn with_record_1(body: Vec<u8>, codec: u8) -> Vec<u8> {
    batch_of(&[Record::at(0).body(), body, Record::at(2).body()], codec)
}

fn refusal(batch: &[u8]) -> Refusal {
    refusal_under(batch, &rules())
}

fn refusal_under(batch: &[u8], rules: &Rules) -> Refusal {
    match validate_produced(batch, rules) {
        Ok(_) => panic!("the batch was accepted"),
        Err(refusal) => refusal,
    }
}

const CODECS: [u8; 5] = [0, 1, 2, 3, 4];

#[test]
fn batches_from_the_kafka_encoder_validate_for_every_codec() {
    for compression in record::tests::COMPRESSIONS {
        let batch = record::tests::encode_batch(500, compression);
        let header = validate_produced(&batch, &rules()).unwrap_or_else(|e| panic!("{compression:?}: {e}"));
        assert_eq!(header.record_count(), 500);
    }
}

#[test]
fn hand_built_batches_validate_for_every_codec() {
    for codec in CODECS {
        validate_produced(&good(50, codec), &rules()).unwrap_or_else(|e| panic!("codec {codec}: {e}"));
    }
}

/// Records as upstream Kafka's snappy-java wrote them (the vector kafka-protocol tests its
/// decoder with: one record, value "sdfdsf"), in the xerial framing Java clients use and
/// as the raw block librdkafka sends.
#[test]
fn golden_snappy_records_from_kafka_validate() {
    let xerial =
        b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x0f\x0d\x30\x18\x00\x00\x00\x01\x0csdfdsf\x00";
    let raw = b"\r0\x18\0\0\0\x01\x0csdfdsf\0";
    for payload in [&xerial[..], &raw[..]] {
        let batch = seal(payload, 1, 2, 0, 0);
        validate_produced(&batch, &rules()).unwrap();
    }
}

/// An uncompressed batch of two records as a Java producer lays it out (keys "a" and "b",
/// value "value", header h=v, timestamps a millisecond apart, no producer id), encoded by
/// hand from the v2 format with its CRC, independently of the encoders used here. It must
/// keep validating.
#[test]
fn golden_uncompressed_batch_validates() {
    let hex = concat!(
        "000000000000000000000053ffffffff02b2",
        "cc53b50000000000010000018bcfe5680000",
        "00018bcfe56801ffffffffffffffffffffff",
        "ffffff000000022000000002610a76616c75",
        "6502026802762000020202620a76616c7565",
        "0202680276",
    );
    let batch: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let header = validate_produced(&batch, &Rules::for_topic(&TopicConfig::default(), 1_700_000_000_000)).unwrap();
    assert_eq!((header.record_count(), header.max_timestamp()), (2, 1_700_000_000_001));
}

#[test]
fn overlong_and_cut_off_varints_are_refused() {
    // A record length of six bytes.
    let mut records = vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    records.extend_from_slice(&Record::at(0).body());
    let refused = refusal(&seal(&records, 1, 0, NOW_MS, NOW_MS));
    assert!(matches!(refused.fault, Fault::Varint("record length")), "{refused}");
    assert_eq!(refused.record, Some(0));

    // A five-byte varint whose last byte carries bits past 32.
    let mut body = vec![0, 0, 0];
    body.extend_from_slice(&[0x81, 0x80, 0x80, 0x80, 0x10]);
    body.extend_from_slice(&[1, 0]);
    let refused = refusal(&batch_of(&[body], 0));
    assert!(matches!(refused.fault, Fault::Varint("key length")), "{refused}");

    // A varlong of eleven bytes.
    let mut body = vec![0];
    body.extend_from_slice(&[0x80; 10]);
    body.extend_from_slice(&[0x00, 0, 1, 1, 0]);
    let refused = refusal(&batch_of(&[body], 0));
    assert!(matches!(refused.fault, Fault::Varint("timestampDelta")), "{refused}");

    // A varint that runs off the end of its record.
    let mut body = Record::at(1).body();
    body.truncate(body.len() - 2); // the header's value length and value
    body.push(0x80);
    let refused = refusal(&with_record_1(body, 0));
    assert!(
        matches!(refused.fault, Fault::Varint("header value length")),
        "{refused}"
    );
    assert_eq!(refused.record, Some(1));
}

#[test]
fn non_minimal_varints_within_five_bytes_are_accepted_as_kafka_reads_them() {
    // Key length -1 written in five bytes, then the rest of a record.
    let mut body = vec![0, 0, 0];
    body.extend_from_slice(&[0x81, 0x80, 0x80, 0x80, 0x00]);
    body.extend_from_slice(&[1, 0]);
    let batch = seal(&framed(&body), 1, 0, NOW_MS, NOW_MS);
    validate_produced(&batch, &rules()).unwrap();
}

#[test]
fn lengths_beyond_the_record_are_refused() {
    // In Record::at(1) the key length is byte 3 (after attributes, timestampDelta and
    // offsetDelta), the value length byte 7 (after the 3-byte key), and the header's value
    // length byte 16 (after the 5-byte value, the header count, the header key's length and
    // "h").
    for (field, at) in [("key", 3), ("value", 7), ("header value", 16)] {
        let mut body = Record::at(1).body();
        body[at] = 0x7e; // 63, more than the record holds
        let refused = refusal(&with_record_1(body, 0));
        match &refused.fault {
            Fault::Length { field: named, .. } => assert_eq!(*named, field),
            other => panic!("{field}: {other}"),
        }
        assert_eq!(
            (refused.record, refused.kafka_code()),
            (Some(1), KafkaCode::InvalidRecord)
        );
    }
    // A negative length other than -1 is not null.
    let mut body = Record::at(1).body();
    body[3] = 0x03; // key length -2
    assert!(matches!(
        refusal(&with_record_1(body, 0)).fault,
        Fault::Length {
            field: "key",
            length: -2,
            ..
        }
    ));
}

#[test]
fn header_counts_and_keys_are_checked() {
    let record = Record::at(1);
    // The body ends with the header count and one header of four bytes: 1, "h", 1, "v".
    let count_at = record.body().len() - 5;
    let mut negative = record.body();
    negative[count_at] = 0x01; // -1 headers
    assert!(matches!(
        refusal(&with_record_1(negative, 0)).fault,
        Fault::HeaderCount { count: -1, .. }
    ));

    let mut too_many = record.body();
    too_many[count_at] = 0x7e; // 63 headers in 5 bytes
    assert!(matches!(
        refusal(&with_record_1(too_many, 0)).fault,
        Fault::HeaderCount { count: 63, .. }
    ));

    let mut null_key = record.body();
    null_key[count_at + 1] = 0x01; // header 0's key length -1
    null_key.remove(count_at + 2); // its key byte
    let refused = refusal(&with_record_1(null_key, 0));
    assert!(matches!(refused.fault, Fault::NullHeaderKey(0)), "{refused}");
    assert_eq!(refused.record, Some(1));

    let no_value = Record {
        headers: &[(b"k", None)],
        ..Record::at(1)
    };
    validate_produced(&with_record_1(no_value.body(), 0), &rules()).unwrap();
}

#[test]
fn offset_delta_must_be_the_record_index() {
    for codec in CODECS {
        let body = Record {
            offset_delta: 5,
            ..Record::at(1)
        }
        .body();
        let refused = refusal(&with_record_1(body, codec));
        assert!(
            matches!(refused.fault, Fault::OffsetDelta(5)),
            "codec {codec}: {refused}"
        );
        assert_eq!(refused.record, Some(1));
    }
}

#[test]
fn bytes_left_inside_a_record_or_after_the_last_are_refused() {
    let mut body = Record::at(1).body();
    body.extend_from_slice(&[0, 0]);
    let refused = refusal(&with_record_1(body, 0));
    assert!(matches!(refused.fault, Fault::RecordLeftover(2)), "{refused}");

    for codec in CODECS {
        let mut records: Vec<u8> = (0..2).flat_map(|i| framed(&Record::at(i).body())).collect();
        records.extend_from_slice(&[1, 2, 3]);
        let batch = seal(&compress(codec, &records), 2, i16::from(codec), NOW_MS, NOW_MS + 1);
        assert!(
            matches!(refusal(&batch).fault, Fault::BatchLeftover(3)),
            "codec {codec}"
        );
    }
}

#[test]
fn missing_short_and_overrunning_records_are_refused() {
    let records: Vec<u8> = (0..2).flat_map(|i| framed(&Record::at(i).body())).collect();
    let batch = seal(&records, 3, 0, NOW_MS, NOW_MS + 2);
    assert!(matches!(refusal(&batch).fault, Fault::Missing { read: 2, count: 3 }));

    let batch = seal(&framed(&[0, 0, 0]), 1, 0, NOW_MS, NOW_MS);
    assert!(matches!(refusal(&batch).fault, Fault::RecordTooShort(3)));

    let mut records = framed(&Record::at(0).body());
    records[0] += 2; // two bytes longer than there are
    let batch = seal(&records, 1, 0, NOW_MS, NOW_MS);
    assert!(matches!(refusal(&batch).fault, Fault::RecordPastEnd { .. }));
}

#[test]
fn garbage_and_truncated_payloads_are_refused_for_every_codec() {
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for codec in 1..=4u8 {
        let batch = seal(&garbage, 3, i16::from(codec), NOW_MS, NOW_MS + 2);
        let refused = refusal(&batch);
        assert_eq!(
            refused.kafka_code(),
            KafkaCode::InvalidRecord,
            "codec {codec}: {refused}"
        );
        if codec != 2 {
            assert!(
                matches!(refused.fault, Fault::Decompress { .. }),
                "codec {codec}: {refused}"
            );
        }

        let whole = compress(
            codec,
            &(0..3).flat_map(|i| framed(&Record::at(i).body())).collect::<Vec<u8>>(),
        );
        let batch = seal(&whole[..whole.len() - 4], 3, i16::from(codec), NOW_MS, NOW_MS + 2);
        let refused = refusal(&batch);
        assert_eq!(
            refused.kafka_code(),
            KafkaCode::InvalidRecord,
            "codec {codec}: {refused}"
        );
    }
}

#[test]
fn unknown_codecs_control_batches_and_bad_sequences_are_refused() {
    for codec in 5..=7 {
        let mut batch = good(2, 0);
        batch[22] = codec;
        reseal(&mut batch);
        assert!(matches!(refusal(&batch).fault, Fault::UnknownCodec(c) if c == codec));
    }
    let mut control = good(2, 0);
    control[22] |= 0x20;
    reseal(&mut control);
    let refused = refusal(&control);
    assert!(matches!(refused.fault, Fault::Control));
    assert_eq!((refused.record, refused.kafka_code()), (None, KafkaCode::InvalidRecord));

    let mut no_sequence = good(2, 0);
    no_sequence[43..51].copy_from_slice(&7i64.to_be_bytes());
    reseal(&mut no_sequence);
    assert!(matches!(
        refusal(&no_sequence).fault,
        Fault::Sequence {
            producer_id: 7,
            base_sequence: -1
        }
    ));
}

#[test]
fn a_producer_may_not_claim_log_append_time() {
    let mut batch = good(2, 0);
    batch[22] |= 0x08;
    reseal(&mut batch);
    let refused = refusal(&batch);
    assert!(matches!(refused.fault, Fault::LogAppendTime));
    assert_eq!(refused.kafka_code(), KafkaCode::InvalidTimestamp);
}

/// A batch of one record stamped `timestamp`.
fn stamped(timestamp: i64) -> Vec<u8> {
    let body = Record {
        timestamp_delta: 0,
        ..Record::at(0)
    }
    .body();
    seal(&framed(&body), 1, 0, timestamp, timestamp)
}

#[test]
fn timestamps_are_checked_at_and_beyond_each_bound() {
    let mut rules = rules();
    assert_eq!(rules.timestamp_after_max_ms, HOUR_MS, "Kafka 4's default");
    assert_eq!(rules.timestamp_before_max_ms, i64::MAX, "Kafka's default");
    validate_produced(&stamped(NOW_MS + HOUR_MS), &rules).unwrap();
    let refused = refusal_under(&stamped(NOW_MS + HOUR_MS + 1), &rules);
    assert!(matches!(refused.fault, Fault::Timestamp { high, .. } if high == NOW_MS + HOUR_MS));
    assert_eq!(
        (refused.record, refused.kafka_code()),
        (Some(0), KafkaCode::InvalidTimestamp)
    );
    validate_produced(&stamped(0), &rules).unwrap();
    // Even the default bound is a bound: i64::MIN lies more than i64::MAX ms before now
    // (Kafka refuses it too, through its overflowing subtraction).
    assert!(matches!(
        refusal_under(&stamped(i64::MIN), &rules).fault,
        Fault::Timestamp { .. }
    ));

    rules.timestamp_before_max_ms = 1_000;
    validate_produced(&stamped(NOW_MS - 1_000), &rules).unwrap();
    let refused = refusal_under(&stamped(NOW_MS - 1_001), &rules);
    assert!(matches!(refused.fault, Fault::Timestamp { low, .. } if low == NOW_MS - 1_000));

    // -1 is "no timestamp", allowed whatever the bounds, as in Kafka.
    rules.timestamp_before_max_ms = 0;
    rules.timestamp_after_max_ms = 0;
    validate_produced(&stamped(-1), &rules).unwrap();
    validate_produced(&stamped(NOW_MS), &rules).unwrap();

    // The year 9999.
    let far = 253_402_300_799_000;
    assert!(matches!(refusal(&stamped(far)).fault, Fault::Timestamp { .. }));

    // LogAppendTime topics ignore what the producer stamped.
    rules.timestamp_type = TimestampType::LogAppendTime;
    validate_produced(&stamped(far), &rules).unwrap();
}

#[test]
fn the_failing_record_is_named_in_a_compressed_batch_too() {
    for codec in CODECS {
        let body = Record {
            timestamp_delta: 2 * HOUR_MS,
            ..Record::at(1)
        }
        .body();
        let records: Vec<u8> = [Record::at(0).body(), body, Record::at(2).body()]
            .iter()
            .flat_map(|b| framed(b))
            .collect();
        let batch = seal(
            &compress(codec, &records),
            3,
            i16::from(codec),
            NOW_MS,
            NOW_MS + 2 * HOUR_MS,
        );
        let refused = refusal(&batch);
        assert!(
            matches!(refused.fault, Fault::Timestamp { .. }),
            "codec {codec}: {refused}"
        );
        assert_eq!(refused.record, Some(1));
    }
}

#[test]
fn max_timestamp_must_be_the_largest_record_timestamp() {
    let mut batch = good(3, 0);
    batch[35..43].copy_from_slice(&(NOW_MS + 5).to_be_bytes());
    reseal(&mut batch);
    let refused = refusal(&batch);
    assert!(
        matches!(refused.fault, Fault::MaxTimestamp { stored, largest } if stored == NOW_MS + 5 && largest == NOW_MS + 2),
        "{refused}"
    );
    assert_eq!((refused.record, refused.kafka_code()), (None, KafkaCode::InvalidRecord));

    // A LogAppendTime topic overwrites maxTimestamp anyway.
    let mut rules = rules();
    rules.timestamp_type = TimestampType::LogAppendTime;
    validate_produced(&batch, &rules).unwrap();

    // Records before -1: Java starts its maximum at -1, others at the first record.
    let body = Record {
        timestamp_delta: 0,
        ..Record::at(0)
    }
    .body();
    for max in [-5, -1] {
        validate_produced(&seal(&framed(&body), 1, 0, -5, max), &self::rules()).unwrap();
    }
    assert!(refusal(&seal(&framed(&body), 1, 0, -5, 0))
        .fault
        .to_string()
        .contains("maxTimestamp"));
}

#[test]
fn frame_faults_keep_their_codes() {
    let mut batch = good(2, 0);
    let last = batch.len() - 1;
    batch[last] ^= 1;
    let refused = refusal(&batch);
    assert!(matches!(refused.fault, Fault::Batch(BatchError::Crc { .. })));
    assert_eq!(refused.kafka_code(), KafkaCode::CorruptMessage);

    let mut batch = good(2, 0);
    batch[23..27].copy_from_slice(&5i32.to_be_bytes());
    reseal(&mut batch);
    assert_eq!(
        refusal(&batch).kafka_code(),
        KafkaCode::InvalidRecord,
        "count vs lastOffsetDelta"
    );
}

/// Concatenated copies of one frame of a MiB of zeros: `frames` MiB once decoded, a few
/// KiB on the wire, built without ever holding the decompressed bytes.
pub(crate) fn bomb(codec: u8, frames: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let frame = compress(codec, &zeros);
    frame.repeat(frames)
}

#[test]
fn decompression_bombs_are_refused_at_the_bound() {
    for codec in [1, 4] {
        // 1 GiB of zeros, four times the bound.
        let payload = bomb(codec, 1024);
        assert!(
            payload.len() < (1 << 30) / 500,
            "codec {codec}: the bomb is small on the wire"
        );
        let batch = seal(&payload, 1, i16::from(codec), NOW_MS, NOW_MS);
        let refused = refusal(&batch);
        assert!(
            matches!(refused.fault, Fault::DecompressedTooLarge { max, .. } if max == BATCH_DECOMPRESSED_BYTES_MAX),
            "codec {codec}: {refused}"
        );
        assert_eq!(refused.kafka_code(), KafkaCode::InvalidRecord);
        // The bound's worth of scratch is not kept once the batch is refused.
        SCRATCH.with(|scratch| assert!(scratch.borrow().capacity() <= DECOMPRESSED_SCRATCH_BYTES_KEPT));
    }
}

#[test]
fn scratch_of_ordinary_batches_is_reused() {
    validate_produced(&good(100, 3), &rules()).unwrap();
    let kept = SCRATCH.with(|scratch| scratch.borrow().as_ptr());
    validate_produced(&good(100, 4), &rules()).unwrap();
    assert_eq!(SCRATCH.with(|scratch| scratch.borrow().as_ptr()), kept);
}

#[test]
fn varints_decode_every_width_and_refuse_what_does_not_fit() {
    let decode32 = |value: i64| {
        let mut bytes = Vec::new();
        put_varint(&mut bytes, value);
        let mut at = 0;
        (read_varint(&bytes, &mut at), at == bytes.len())
    };
    for value in [
        0,
        -1,
        1,
        63,
        -64,
        64,
        8191,
        -8192,
        8192,
        1 << 20,
        i64::from(i32::MAX),
        i64::from(i32::MIN),
    ] {
        assert_eq!(decode32(value), (Some(value as i32), true), "{value}");
    }
    assert_eq!(decode32(i64::from(i32::MAX) + 1).0, None, "past i32 in five bytes");
    let decode64 = |value: i64| {
        let mut bytes = Vec::new();
        put_varint(&mut bytes, value);
        let mut at = 0;
        (read_varlong(&bytes, &mut at), at == bytes.len())
    };
    for value in [0, -1, 1, 63, -64, 64, 1 << 40, i64::MAX, i64::MIN] {
        assert_eq!(decode64(value), (Some(value), true), "{value}");
    }
    let mut at = 0;
    let mut past = vec![0xff; 9];
    past.push(0x02);
    assert_eq!(read_varlong(&past, &mut at), None, "a tenth byte past bit 63");
    assert_eq!(read_varint(&[0x80], &mut 0), None, "cut off after one byte");
    assert_eq!(read_varint(&[0x80, 0x80], &mut 0), None, "cut off after two bytes");
}
