//! Messages a client sends: the first one must be `{"type":"auth","token":..,"since"?:n}`.

use serde::Deserialize;

/// A parsed `auth` message.
#[derive(PartialEq, Eq)]
pub struct AuthMessage {
    /// The JWT (never logged).
    pub token: String,
    /// The last seq the client saw, if it resumes.
    pub since: Option<u64>,
}

impl std::fmt::Debug for AuthMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthMessage")
            .field("token", &"***")
            .field("since", &self.since)
            .finish()
    }
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "type")]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    since: Option<serde_json::Value>,
}

/// Parses the first message. `None` when it is not JSON, not of type `auth`, or has no
/// string `token`: the session closes with 4401 (an auth message that cannot be an auth
/// is treated like an invalid token). Other fields (e.g. a client-supplied guild) are
/// ignored (contract §3.1). A `since` that is not a non-negative integer is ignored: the
/// client gets a snapshot, which is always correct.
pub fn parse_auth(text: &str) -> Option<AuthMessage> {
    let raw: Raw<'_> = serde_json::from_str(text).ok()?;
    if raw.kind != "auth" {
        return None;
    }
    Some(AuthMessage {
        token: raw.token?,
        since: raw.since.as_ref().and_then(serde_json::Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_auth_messages() {
        assert_eq!(
            parse_auth(r#"{"type":"auth","token":"t","since":5,"guildId":"9"}"#),
            Some(AuthMessage {
                token: "t".into(),
                since: Some(5)
            })
        );
        assert_eq!(
            parse_auth(r#"{"type":"auth","token":"t","since":-1}"#).map(|a| a.since),
            Some(None)
        );
        assert_eq!(parse_auth(r#"{"type":"auth"}"#), None);
        assert_eq!(parse_auth(r#"{"type":"hello","token":"t"}"#), None);
        assert_eq!(parse_auth("not json"), None);
        // An ignored field is skipped, never converted: a number no f64 can hold is fine
        // there (found by the ws_client_message fuzz target); in `since` it is refused.
        assert_eq!(
            parse_auth(r#"{"type":"auth","token":"t","x":-1.5E555}"#).map(|a| a.since),
            Some(None)
        );
        assert_eq!(
            parse_auth(r#"{"type":"auth","token":"t","since":1E555}"#),
            None
        );
        assert!(
            !format!("{:?}", parse_auth(r#"{"type":"auth","token":"secret"}"#)).contains("secret")
        );
    }
}
