//! Config values: the parsers and checks topic and broker keys share, and the enums a
//! policy's value becomes. A leaf: it knows no key names.

use serde::{Deserialize, Serialize};

/// How the broker stamps record timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Which cleanups a topic's log gets (`cleanup.policy`): deletion by retention, compaction,
/// both, or (Kafka 4.2, KIP-1161) neither. Kept in the order given, as Kafka prints it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CleanupPolicy(Vec<Cleanup>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleanup {
    Delete,
    Compact,
}

impl CleanupPolicy {
    /// Retention deletes old segments.
    pub fn deletes(&self) -> bool {
        self.0.contains(&Cleanup::Delete)
    }

    /// The cleaner compacts closed segments.
    pub fn compacts(&self) -> bool {
        self.0.contains(&Cleanup::Compact)
    }
}

impl std::str::FromStr for CleanupPolicy {
    type Err = String;

    fn from_str(value: &str) -> Result<CleanupPolicy, String> {
        let mut kinds = Vec::new();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let kind = match part {
                "delete" => Cleanup::Delete,
                "compact" => Cleanup::Compact,
                _ => return Err(format!("{value:?} is not delete, compact, both or empty")),
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(CleanupPolicy(kinds))
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .0
            .iter()
            .map(|kind| match kind {
                Cleanup::Delete => "delete",
                Cleanup::Compact => "compact",
            })
            .collect();
        f.write_str(&names.join(","))
    }
}

/// `value` as a number of at least `min`.
pub(super) fn at_least<T>(value: &str, min: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let parsed: T = parse_num(value)?;
    if parsed < min {
        return Err(format!("{parsed} is below the minimum {min}"));
    }
    Ok(parsed)
}

/// `value` as a number in `[min, max]`.
pub(super) fn between<T>(value: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let parsed: T = parse_num(value)?;
    if parsed < min || parsed > max {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(parsed)
}

pub(super) fn parse_num<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a valid number"))
}

pub(super) fn long_at_least<const MIN: i64>(value: &str) -> Result<String, String> {
    let number: i64 = parse_num(value)?;
    if number < MIN {
        return Err(format!("{number} is below the minimum {MIN}"));
    }
    Ok(number.to_string())
}

pub(super) fn int_between<const MIN: i64, const MAX: i64>(value: &str) -> Result<String, String> {
    let number: i64 = parse_num(value)?;
    if !(MIN..=MAX).contains(&number) {
        return Err(format!("{number} is not between {MIN} and {MAX}"));
    }
    Ok(number.to_string())
}

pub(super) fn gzip_level(value: &str) -> Result<String, String> {
    let number: i64 = parse_num(value)?;
    if number != -1 && !(1..=9).contains(&number) {
        return Err(format!("{number} is not -1 or between 1 and 9"));
    }
    Ok(number.to_string())
}

pub(super) fn ratio(value: &str) -> Result<String, String> {
    let number: f64 = parse_num(value)?;
    if !(0.0..=1.0).contains(&number) {
        return Err(format!("{number} is not between 0 and 1"));
    }
    Ok(number.to_string())
}

pub(super) fn boolean(value: &str) -> Result<String, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok("true".into()),
        "false" => Ok("false".into()),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

pub(super) fn compression_type(value: &str) -> Result<String, String> {
    const COMPRESSION: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];
    let value = value.trim();
    if !COMPRESSION.contains(&value) {
        return Err(format!("{value:?} is not one of {COMPRESSION:?}"));
    }
    Ok(value.to_string())
}

/// `*`, or `partition:broker` pairs separated by commas, as Kafka's throttled-replica lists.
pub(super) fn throttled_replicas(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() || value == "*" {
        return Ok(value.to_string());
    }
    for pair in value.split(',').map(str::trim) {
        let well_formed = pair
            .split_once(':')
            .is_some_and(|(p, b)| p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
        if !well_formed {
            return Err(format!("{pair:?} is not PARTITION:BROKER"));
        }
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policies_parse_in_any_order_and_print_as_given() {
        let both: CleanupPolicy = "delete, compact".parse().unwrap();
        assert!(both.deletes() && both.compacts());
        assert_eq!(both.to_string(), "delete,compact");
        assert_eq!(
            "compact,delete".parse::<CleanupPolicy>().unwrap().to_string(),
            "compact,delete"
        );
        let none: CleanupPolicy = "".parse().unwrap();
        assert!(!none.deletes() && !none.compacts());
        assert!("delete,forever".parse::<CleanupPolicy>().is_err());
    }
}
