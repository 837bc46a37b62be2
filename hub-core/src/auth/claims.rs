//! JWT claims: parsing and validation of `iss`, `aud`, `exp`, `nbf`, `iat`, `sub`
//! (RFC 7519 §4.1; checks mirror jose's `jwt_claims_set`).

use serde::Deserialize;
use serde::de::Deserializer;

use super::error::JwtError;

/// Default clock leeway for `exp` and `nbf`, in seconds (contract §2: at most 60 s).
pub const DEFAULT_LEEWAY_SECS: i64 = 60;

/// The verified claims of an accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user id (`sub`), never empty.
    pub sub: String,
    /// Expiry, unix seconds (`exp`; a fractional value is rounded down, so such a token
    /// expires up to one second early).
    pub exp: i64,
    /// The issuer (`iss`), equal to the configured issuer.
    pub iss: String,
}

/// What a token's claims must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// Expected `iss`, compared exactly (RFC 8725 §3.8).
    pub issuer: String,
    /// Our audience: `aud` must equal it or be an array containing it (RFC 8725 §3.9).
    pub audience: String,
    /// Clock leeway for `exp` and `nbf`, seconds.
    pub leeway_secs: i64,
}

impl Validation {
    /// A validation for this issuer and audience with the default 60 s leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    /// Whether a token with this `exp` is still acceptable at `now`:
    /// RFC 7519 §4.1.4 with leeway, rejected when `exp <= now - leeway`.
    pub fn exp_ok(&self, exp: i64, now: i64) -> bool {
        exp > now.saturating_sub(self.leeway_secs)
    }
}

/// The claims we read. serde's derive rejects duplicate members (RFC 7515 §4 allows that).
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<NumericDate>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<NumericDate>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<NumericDate>,
    #[serde(default)]
    sub: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds; `Err` when it is a number that is
/// not finite, out of range or not a number at all, so that the claim name can be reported.
type NumericDate = Result<i64, ()>;

fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NumericDate>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(Some(number_to_secs(&n))),
        // A string, bool, array or object: reported as an invalid claim, not a parse error.
        Some(_) => Ok(Some(Err(()))),
    }
}

fn number_to_secs(n: &serde_json::Number) -> NumericDate {
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    // Fractional seconds are allowed (RFC 7519 §2); anything beyond i64 is nonsense.
    match n.as_f64() {
        Some(f) if (-9.0e15..=9.0e15).contains(&f) =>
        {
            #[allow(clippy::cast_possible_truncation, reason = "range checked above")]
            Ok(f.floor() as i64)
        }
        _ => Err(()),
    }
}

/// Parses and validates a JWT payload (the decoded JSON bytes) at `now` (unix seconds).
///
/// Pure, so fuzz targets and tests can call it without keys.
///
/// # Errors
/// [`JwtError::Malformed`] when the payload is not a JSON object of the right types (also a
/// non-numeric `exp`/`nbf`/`iat`, or a duplicate claim), [`JwtError::InvalidClaim`] for a
/// numeric date out of range or an empty `sub`, [`JwtError::MissingClaim`],
/// [`JwtError::WrongIssuer`], [`JwtError::WrongAudience`], [`JwtError::Expired`],
/// [`JwtError::NotYetValid`].
pub fn validate_claims(payload: &[u8], rules: &Validation, now: i64) -> Result<Claims, JwtError> {
    if !is_json_object(payload) {
        return Err(JwtError::Malformed("payload is not a json object"));
    }
    let raw: RawClaims = serde_json::from_slice(payload)
        .map_err(|_| JwtError::Malformed("payload is not valid claims json"))?;

    let exp = raw
        .exp
        .ok_or(JwtError::MissingClaim("exp"))?
        .map_err(|()| JwtError::InvalidClaim("exp"))?;
    let nbf = raw
        .nbf
        .transpose()
        .map_err(|()| JwtError::InvalidClaim("nbf"))?;
    raw.iat
        .transpose()
        .map_err(|()| JwtError::InvalidClaim("iat"))?;

    let iss = raw.iss.ok_or(JwtError::MissingClaim("iss"))?;
    if iss != rules.issuer {
        return Err(JwtError::WrongIssuer);
    }
    let audience_ok = match raw.aud.ok_or(JwtError::MissingClaim("aud"))? {
        Audience::One(aud) => aud == rules.audience,
        Audience::Many(auds) => auds.contains(&rules.audience),
    };
    if !audience_ok {
        return Err(JwtError::WrongAudience);
    }
    if !rules.exp_ok(exp, now) {
        return Err(JwtError::Expired);
    }
    // RFC 7519 §4.1.5 with leeway: rejected when nbf > now + leeway.
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(rules.leeway_secs)) {
        return Err(JwtError::NotYetValid);
    }
    let sub = raw.sub.ok_or(JwtError::MissingClaim("sub"))?;
    if sub.is_empty() {
        return Err(JwtError::InvalidClaim("sub"));
    }
    Ok(Claims { sub, exp, iss })
}

/// Whether `json` starts (after whitespace) with `{`: serde's struct derive would also accept
/// a JSON array, which RFC 7515 §4 and RFC 7519 §7.2 do not allow.
pub(crate) fn is_json_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_boundary_follows_jose() {
        let rules = Validation::new("i", "a");
        // Rejected when exp <= now - leeway.
        assert!(!rules.exp_ok(1000 - 60, 1000));
        assert!(rules.exp_ok(1000 - 59, 1000));
        assert!(rules.exp_ok(i64::MAX, i64::MIN));
        assert!(!rules.exp_ok(i64::MIN, i64::MIN + 60));
    }

    #[test]
    fn numeric_dates() {
        let n = |v: serde_json::Value| match v {
            serde_json::Value::Number(n) => number_to_secs(&n),
            _ => Err(()),
        };
        assert_eq!(n(serde_json::json!(12)), Ok(12));
        assert_eq!(n(serde_json::json!(12.9)), Ok(12));
        assert_eq!(n(serde_json::json!(-0.5)), Ok(-1));
        assert_eq!(n(serde_json::json!(1e300)), Err(()));
        assert_eq!(n(serde_json::json!(u64::MAX)), Err(()));
    }

    #[test]
    fn only_objects_are_claims() {
        assert!(is_json_object(b" \n{}"));
        assert!(!is_json_object(b"[]"));
        assert!(!is_json_object(b""));
        let rules = Validation::new("i", "a");
        assert!(matches!(
            validate_claims(b"[\"i\"]", &rules, 0),
            Err(JwtError::Malformed(_))
        ));
        assert!(matches!(
            validate_claims(b"{} x", &rules, 0),
            Err(JwtError::Malformed(_))
        ));
    }
}
