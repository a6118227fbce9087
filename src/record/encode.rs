//! Encoding of whole batches: the broker's own internal records (group offsets and
//! metadata) and the bench's and tests' load.

/// Encodes `(key, value, timestamp_ms)` records into one v2 batch as a plain (non-idempotent)
/// producer sends it: base offset 0, no producer id, sequences unset.
pub fn encode_batch(
    records: impl IntoIterator<Item = (Option<bytes::Bytes>, Option<bytes::Bytes>, i64)>,
    compression: kafka_protocol::records::Compression,
) -> Result<bytes::Bytes, String> {
    encode(records, compression, None)
}

/// Encodes records into one uncompressed transactional batch of producer `producer_id` at
/// `epoch`, without sequences (base sequence -1), as a coordinator writes records on a
/// producer's behalf (Kafka's TxnOffsetCommit records): the log checks its epoch, not its
/// sequence.
pub fn encode_transactional_batch(
    records: impl IntoIterator<Item = (Option<bytes::Bytes>, Option<bytes::Bytes>, i64)>,
    producer_id: i64,
    epoch: i16,
) -> Result<bytes::Bytes, String> {
    encode(
        records,
        kafka_protocol::records::Compression::None,
        Some((producer_id, epoch)),
    )
}

fn encode(
    records: impl IntoIterator<Item = (Option<bytes::Bytes>, Option<bytes::Bytes>, i64)>,
    compression: kafka_protocol::records::Compression,
    transaction: Option<(i64, i16)>,
) -> Result<bytes::Bytes, String> {
    let (producer_id, producer_epoch) = transaction.unwrap_or((-1, -1));
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value, timestamp))| Record {
            transactional: transaction.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder batches records whose offset - sequence agrees; -1 keeps the batch's
            // base sequence at -1, as a non-idempotent producer sends it.
            sequence: i as i32 - 1,
            timestamp,
            key,
            value,
            headers: Default::default(),
        })
        .collect();
    let mut out = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, records.iter(), &options).map_err(|e| e.to_string())?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use crate::record::tests::{encode_batch, COMPRESSIONS};
    use crate::record::validate;

    #[test]
    fn encoded_batches_validate_for_every_codec() {
        for compression in COMPRESSIONS {
            let batch = encode_batch(10, compression);
            let header = validate(&batch).unwrap_or_else(|e| panic!("{compression:?}: {e}"));
            assert_eq!(header.record_count(), 10);
            assert_eq!(header.last_offset_delta(), 9);
            assert_eq!(header.max_timestamp(), 1_700_000_000_009);
        }
    }
}
