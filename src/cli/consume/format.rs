//! The output format of `sluice consume -f`, with kcat's placeholders: `%k` key, `%K` key
//! length, `%s` value, `%S` value length, `%t` topic, `%p` partition, `%o` offset, `%T`
//! timestamp (ms), `%h` headers as `name=value,...`, `%%` a percent sign; and the escapes
//! `\n`, `\r`, `\t`, `\\`. Keys, values and headers are written as the bytes they are.

use std::io::{self, Write};

use anyhow::bail;
use kafka_protocol::records::Record;

#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Key,
    KeyLength,
    Value,
    ValueLength,
    Topic,
    Partition,
    Offset,
    Timestamp,
    Headers,
}

/// A parsed format: text and placeholders in order.
#[derive(Debug)]
pub struct Format {
    pieces: Vec<Piece>,
}

/// Where a record was read from, and when it was stamped (the batch's time for LogAppendTime).
pub struct Place<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub timestamp: i64,
}

impl Format {
    /// The default: each value on its own line.
    pub fn values() -> Format {
        Format::parse("%s\\n").expect("the default format parses")
    }

    pub fn parse(format: &str) -> anyhow::Result<Format> {
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => match chars.next() {
                    Some('k') => Piece::Key,
                    Some('K') => Piece::KeyLength,
                    Some('s') => Piece::Value,
                    Some('S') => Piece::ValueLength,
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('T') => Piece::Timestamp,
                    Some('h') => Piece::Headers,
                    Some('%') => {
                        text.push(b'%');
                        continue;
                    }
                    Some(other) => bail!("unknown placeholder %{other} in the format"),
                    None => bail!("the format ends with a lone %"),
                },
                '\\' => {
                    let escaped = match chars.next() {
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('\\') => '\\',
                        Some(other) => bail!("unknown escape \\{other} in the format"),
                        None => bail!("the format ends with a lone \\"),
                    };
                    text.push(escaped as u8);
                    continue;
                }
                c => {
                    let mut utf8 = [0u8; 4];
                    text.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    continue;
                }
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(piece);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Format { pieces })
    }

    pub fn write(&self, out: &mut impl Write, place: &Place<'_>, record: &Record) -> io::Result<()> {
        let length = |bytes: &Option<bytes::Bytes>| bytes.as_ref().map_or(-1, |b| b.len() as i64);
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.write_all(text)?,
                Piece::Key => out.write_all(record.key.as_deref().unwrap_or_default())?,
                Piece::KeyLength => write!(out, "{}", length(&record.key))?,
                Piece::Value => out.write_all(record.value.as_deref().unwrap_or_default())?,
                Piece::ValueLength => write!(out, "{}", length(&record.value))?,
                Piece::Topic => out.write_all(place.topic.as_bytes())?,
                Piece::Partition => write!(out, "{}", place.partition)?,
                Piece::Offset => write!(out, "{}", record.offset)?,
                Piece::Timestamp => write!(out, "{}", place.timestamp)?,
                Piece::Headers => {
                    for (i, (name, value)) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(name.as_bytes())?;
                        if let Some(value) = value {
                            out.write_all(b"=")?;
                            out.write_all(value)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::TimestampType;

    fn record() -> Record {
        let mut headers = indexmap::IndexMap::new();
        headers.insert(StrBytes::from_static_str("trace"), Some(Bytes::from_static(b"abc")));
        headers.insert(StrBytes::from_static_str("flag"), None);
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 42,
            sequence: -1,
            timestamp: 1000,
            key: Some(Bytes::from_static(b"k1")),
            value: None,
            headers,
        }
    }

    fn render(format: &str) -> String {
        let place = Place {
            topic: "orders",
            partition: 3,
            timestamp: 1700,
        };
        let mut out = Vec::new();
        Format::parse(format)
            .unwrap()
            .write(&mut out, &place, &record())
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn placeholders_and_escapes() {
        assert_eq!(
            render("%t/%p@%o %T [%k|%K] [%s|%S] {%h} 100%%\\t\\\\\\n"),
            "orders/3@42 1700 [k1|2] [|-1] {trace=abc,flag} 100%\t\\\n"
        );
        assert_eq!(render("€%k"), "€k1");
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        assert!(Format::parse("%x").unwrap_err().to_string().contains("%x"));
        assert!(Format::parse("%").is_err());
        assert!(Format::parse("\\q").is_err());
        assert_eq!(Format::values().pieces, vec![Piece::Value, Piece::Text(b"\n".to_vec())]);
    }
}
