//! Response frames made of pieces, so stored record batches reach the socket without a copy.
//!
//! A fetch answer is mostly record bytes the broker already holds (batch-cache entries, or one
//! disk read). Its other fields are encoded by the codec crate as usual, into a
//! [`SplicingBuf`]: when the codec writes a partition's `records` field, the buffer takes the
//! stored pieces by reference instead of copying them, and the frame becomes a list of
//! [`Bytes`] that the connection sends with vectored writes.
//!
//! How a `records` field is recognised: [`Splices::records`] gives the response, for each
//! partition, a value whose bytes are exactly the slice the codec will hand to `put_slice`:
//! the stored piece itself when there is one, or, for several pieces, a stand-in of their
//! total length cut from a reserved zero region (never read, never sent) at an address no
//! other stand-in in the same response has. The buffer splices a slice only when its address
//! and length match the next expected one, in order; [`SplicingBuf::finish`] fails the answer
//! if any expected slice never came, so a stand-in's zeroes can never go out as records.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::OnceLock;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

use crate::error::ProtocolError;

/// Record bytes below this are copied into the frame: an iovec of its own costs more.
const SPLICE_BYTES_MIN: usize = 1024;

/// Address space reserved for stand-ins (zero pages, never touched, so never resident). A
/// partition whose records span several pieces and more than this is copied instead.
const STAND_IN_REGION_BYTES: usize = 256 * 1024 * 1024;

/// One response frame: its length prefix and header first, then its pieces in order.
pub struct ResponseFrame {
    first: Bytes,
    rest: Vec<Bytes>,
    len: usize,
}

impl ResponseFrame {
    /// A frame that is one buffer.
    pub fn whole(bytes: Bytes) -> ResponseFrame {
        ResponseFrame {
            len: bytes.len(),
            first: bytes,
            rest: Vec::new(),
        }
    }

    /// Total bytes on the wire.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frame's bytes, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.first).chain(&self.rest)
    }

    /// The frame as one buffer (copies when it has several pieces).
    pub fn to_bytes(&self) -> Bytes {
        if self.rest.is_empty() {
            return self.first.clone();
        }
        let mut joined = BytesMut::with_capacity(self.len);
        for piece in self.pieces() {
            joined.extend_from_slice(piece);
        }
        joined.freeze()
    }
}

/// Stored record bytes a response carries by reference, in the order the codec writes them.
#[derive(Default)]
pub struct Splices {
    expected: VecDeque<Splice>,
    /// Where the next stand-in starts in the stand-in region.
    stand_in_next: usize,
}

struct Splice {
    address: usize,
    len: usize,
    pieces: Vec<Bytes>,
}

impl Splices {
    /// The value for a `records` field holding `pieces` back to back; registered to be
    /// spliced unless it is small (or too large for a stand-in), in which case it is the
    /// joined bytes. Call in the order the codec encodes the fields.
    pub fn records(&mut self, pieces: Vec<Bytes>) -> Bytes {
        let len: usize = pieces.iter().map(Bytes::len).sum();
        if len < SPLICE_BYTES_MIN {
            return join(pieces, len);
        }
        let value = if pieces.len() == 1 {
            pieces[0].clone()
        } else {
            let start = self.stand_in_next;
            if start + len > STAND_IN_REGION_BYTES {
                return join(pieces, len);
            }
            // Stand-ins of one response never share an address: the next starts a byte on.
            self.stand_in_next += 1;
            stand_in_region().slice(start..start + len)
        };
        self.expected.push_back(Splice {
            address: value.as_ptr() as usize,
            len,
            pieces,
        });
        value
    }

    pub fn is_empty(&self) -> bool {
        self.expected.is_empty()
    }
}

fn join(pieces: Vec<Bytes>, len: usize) -> Bytes {
    match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.into_iter().next().expect("one piece"),
        _ => {
            let mut joined = BytesMut::with_capacity(len);
            for piece in pieces {
                joined.extend_from_slice(&piece);
            }
            joined.freeze()
        }
    }
}

/// Zeroed address space for stand-ins. Allocated zeroed, so the allocator maps it fresh and
/// no page of it is ever touched: only its addresses are used.
fn stand_in_region() -> &'static Bytes {
    static REGION: OnceLock<Bytes> = OnceLock::new();
    REGION.get_or_init(|| Bytes::from(vec![0u8; STAND_IN_REGION_BYTES]))
}

/// A codec output buffer that splices expected record bytes in by reference.
pub struct SplicingBuf {
    /// Finished pieces: encoded bytes and spliced records, in order.
    done: Vec<Bytes>,
    done_len: usize,
    /// Encoded bytes since the last splice.
    current: BytesMut,
    expected: VecDeque<Splice>,
}

impl SplicingBuf {
    pub fn new(splices: Splices) -> SplicingBuf {
        SplicingBuf {
            done: Vec::new(),
            done_len: 0,
            current: BytesMut::with_capacity(256),
            expected: splices.expected,
        }
    }

    /// The encoded pieces and their total length; Err when some expected records were never
    /// written (the codec took another path, and the stand-ins must not be sent).
    pub fn finish(mut self) -> Result<(Vec<Bytes>, usize), String> {
        if !self.expected.is_empty() {
            return Err(format!(
                "{} record fields of the response were not spliced as expected",
                self.expected.len()
            ));
        }
        self.seal_current();
        Ok((self.done, self.done_len))
    }

    fn seal_current(&mut self) {
        if !self.current.is_empty() {
            let sealed = self.current.split().freeze();
            self.done_len += sealed.len();
            self.done.push(sealed);
        }
    }
}

// SAFETY: every method forwards to the BytesMut holding the bytes written since the last
// splice, with the caller's arguments, so BytesMut's own guarantees hold. `put_slice` either
// forwards or moves that buffer into `done` and appends owned pieces, which leaves `current`
// a valid (empty) BytesMut.
unsafe impl BufMut for SplicingBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of the chunk `current` handed out.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        let expected = self
            .expected
            .front()
            .is_some_and(|next| next.address == src.as_ptr() as usize && next.len == src.len());
        if !expected {
            self.current.extend_from_slice(src);
            return;
        }
        let splice = self.expected.pop_front().expect("checked above");
        self.seal_current();
        self.done_len += splice.len;
        self.done
            .extend(splice.pieces.into_iter().filter(|piece| !piece.is_empty()));
    }
}

impl ByteBufMut for SplicingBuf {
    fn offset(&self) -> usize {
        self.done_len + self.current.len()
    }

    /// Message codecs never seek; record codecs seek only within bytes they wrote since.
    fn seek(&mut self, offset: usize) {
        assert!(offset >= self.done_len, "seek to {offset}, before a spliced piece");
        self.current.resize(offset - self.done_len, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        assert!(r.start >= self.done_len, "range {r:?} reaches into a spliced piece");
        &mut self.current[r.start - self.done_len..r.end - self.done_len]
    }
}

/// Encodes a frame: the 4-byte length and `header` into the first piece, then what `body`
/// writes, with `splices` taken by reference.
pub fn spliced_frame(
    header: impl FnOnce(&mut BytesMut) -> Result<(), ProtocolError>,
    splices: Splices,
    body: impl FnOnce(&mut SplicingBuf) -> Result<(), ProtocolError>,
) -> Result<ResponseFrame, ProtocolError> {
    let mut head = BytesMut::with_capacity(64);
    head.put_i32(0);
    header(&mut head)?;
    let mut buf = SplicingBuf::new(splices);
    body(&mut buf)?;
    let (rest, body_len) = buf.finish().map_err(ProtocolError::Encode)?;
    let len = head.len() + body_len;
    let prefix =
        i32::try_from(len - 4).map_err(|_| ProtocolError::Encode(format!("a response of {len} bytes is too large")))?;
    head[..4].copy_from_slice(&prefix.to_be_bytes());
    Ok(ResponseFrame {
        first: head.freeze(),
        rest,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchResponse, FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn piece(byte: u8, len: usize) -> Bytes {
        Bytes::from(vec![byte; len])
    }

    fn response(records: Vec<Bytes>) -> FetchResponse {
        let partitions = records
            .into_iter()
            .enumerate()
            .map(|(i, records)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(7)
                    .with_records(Some(records))
            })
            .collect();
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions)])
    }

    /// Every version, a mix of small, single and multi-piece records: the spliced frame's
    /// bytes equal the codec's plain encoding of the same response with the records joined.
    #[test]
    fn spliced_frames_are_the_codecs_encoding_byte_for_byte() {
        let partitions: Vec<Vec<Bytes>> = vec![
            vec![],
            vec![piece(1, 100)],
            vec![piece(2, 5000)],
            vec![piece(3, 3000), piece(4, 2000), piece(5, 1)],
            vec![piece(6, 3000), piece(7, 2000), piece(8, 1)],
            vec![piece(9, 600), piece(10, 600)],
        ];
        for version in 4..=18i16 {
            let joined: Vec<Bytes> = partitions
                .iter()
                .map(|p| join(p.clone(), p.iter().map(Bytes::len).sum()))
                .collect();
            let mut plain = BytesMut::new();
            plain.put_i32(0);
            response(joined).encode(&mut plain, version).unwrap();
            let plain_len = (plain.len() - 4) as i32;
            plain[..4].copy_from_slice(&plain_len.to_be_bytes());

            let mut splices = Splices::default();
            let stand_ins: Vec<Bytes> = partitions.iter().map(|p| splices.records(p.clone())).collect();
            assert_eq!(
                splices.expected.len(),
                4,
                "v{version}: the four large fields are spliced"
            );
            let frame = spliced_frame(
                |_| Ok(()),
                splices,
                |buf| {
                    response(stand_ins)
                        .encode(buf, version)
                        .map_err(|e| ProtocolError::Encode(e.to_string()))
                },
            )
            .unwrap();
            assert!(frame.pieces().count() > 4, "v{version}: records went out by reference");
            assert_eq!(frame.len(), plain.len());
            assert_eq!(frame.to_bytes(), plain.freeze(), "v{version}");
        }
    }

    #[test]
    fn records_that_were_never_written_fail_the_frame() {
        let mut splices = Splices::default();
        let _ = splices.records(vec![piece(1, 3000), piece(2, 3000)]);
        let outcome = spliced_frame(
            |_| Ok(()),
            splices,
            |buf| {
                buf.put_slice(&[0u8; 6000]);
                Ok(())
            },
        );
        assert!(outcome.is_err(), "a stand-in's zeroes must never be sent");
    }

    #[test]
    fn stand_ins_of_one_response_have_distinct_addresses() {
        let mut splices = Splices::default();
        let a = splices.records(vec![piece(1, 2000), piece(2, 2000)]);
        let b = splices.records(vec![piece(3, 2000), piece(4, 2000)]);
        assert_eq!(a.len(), b.len());
        assert_ne!(a.as_ptr(), b.as_ptr());
    }
}
