//! Text a client chose, made safe to log.

/// `text` with every control character written as an escape (`\u{1b}`, `\n`), so a string a
/// client chose cannot forge log lines or drive a terminal.
pub fn escape(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_others_kept() {
        assert_eq!(escape("plain café"), "plain café");
        assert_eq!(escape("a\u{1b}[31mred\nnext"), "a\\u{1b}[31mred\\nnext");
        assert_eq!(escape("nul\0"), "nul\\u{0}");
    }
}
