//! Small text helpers for what people read: a length bound that cuts on a
//! character boundary, and a scrub of text another party wrote (the portal's
//! messages), which could echo a secret back.

/// `text` cut to `max_chars` characters (with "..." when cut).
pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Removes what could be a secret echoed back (long runs of key-like
/// characters) and bounds the length of a text another party wrote.
pub fn scrub(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 24 {
            out.push_str("***");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '/' | '+' | '=') {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    truncate(&out, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_cuts_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "hé...");
        assert_eq!(truncate("hi", 5), "hi");
    }

    #[test]
    fn scrub_hides_key_like_runs() {
        let echoed = "bad key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY for AKIA1234";
        assert_eq!(scrub(echoed), "bad key *** for AKIA1234");
        assert_eq!(scrub("name already exists"), "name already exists");
    }
}
