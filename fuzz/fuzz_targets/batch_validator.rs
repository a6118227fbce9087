//! Any bytes as one produced batch, with the header made consistent (magic 2, its length,
//! a correct CRC) so the fuzzer reaches what lies behind the CRC: records, varints, lengths,
//! headers, compressed payloads. Validation must answer Ok or Err, never panic, and must
//! never accept records that do not walk.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The broker's allocator: decoders size vectors by counts from the wire, and the broker
// serves such huge requests from no-reserve mappings instead of aborting (src/alloc.rs).
#[global_allocator]
static ALLOCATOR: sluice::alloc::SluiceAllocator = sluice::alloc::SluiceAllocator;
use sluice::config::TopicConfig;
use sluice::record::HEADER_BYTES;
use sluice::kafka::record_validate::{validate_produced, Rules};

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER_BYTES {
        return;
    }
    let mut batch = data.to_vec();
    let length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[16] = 2;
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let rules = Rules::for_topic(&TopicConfig::default(), 1_700_000_000_000);
    if let Ok(header) = validate_produced(&batch, &rules) {
        // What was accepted is a batch the log can index and consumers can read.
        assert_eq!(header.record_count(), header.last_offset_delta() + 1);
    }
});
