//! Any bytes as one request frame (what follows the length prefix): decoding must answer
//! Ok or Err, never panic, and a produce request's batches go on through the validator, as
//! they do on a connection.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::RequestKind;
use libfuzzer_sys::fuzz_target;

// The broker's allocator: decoders size vectors by counts from the wire, and the broker
// serves such huge requests from no-reserve mappings instead of aborting (src/alloc.rs).
#[global_allocator]
static ALLOCATOR: sluice::alloc::SluiceAllocator = sluice::alloc::SluiceAllocator;
use sluice::config::TopicConfig;
use sluice::kafka::record_validate::{validate_produced, Rules};
use sluice::kafka::{decode_request, Decoded};
use sluice::record;

fuzz_target!(|data: &[u8]| {
    let Ok(Decoded::Request { request, .. }) = decode_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    let RequestKind::Produce(produce) = request else {
        return;
    };
    let rules = Rules::for_topic(&TopicConfig::default(), 1_700_000_000_000);
    for topic in &produce.topic_data {
        for partition in &topic.partition_data {
            let Some(records) = &partition.records else {
                continue;
            };
            let Ok(ranges) = record::split_batches(records) else {
                continue;
            };
            for range in ranges {
                let _ = validate_produced(&records[range], &rules);
            }
        }
    }
});
