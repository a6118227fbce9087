//! Topic name rules, as Kafka enforces them.

use crate::constants::TOPIC_NAME_BYTES_MAX;

/// Kafka's rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_BYTES_MAX} characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Names equal once '.' is read as '_' collide (Kafka's metric names cannot tell them apart).
pub fn collides(existing: &str, new: &str) -> bool {
    existing != new && existing.len() == new.len() && existing.replace('.', "_") == new.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_name_rules() {
        for good in ["a", "orders.v1", "A_b-c", &"x".repeat(249)] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "has space", "slash/", "ünï", &"x".repeat(250)] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dot_and_underscore_collide() {
        assert!(collides("a.b", "a_b"));
        assert!(!collides("a.b", "a.b"));
        assert!(!collides("a.b", "a.c"));
    }
}
