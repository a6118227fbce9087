//! The log's own tests: leader and verbatim appends, leader epochs and their checkpoint,
//! truncation, and the high watermark set from outside. Each runs on one glommio executor
//! over a temporary directory (direct I/O needs a real filesystem, not tmpfs).

use std::future::Future;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::Compression;

use super::*;
use crate::record::tests::encode_batch;

/// Runs `test` with a fresh partition directory on its own executor.
fn with_dir<F, Fut>(test: F)
where
    F: FnOnce(PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            crate::storage::probe::probe_direct_io(path.parent().unwrap(), crate::ids::ShardId(0))
                .await
                .unwrap();
            test(path).await;
        })
        .unwrap()
        .join()
        .unwrap();
    drop(dir);
}

async fn open(dir: &Path, config: TopicConfig) -> Rc<PartitionLog> {
    PartitionLog::open(
        dir.to_path_buf(),
        "topic",
        PartitionId(0),
        uuid::Uuid::from_u128(7),
        config,
        CacheBudget::new(64 << 20),
        Rc::new(ShardMetrics::default()),
    )
    .await
    .unwrap()
}

/// Segments of about three of [`batch`]'s 5-record batches each.
fn small_segments() -> TopicConfig {
    let mut config = TopicConfig::default();
    config.segment_bytes = 1500;
    config
}

/// `count` records at `base`, of leader epoch `epoch`: what a leader's log would hold.
fn batch_at(count: usize, base: i64, epoch: i32) -> Bytes {
    let mut bytes = BytesMut::from(&encode_batch(count, Compression::None)[..]);
    record::patch_offsets(&mut bytes, Offset(base), epoch);
    bytes.freeze()
}

/// Every record's (offset, leader epoch of its batch) from `from`, as a reader sees them.
async fn batches_from(log: &PartitionLog, from: i64) -> Vec<(i64, i64, i32)> {
    let mut seen = Vec::new();
    let mut offset = Offset(from);
    loop {
        let read = log.read(offset, 1 << 20).await.unwrap();
        if read.is_empty() {
            return seen;
        }
        for stored in read {
            let bytes = match stored {
                Stored::Run(bytes) => bytes,
                Stored::Batch(batch) => batch.to_bytes(),
            };
            let mut at = 0;
            while at < bytes.len() {
                let header =
                    record::validate(&bytes[at..at + BatchHeader::new(&bytes[at..]).unwrap().total_bytes().unwrap()])
                        .unwrap();
                seen.push((
                    header.base_offset().0,
                    header.last_offset().0,
                    header.partition_leader_epoch(),
                ));
                offset = header.last_offset().next();
                at += header.total_bytes().unwrap();
            }
        }
    }
}

#[test]
fn leader_appends_carry_the_leader_epoch_and_the_checkpoint_keeps_it() {
    with_dir(|dir| async move {
        let log = open(&dir, TopicConfig::default()).await;
        assert_eq!(log.leader_epoch(), LeaderEpoch(0));
        log.append(&[encode_batch(3, Compression::None)]).await.unwrap();
        log.set_leader_epoch(LeaderEpoch(4)).unwrap();
        log.append(&[encode_batch(2, Compression::None)]).await.unwrap();
        log.flush().await.unwrap();
        assert_eq!(batches_from(&log, 0).await, vec![(0, 2, 0), (3, 4, 4)]);
        assert_eq!(
            log.epoch_entries(),
            vec![(LeaderEpoch(0), Offset(0)), (LeaderEpoch(4), Offset(3))]
        );
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(0)),
            Some((LeaderEpoch(0), Offset(3)))
        );
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(4)),
            Some((LeaderEpoch(4), Offset(5)))
        );
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(5)), None);
        assert_eq!(
            log.set_leader_epoch(LeaderEpoch(3)),
            Err(EpochBackwards {
                current: LeaderEpoch(4),
                got: LeaderEpoch(3)
            })
        );
        log.close().await.unwrap();
        let checkpoint = std::fs::read_to_string(dir.join(EPOCH_CHECKPOINT_FILE)).unwrap();
        assert_eq!(checkpoint, "0\n2\n0 0\n4 3\n", "Kafka's leader-epoch-checkpoint layout");
        let reopened = open(&dir, TopicConfig::default()).await;
        assert_eq!(reopened.leader_epoch(), LeaderEpoch(4));
        assert_eq!(reopened.epoch_entries(), log.epoch_entries());
    });
}

#[test]
fn a_fresh_leader_epoch_ends_at_the_log_end_before_its_first_append() {
    with_dir(|dir| async move {
        let log = open(&dir, TopicConfig::default()).await;
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(0)),
            Some((LeaderEpoch(0), Offset(0)))
        );
        assert!(!dir.join(EPOCH_CHECKPOINT_FILE).exists(), "nothing to record yet");
    });
}

#[test]
fn verbatim_appends_keep_offsets_and_epochs_and_must_continue_the_log() {
    with_dir(|dir| async move {
        let log = open(&dir, small_segments()).await;
        let outcome = log
            .append_verbatim(&[batch_at(5, 0, 1), batch_at(5, 5, 1)])
            .await
            .unwrap();
        assert_eq!((outcome.base_offset, outcome.next_offset), (Offset(0), Offset(10)));
        log.append_verbatim(&[batch_at(5, 10, 3)]).await.unwrap();
        log.flush().await.unwrap();
        assert_eq!(batches_from(&log, 0).await, vec![(0, 4, 1), (5, 9, 1), (10, 14, 3)]);
        assert_eq!(
            log.epoch_entries(),
            vec![(LeaderEpoch(1), Offset(0)), (LeaderEpoch(3), Offset(10))]
        );
        assert_eq!(log.leader_epoch(), LeaderEpoch(3), "the epoch follows the leader's");

        let gap = log.append_verbatim(&[batch_at(1, 16, 3)]).await.unwrap_err();
        assert!(
            matches!(
                gap,
                AppendError::NotContiguous {
                    expected: Offset(15),
                    got: Offset(16)
                }
            ),
            "{gap}"
        );
        let inner_gap = log
            .append_verbatim(&[batch_at(1, 15, 3), batch_at(1, 17, 3)])
            .await
            .unwrap_err();
        assert!(
            matches!(
                inner_gap,
                AppendError::NotContiguous {
                    expected: Offset(16),
                    ..
                }
            ),
            "{inner_gap}"
        );
        let older = log.append_verbatim(&[batch_at(1, 15, 2)]).await.unwrap_err();
        assert!(
            matches!(
                older,
                AppendError::EpochBackwards {
                    latest: LeaderEpoch(3),
                    got: LeaderEpoch(2)
                }
            ),
            "{older}"
        );
        let mut damaged = BytesMut::from(&batch_at(1, 15, 3)[..]);
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        let corrupt = log.append_verbatim(&[damaged.freeze()]).await.unwrap_err();
        assert!(matches!(corrupt, AppendError::InvalidBatch(_)), "{corrupt}");
        assert_eq!(log.end_offset(), Offset(15), "refused appends write nothing");
    });
}

#[test]
fn truncation_cuts_whole_batches_across_segments_and_appends_continue() {
    with_dir(|dir| async move {
        let log = open(&dir, small_segments()).await;
        for i in 0..8 {
            log.append_verbatim(&[batch_at(5, i * 5, if i < 4 { 0 } else { 2 })])
                .await
                .unwrap();
        }
        log.flush().await.unwrap();
        let segments_before = log.state.borrow().segments.len();
        assert!(segments_before >= 3, "{segments_before} segments");

        // Inside the batch [20, 24]: it goes whole, and epoch 2 (from 20) with it.
        assert_eq!(log.truncate_to(Offset(22)).await.unwrap(), Offset(20));
        assert_eq!(log.end_offset(), Offset(20));
        assert_eq!(log.high_watermark(), Offset(20));
        assert_eq!(log.durable_offset(), Offset(20));
        assert_eq!(log.epoch_entries(), vec![(LeaderEpoch(0), Offset(0))]);
        assert_eq!(batches_from(&log, 0).await.last(), Some(&(15, 19, 0)));
        assert!(matches!(
            log.read(Offset(21), 1024).await,
            Err(ReadError::OutOfRange { .. })
        ));
        for (epoch, _) in log.epoch_entries() {
            assert!(epoch <= log.leader_epoch());
        }

        // A new leader's batches follow from the cut.
        log.append_verbatim(&[batch_at(3, 20, 5)]).await.unwrap();
        log.append(&[encode_batch(2, Compression::None)]).await.unwrap();
        log.flush().await.unwrap();
        assert_eq!(
            batches_from(&log, 15).await,
            vec![(15, 19, 0), (20, 22, 5), (23, 24, 5)]
        );
        // At or past the end: nothing changes.
        assert_eq!(log.truncate_to(Offset(40)).await.unwrap(), Offset(25));
        log.close().await.unwrap();

        assert_eq!(
            std::fs::read_to_string(dir.join(RECOVERY_POINT_FILE)).unwrap(),
            "25",
            "the recovery point: the durable offset in decimal"
        );
        let reopened = open(&dir, small_segments()).await;
        assert_eq!(reopened.end_offset(), Offset(25));
        assert_eq!(
            reopened.epoch_entries(),
            vec![(LeaderEpoch(0), Offset(0)), (LeaderEpoch(5), Offset(20))]
        );
        assert_eq!(batches_from(&reopened, 0).await.len(), 6);
    });
}

#[test]
fn truncation_below_the_first_segment_starts_the_log_again_there() {
    with_dir(|dir| async move {
        let log = open(&dir, small_segments()).await;
        log.append_verbatim(&[batch_at(5, 0, 0), batch_at(5, 5, 0)])
            .await
            .unwrap();
        assert_eq!(log.truncate_to(Offset(0)).await.unwrap(), Offset(0));
        assert_eq!((log.log_start_offset(), log.end_offset()), (Offset(0), Offset(0)));
        assert_eq!(
            std::fs::read_to_string(dir.join(LOG_START_FILE)).unwrap(),
            "0",
            "the log start in decimal"
        );
        assert!(log.epoch_entries().is_empty());
        log.append_verbatim(&[batch_at(2, 0, 1)]).await.unwrap();
        log.flush().await.unwrap();
        assert_eq!(batches_from(&log, 0).await, vec![(0, 1, 1)]);
    });
}

#[test]
fn truncation_forgets_the_producers_of_the_batches_it_cut() {
    with_dir(|dir| async move {
        let log = open(&dir, TopicConfig::default()).await;
        log.append_verbatim(&[batch_at(2, 0, 0)]).await.unwrap();
        let mut idempotent = BytesMut::from(&encode_batch(2, Compression::None)[..]);
        // Producer id 42, epoch 0, sequence 0: then the CRC over them again.
        idempotent[43..51].copy_from_slice(&42i64.to_be_bytes());
        idempotent[51..53].copy_from_slice(&0i16.to_be_bytes());
        idempotent[53..57].copy_from_slice(&0i32.to_be_bytes());
        let crc = crc32c::crc32c(&idempotent[21..]);
        idempotent[17..21].copy_from_slice(&crc.to_be_bytes());
        record::patch_offsets(&mut idempotent, Offset(2), 0);
        log.append_verbatim(&[idempotent.freeze()]).await.unwrap();
        assert_eq!(log.active_producers().len(), 1);
        log.truncate_to(Offset(2)).await.unwrap();
        assert!(log.active_producers().is_empty(), "the producer's only batch is gone");
    });
}

#[test]
fn a_high_watermark_set_from_outside_stays_within_the_log_and_stops_following_flushes() {
    with_dir(|dir| async move {
        let log = open(&dir, TopicConfig::default()).await;
        log.append(&[encode_batch(4, Compression::None)]).await.unwrap();
        log.flush().await.unwrap();
        assert_eq!(log.high_watermark(), Offset(4), "a single node's follows the flush");
        assert_eq!(
            log.set_high_watermark(Offset(5)),
            Err(HighWatermarkError::PastLogEnd {
                offset: Offset(5),
                log_end: Offset(4)
            })
        );
        assert_eq!(
            log.set_high_watermark(Offset(3)),
            Err(HighWatermarkError::Backwards {
                offset: Offset(3),
                current: Offset(4)
            })
        );
        log.set_high_watermark(Offset(4)).unwrap();
        log.append(&[encode_batch(4, Compression::None)]).await.unwrap();
        log.flush().await.unwrap();
        assert_eq!(log.durable_offset(), Offset(8));
        assert_eq!(
            log.high_watermark(),
            Offset(4),
            "replication moves it now, not the flush"
        );
        assert_eq!(
            batches_from(&log, 0).await,
            vec![(0, 3, 0)],
            "reads stop at the high watermark"
        );
        log.set_high_watermark(Offset(8)).unwrap();
        let offsets = log.offsets();
        assert_eq!(
            (
                offsets.log_start,
                offsets.last_stable,
                offsets.high_watermark,
                offsets.log_end
            ),
            (Offset(0), Offset(8), Offset(8), Offset(8))
        );
        // Truncation below it pulls it down to the new end.
        log.truncate_to(Offset(4)).await.unwrap();
        assert_eq!((log.high_watermark(), log.end_offset()), (Offset(4), Offset(4)));
    });
}
