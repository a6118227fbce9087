//! Makes glommio choose the right read path for the data directory's device.
//!
//! glommio decides once per device and thread whether reads may use the io_uring poll ring
//! (IOPOLL), by reading from offset 0 of the first direct-I/O file opened. When that file is
//! empty the read succeeds trivially at end of file, the device is marked pollable, and every
//! later read fails with EOPNOTSUPP on devices without IOPOLL (seen on ext4 over virtio).
//! Each shard therefore first opens a file that has data, then checks that a direct read
//! really works before it opens any log.

use std::path::Path;

use glommio::io::OpenOptions;

use crate::constants::IO_ALIGNMENT_BYTES;
use crate::error::{IoContext, StorageError};
use crate::ids::ShardId;

pub async fn probe_direct_io(data_dir: &Path, shard: ShardId) -> Result<(), StorageError> {
    let path = data_dir.join(format!(".io-probe-{shard}"));
    std::fs::write(&path, vec![0x5a; IO_ALIGNMENT_BYTES as usize]).ctx("write I/O probe", &path)?;
    let file = OpenOptions::new()
        .read(true)
        .dma_open(&path)
        .await
        .ctx("open I/O probe", &path)?;
    let read = file
        .read_at(0, IO_ALIGNMENT_BYTES as usize)
        .await
        .ctx("direct read of I/O probe", &path)?;
    if read.len() != IO_ALIGNMENT_BYTES as usize || read.iter().any(|&b| b != 0x5a) {
        return Err(StorageError::Corrupt {
            path: path.clone(),
            position: 0,
            reason: format!(
                "direct read returned {} bytes that differ from what was written",
                read.len()
            ),
        });
    }
    file.close().await.ctx("close I/O probe", &path)?;
    std::fs::remove_file(&path).ctx("remove I/O probe", &path)
}
