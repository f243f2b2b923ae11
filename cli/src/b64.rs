//! Standard base64, decoded (no dependency for 30 lines).

/// Standard base64 (Lambda's LogResult, a HAR's encoded content), as text.
pub fn decode(text: &str) -> Option<String> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut bytes = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let got = chunk.len() * 6 / 8;
        bytes.extend_from_slice(&n.to_be_bytes()[1..1 + got]);
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_padded_and_unpadded() {
        assert_eq!(decode("aGVhbHRoeQ==").as_deref(), Some("healthy"));
        assert_eq!(decode("YWI=").as_deref(), Some("ab"));
        assert_eq!(decode("YWJj").as_deref(), Some("abc"));
        assert!(decode("!!").is_none());
    }
}
