//! Storage: per-partition segmented logs on direct I/O.
//!
//! Each partition lives in `<data>/<topic>-<partition>/` as segments named by their 20-digit
//! base offset (`.log`, `.index`, `.timeindex`, and `.txnindex` for aborted transactions). A partition's [`log::PartitionLog`] is owned
//! by one shard and touched only from it. Batches are stored exactly as on the wire, with
//! the base offset and leader epoch patched in; see [`segment`] for the append contract.

pub mod batch;
pub mod cache;
pub mod compaction;
pub mod direct_write;
pub mod epoch_cache;
pub mod index;
pub mod log;
pub mod probe;
pub mod producers;
pub mod segment;
pub mod txn_index;
