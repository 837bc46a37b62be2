//! The `X-Audit-Log-Reason` header value.
//!
//! Discord (`developers/resources/audit-log.mdx`, "Audit Log Reason"): the header takes
//! 1–512 URL-encoded UTF-8 characters. The reason contains the user's `sub`, which is user
//! data, so every byte outside the RFC 3986 unreserved set is percent-encoded (this also keeps
//! CR/LF out of the header) and the result is cut at a character boundary to 512.

use http::HeaderValue;

/// The longest audit-log reason Discord accepts, in (encoded) characters.
const MAX_LEN: usize = 512;

/// `"{action} by {sub}"`, percent-encoded and capped at 512 characters.
pub fn audit_reason(action: &str, sub: &str) -> HeaderValue {
    let text = format!("{action} by {sub}");
    let mut out = String::with_capacity(text.len().min(MAX_LEN));
    let mut buf = [0u8; 4];
    'chars: for c in text.chars() {
        let mut piece = String::new();
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                piece.push(char::from(b));
            } else {
                piece.push_str(&format!("%{b:02X}"));
            }
        }
        if out.len() + piece.len() > MAX_LEN {
            break 'chars; // Never cut inside a percent-encoded UTF-8 sequence.
        }
        out.push_str(&piece);
    }
    // Only ASCII unreserved characters and `%XX` remain, always a valid header value.
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("spell-coven"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_user_data() {
        let v = audit_reason("room created", "user:1\r\nX-Evil: 1");
        assert_eq!(v, "room%20created%20by%20user%3A1%0D%0AX-Evil%3A%201");
    }

    #[test]
    fn caps_at_512_without_splitting_a_sequence() {
        let v = audit_reason("room created", &"é".repeat(400));
        let s = v.to_str().unwrap();
        assert!(s.len() <= 512);
        assert!(s.ends_with("%C3%A9"));
    }
}
