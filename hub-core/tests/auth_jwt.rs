//! Every kind of bad token the contract (§2) and RFC 8725 name, through the pure verifier
//! (`verify_with_keys`) and the async `JwtVerifier` with a JWKS file.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use hub_core::auth::{
    JwkSet, JwksError, JwtConfig, JwtError, JwtVerifier, KeySource, MAX_TOKEN_LEN, TestIssuer,
    Validation, parse_jwks, sign_raw, verify_with_keys,
};
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer as _;
use serde_json::{Value, json};
use sha2::Sha256;

const ISS: &str = "https://app.example";
const AUD: &str = "spell-coven";
const NOW: i64 = 1_800_000_000;

fn issuer() -> TestIssuer {
    TestIssuer::new("key-1")
}

fn keys(issuers: &[&TestIssuer]) -> JwkSet {
    parse_jwks(TestIssuer::jwks(issuers).as_bytes()).expect("jwks")
}

fn rules() -> Validation {
    Validation::new(ISS, AUD)
}

fn claims() -> Value {
    json!({ "iss": ISS, "aud": AUD, "sub": "user-1", "exp": NOW + 300, "iat": NOW })
}

fn check(token: &str) -> Result<hub_core::auth::Claims, JwtError> {
    verify_with_keys(token, &keys(&[&issuer()]), &rules(), NOW)
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().expect("object").remove(key);
    claims
}

/// A token with a hand-made header, signed by the test key.
fn with_header(header: &Value, claims: &Value) -> String {
    sign_raw(
        issuer().signing_key(),
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    )
}

fn es256_header() -> Value {
    json!({ "alg": "ES256", "kid": "key-1" })
}

fn replace_signature(token: &str, raw_sig: &[u8]) -> String {
    let cut = token.rfind('.').expect("dot");
    format!("{}.{}", &token[..cut], URL_SAFE_NO_PAD.encode(raw_sig))
}

fn signature_of(token: &str) -> Vec<u8> {
    let cut = token.rfind('.').expect("dot");
    URL_SAFE_NO_PAD.decode(&token[cut + 1..]).expect("b64")
}

#[test]
fn a_good_token_is_accepted() {
    let claims = check(&issuer().token(&claims())).expect("valid");
    assert_eq!(claims.sub, "user-1");
    assert_eq!(claims.exp, NOW + 300);
    assert_eq!(claims.iss, ISS);
}

#[test]
fn exp_is_required_numeric_and_checked_with_60s_leeway() {
    let at = |exp: Value| check(&issuer().token(&with(claims(), "exp", exp)));
    // Rejected when exp <= now - 60.
    assert_eq!(at(json!(NOW - 60)), Err(JwtError::Expired));
    assert!(at(json!(NOW - 59)).is_ok());
    assert_eq!(at(json!(NOW - 61)), Err(JwtError::Expired));
    assert_eq!(at(json!(NOW - 3600)), Err(JwtError::Expired));
    // Fractional seconds are allowed and rounded down (expiring up to 1 s early).
    assert!(at(json!(NOW as f64 - 58.5)).is_ok());
    assert_eq!(at(json!(NOW as f64 - 59.5)), Err(JwtError::Expired));
    assert_eq!(
        at(json!(format!("{}", NOW + 300))),
        Err(JwtError::InvalidClaim("exp"))
    );
    assert_eq!(at(json!(true)), Err(JwtError::InvalidClaim("exp")));
    assert_eq!(at(json!(1e30)), Err(JwtError::InvalidClaim("exp")));
    assert_eq!(at(json!(-5)), Err(JwtError::Expired));
    assert_eq!(at(Value::Null), Err(JwtError::MissingClaim("exp")));
    assert_eq!(
        check(&issuer().token(&without(claims(), "exp"))),
        Err(JwtError::MissingClaim("exp"))
    );
}

#[test]
fn nbf_is_checked_with_60s_leeway() {
    let at = |nbf: Value| check(&issuer().token(&with(claims(), "nbf", nbf)));
    assert!(at(json!(NOW)).is_ok());
    assert!(at(json!(NOW + 60)).is_ok());
    assert_eq!(at(json!(NOW + 61)), Err(JwtError::NotYetValid));
    assert_eq!(at(json!(NOW + 3600)), Err(JwtError::NotYetValid));
    assert_eq!(at(json!("soon")), Err(JwtError::InvalidClaim("nbf")));
    assert_eq!(
        check(&issuer().token(&with(claims(), "iat", json!("x")))),
        Err(JwtError::InvalidClaim("iat"))
    );
}

#[test]
fn issuer_and_audience_must_match() {
    let t = |c: Value| check(&issuer().token(&c));
    assert_eq!(
        t(with(claims(), "iss", json!("https://evil.example"))),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        t(with(claims(), "iss", json!("https://app.example/"))),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        t(without(claims(), "iss")),
        Err(JwtError::MissingClaim("iss"))
    );
    assert_eq!(
        t(with(claims(), "aud", json!("other"))),
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        t(with(claims(), "aud", json!(["a", "b"]))),
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        t(with(claims(), "aud", json!([]))),
        Err(JwtError::WrongAudience)
    );
    assert!(
        t(with(claims(), "aud", json!(["other", AUD]))).is_ok(),
        "array containing ours"
    );
    assert!(
        t(with(claims(), "aud", json!([1, AUD]))).is_err(),
        "non-string audiences"
    );
    assert_eq!(
        t(without(claims(), "aud")),
        Err(JwtError::MissingClaim("aud"))
    );
}

#[test]
fn sub_is_a_required_non_empty_string() {
    let t = |c: Value| check(&issuer().token(&c));
    assert_eq!(
        t(without(claims(), "sub")),
        Err(JwtError::MissingClaim("sub"))
    );
    assert_eq!(
        t(with(claims(), "sub", json!(""))),
        Err(JwtError::InvalidClaim("sub"))
    );
    assert!(t(with(claims(), "sub", json!(42))).is_err());
}

#[test]
fn only_es256_is_allowed() {
    for alg in [
        "none", "HS256", "RS256", "es256", "ES256K", "ES384", "EdDSA", "",
    ] {
        let token = with_header(&json!({ "alg": alg, "kid": "key-1" }), &claims());
        assert_eq!(
            check(&token),
            Err(JwtError::UnsupportedAlgorithm),
            "alg {alg}"
        );
    }
    let token = with_header(&json!({ "alg": ["ES256"] }), &claims());
    assert!(matches!(check(&token), Err(JwtError::Malformed(_))));
    let token = with_header(&json!({ "kid": "key-1" }), &claims());
    assert!(matches!(check(&token), Err(JwtError::Malformed(_))));
}

#[test]
fn alg_none_with_and_without_trailing_dot() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    assert_eq!(
        check(&format!("{header}.{payload}.")),
        Err(JwtError::UnsupportedAlgorithm)
    );
    assert!(matches!(
        check(&format!("{header}.{payload}")),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn hs256_keyed_with_the_public_key_is_rejected() {
    // The classic algorithm confusion: MAC with the published key bytes as the secret.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"key-1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    let input = format!("{header}.{payload}");
    let secrets = [
        TestIssuer::jwks(&[&issuer()]).into_bytes(),
        issuer().jwk().to_string().into_bytes(),
    ];
    for secret in secrets {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("hmac key");
        mac.update(input.as_bytes());
        let token = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(check(&token), Err(JwtError::UnsupportedAlgorithm));
    }
}

#[test]
fn crit_and_b64_headers_are_rejected() {
    for extra in [
        json!({"crit": ["exp"]}),
        json!({"crit": []}),
        json!({"crit": null}),
        json!({"b64": false}),
    ] {
        let mut header = es256_header();
        for (k, v) in extra.as_object().expect("object") {
            header[k] = v.clone();
        }
        assert_eq!(
            check(&with_header(&header, &claims())),
            Err(JwtError::CriticalHeader),
            "{extra}"
        );
    }
}

#[test]
fn embedded_keys_in_the_header_are_ignored() {
    // An attacker signs with their own key and embeds it; we only use the JWKS.
    let attacker = TestIssuer::new("key-1-attacker");
    for member in ["jwk", "jku", "x5u", "x5c"] {
        let value = if member == "jwk" {
            attacker.jwk()
        } else {
            json!("https://evil.example/keys")
        };
        let header = json!({ "alg": "ES256", "kid": "key-1", member: value });
        let token = sign_raw(
            attacker.signing_key(),
            header.to_string().as_bytes(),
            claims().to_string().as_bytes(),
        );
        assert_eq!(check(&token), Err(JwtError::BadSignature), "{member}");
        // And when our own key signed it, the header member does not get in the way.
        assert!(check(&with_header(&header, &claims())).is_ok(), "{member}");
    }
}

#[test]
fn duplicate_members_are_rejected() {
    let header = br#"{"alg":"ES256","kid":"key-1","alg":"none"}"#;
    let token = sign_raw(
        issuer().signing_key(),
        header,
        claims().to_string().as_bytes(),
    );
    assert!(matches!(check(&token), Err(JwtError::Malformed(_))));
    let payload = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"a","exp":{},"exp":{}}}"#,
        NOW + 10,
        NOW + 9999
    );
    let token = sign_raw(
        issuer().signing_key(),
        es256_header().to_string().as_bytes(),
        payload.as_bytes(),
    );
    assert!(matches!(check(&token), Err(JwtError::Malformed(_))));
}

#[test]
fn header_and_payload_must_be_json_objects() {
    let key = issuer();
    let token = sign_raw(
        key.signing_key(),
        br#"["ES256"]"#,
        claims().to_string().as_bytes(),
    );
    assert!(matches!(check(&token), Err(JwtError::Malformed(_))));
    let arr = json!([ISS, AUD, NOW + 300, 0, 0, "user-1"]).to_string();
    let token = sign_raw(
        key.signing_key(),
        es256_header().to_string().as_bytes(),
        arr.as_bytes(),
    );
    assert!(matches!(check(&token), Err(JwtError::Malformed(_))));
    let token = sign_raw(
        key.signing_key(),
        es256_header().to_string().as_bytes(),
        b"\xff\xfe",
    );
    assert!(matches!(check(&token), Err(JwtError::Malformed(_))));
    let token = sign_raw(key.signing_key(), b"\xff{", claims().to_string().as_bytes());
    assert!(matches!(check(&token), Err(JwtError::Malformed(_))));
}

#[test]
fn kid_must_resolve_to_exactly_one_key() {
    let (a, b) = (TestIssuer::new("a"), TestIssuer::new("b"));
    let both = keys(&[&a, &b]);
    let rules = rules();
    assert!(verify_with_keys(&a.token(&claims()), &both, &rules, NOW).is_ok());
    assert!(verify_with_keys(&b.token(&claims()), &both, &rules, NOW).is_ok());
    let stranger = TestIssuer::new("c");
    assert_eq!(
        verify_with_keys(&stranger.token(&claims()), &both, &rules, NOW),
        Err(JwtError::UnknownKey)
    );

    // Without kid: accepted only when the set has exactly one key.
    let no_kid = sign_raw(
        a.signing_key(),
        br#"{"alg":"ES256"}"#,
        claims().to_string().as_bytes(),
    );
    assert!(verify_with_keys(&no_kid, &keys(&[&a]), &rules, NOW).is_ok());
    assert_eq!(
        verify_with_keys(&no_kid, &both, &rules, NOW),
        Err(JwtError::UnknownKey)
    );

    // kid is matched exactly (no case folding) and length-capped.
    let upper = sign_raw(
        a.signing_key(),
        br#"{"alg":"ES256","kid":"A"}"#,
        claims().to_string().as_bytes(),
    );
    assert_eq!(
        verify_with_keys(&upper, &both, &rules, NOW),
        Err(JwtError::UnknownKey)
    );
    let long = json!({ "alg": "ES256", "kid": "k".repeat(300) });
    assert!(matches!(
        check(&with_header(&long, &claims())),
        Err(JwtError::Malformed(_))
    ));

    // Two keys with the same kid: ambiguous, refused.
    let twin = TestIssuer::new("a");
    let mut jwks: Value = serde_json::from_str(&TestIssuer::jwks(&[&a, &b])).expect("json");
    let mut dup = b.jwk();
    dup["kid"] = json!("a");
    jwks["keys"].as_array_mut().expect("array").push(dup);
    let dup_set = parse_jwks(jwks.to_string().as_bytes()).expect("parses");
    assert_eq!(
        verify_with_keys(&twin.token(&claims()), &dup_set, &rules, NOW),
        Err(JwtError::AmbiguousKey)
    );
}

#[test]
fn tampering_is_detected() {
    let token = issuer().token(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let evil = URL_SAFE_NO_PAD.encode(with(claims(), "sub", json!("admin")).to_string());
    assert_eq!(
        check(&format!("{}.{evil}.{}", parts[0], parts[2])),
        Err(JwtError::BadSignature)
    );
    let mut sig = signature_of(&token);
    sig[10] ^= 1;
    assert_eq!(
        check(&replace_signature(&token, &sig)),
        Err(JwtError::BadSignature)
    );
    // Another key's signature over the same content.
    let other = TestIssuer::new("key-2");
    let forged = sign_raw(
        other.signing_key(),
        es256_header().to_string().as_bytes(),
        claims().to_string().as_bytes(),
    );
    assert_eq!(check(&forged), Err(JwtError::BadSignature));
}

#[test]
fn signature_must_be_64_raw_bytes_in_range() {
    let token = issuer().token(&claims());
    let sig = signature_of(&token);
    let parsed = Signature::from_slice(&sig).expect("sig");
    let der = parsed.to_der();
    assert_eq!(
        check(&replace_signature(&token, der.as_bytes())),
        Err(JwtError::MalformedSignature)
    );
    assert_eq!(
        check(&replace_signature(&token, &sig[..63])),
        Err(JwtError::MalformedSignature)
    );
    let mut long = sig.clone();
    long.push(0);
    assert_eq!(
        check(&replace_signature(&token, &long)),
        Err(JwtError::MalformedSignature)
    );
    assert_eq!(
        check(&replace_signature(&token, &[])),
        Err(JwtError::MalformedSignature)
    );
    // CVE-2022-21449 "psychic signature": r = s = 0.
    assert_eq!(
        check(&replace_signature(&token, &[0; 64])),
        Err(JwtError::MalformedSignature)
    );
    let psychic = format!("{}.MAYCAQACAQA", &token[..token.rfind('.').expect("dot")]);
    assert_eq!(check(&psychic), Err(JwtError::MalformedSignature));
    // r = n (out of range).
    let n = hex32("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let mut r_is_n = n.to_vec();
    r_is_n.extend_from_slice(&sig[32..]);
    assert_eq!(
        check(&replace_signature(&token, &r_is_n)),
        Err(JwtError::MalformedSignature)
    );
}

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

#[test]
fn high_s_signatures_are_valid() {
    // ECDSA does not require low-S; WebCrypto/OpenSSL signers emit high-S half the time.
    let key = issuer();
    let token = key.token(&claims());
    let sig = Signature::from_slice(&signature_of(&token)).expect("sig");
    let (r, s) = sig.split_scalars();
    let flipped = Signature::from_scalars(r, -*s).expect("sig");
    assert_ne!(flipped, sig);
    let high_s_token = replace_signature(&token, &flipped.to_bytes());
    assert!(
        check(&high_s_token).is_ok(),
        "the (r, n - s) twin verifies too"
    );
    // Whichever one the signer produced, one of the two is the high-S form.
    assert!(sig.normalize_s().is_some() || flipped.normalize_s().is_some());
}

#[test]
fn encoding_must_be_strict() {
    let token = issuer().token(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    // Segment counts.
    assert!(matches!(
        check(&format!("{}.{}", parts[0], parts[1])),
        Err(JwtError::Malformed(_))
    ));
    assert!(matches!(
        check(&format!("{token}.")),
        Err(JwtError::Malformed(_))
    ));
    assert!(matches!(
        check(&format!("{token}.{}", parts[2])),
        Err(JwtError::Malformed(_))
    ));
    assert!(check("").is_err());
    assert!(check("..").is_err());
    assert!(check("garbage").is_err());
    assert!(check("a.b.c").is_err());
    assert!(check("\u{0}\u{1}.\u{2}.é").is_err());
    // Padding, standard alphabet, whitespace.
    let padded = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
    assert!(check(&padded).is_err());
    let padded_sig = format!("{token}==");
    assert!(check(&padded_sig).is_err());
    let std_alphabet = token.replace('-', "+").replace('_', "/");
    if std_alphabet != token {
        assert!(check(&std_alphabet).is_err());
    }
    assert!(check(&format!(" {token}")).is_err());
    assert!(check(&format!("{token}\n")).is_err());
}

#[test]
fn non_canonical_base64_is_rejected() {
    // A 64-byte signature is 86 chars; the last char carries 2 unused bits that must be 0.
    let token = issuer().token(&claims());
    let last = token.chars().last().expect("char");
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).expect("in alphabet");
    assert_eq!(index % 16, 0, "canonical encoding has zero trailing bits");
    let bumped = alphabet.as_bytes()[index + 1] as char;
    let mut tweaked = token.clone();
    tweaked.pop();
    tweaked.push(bumped);
    assert_eq!(check(&tweaked), Err(JwtError::MalformedSignature));
}

#[test]
fn oversized_tokens_are_rejected_before_parsing() {
    assert_eq!(
        check(&"a".repeat(MAX_TOKEN_LEN + 1)),
        Err(JwtError::TooLarge)
    );
    assert_eq!(check(&"a".repeat(1 << 20)), Err(JwtError::TooLarge));
    let big = with(claims(), "pad", json!("x".repeat(MAX_TOKEN_LEN)));
    assert_eq!(check(&issuer().token(&big)), Err(JwtError::TooLarge));
    let fits = with(claims(), "pad", json!("x".repeat(4000)));
    assert!(check(&issuer().token(&fits)).is_ok());
}

#[test]
fn jwks_with_private_key_or_bad_points_is_rejected() {
    let mut jwk = issuer().jwk();
    jwk["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let doc = json!({ "keys": [jwk] }).to_string();
    assert_eq!(parse_jwks(doc.as_bytes()), Err(JwksError::PrivateKey));

    let mut off_curve = issuer().jwk();
    off_curve["y"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
    assert!(matches!(
        parse_jwks(json!({ "keys": [off_curve] }).to_string().as_bytes()),
        Err(JwksError::Invalid(_))
    ));

    let mut short = issuer().jwk();
    short["x"] = json!(URL_SAFE_NO_PAD.encode([1u8; 31]));
    assert!(matches!(
        parse_jwks(json!({ "keys": [short] }).to_string().as_bytes()),
        Err(JwksError::Invalid(_))
    ));

    let mut padded = issuer().jwk();
    padded["x"] = json!(format!("{}=", padded["x"].as_str().expect("x")));
    assert!(matches!(
        parse_jwks(json!({ "keys": [padded] }).to_string().as_bytes()),
        Err(JwksError::Invalid(_))
    ));
}

#[test]
fn jwks_key_selection_skips_foreign_keys() {
    let good = issuer().jwk();
    let rsa = json!({ "kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB" });
    let p384 = json!({ "kty": "EC", "crv": "P-384", "kid": "p", "x": "AA", "y": "AA" });
    let mut wrong_alg = TestIssuer::new("w").jwk();
    wrong_alg["alg"] = json!("ES384");
    let mut enc = TestIssuer::new("e").jwk();
    enc["use"] = json!("enc");
    let mut ops = TestIssuer::new("o").jwk();
    ops["key_ops"] = json!(["sign"]);
    let doc = json!({ "keys": [rsa, p384, wrong_alg, enc, ops, good] }).to_string();
    let set = parse_jwks(doc.as_bytes()).expect("parses");
    assert_eq!(set.keys().len(), 1);
    assert_eq!(set.keys()[0].kid(), Some("key-1"));

    assert_eq!(parse_jwks(br#"{"keys":[]}"#), Err(JwksError::NoUsableKeys));
    let only_rsa = json!({ "keys": [{ "kty": "RSA", "n": "AQAB", "e": "AQAB" }] }).to_string();
    assert_eq!(
        parse_jwks(only_rsa.as_bytes()),
        Err(JwksError::NoUsableKeys)
    );
    let many: Vec<Value> = (0..33)
        .map(|i| TestIssuer::new(&format!("k{i}")).jwk())
        .collect();
    assert_eq!(
        parse_jwks(json!({ "keys": many }).to_string().as_bytes()),
        Err(JwksError::TooManyKeys)
    );
    assert!(matches!(parse_jwks(b"[]"), Err(JwksError::Invalid(_))));
    assert!(matches!(parse_jwks(b"{}"), Err(JwksError::Invalid(_))));
    assert!(matches!(
        parse_jwks(b"not json"),
        Err(JwksError::Invalid(_))
    ));
}

#[test]
fn errors_never_contain_the_token() {
    let token = issuer().token(&with(claims(), "exp", json!(NOW - 1000)));
    let err = check(&token).expect_err("expired");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text.contains(&token[..20]) && !text.contains("user-1"),
            "{text}"
        );
    }
    let key = issuer();
    let sig: Signature = key.signing_key().sign(b"x");
    assert!(!format!("{key:?}").contains(&hex(&sig.to_bytes())));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// --- the async verifier with a JWKS file -------------------------------------------------

fn file_verifier(
    dir: &tempfile::TempDir,
    issuers: &[&TestIssuer],
) -> (JwtVerifier, std::path::PathBuf) {
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, TestIssuer::jwks(issuers)).expect("write jwks");
    let cfg = JwtConfig {
        issuer: ISS.into(),
        audience: AUD.into(),
        keys: KeySource::File(path.clone()),
    };
    (JwtVerifier::new(cfg).expect("verifier"), path)
}

#[tokio::test]
async fn file_source_verifies_and_caches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = issuer();
    let (verifier, _) = file_verifier(&dir, &[&key]);
    verifier.load_at(NOW).await.expect("load");
    let token = key.token(&claims());
    assert_eq!(
        verifier.verify(&token, NOW).await.expect("ok").sub,
        "user-1"
    );
    assert_eq!(verifier.cached_tokens(), 1);
    // A cache hit still enforces exp (with the same leeway).
    assert!(verifier.verify(&token, NOW + 300 + 59).await.is_ok());
    assert_eq!(
        verifier.verify(&token, NOW + 300 + 60).await,
        Err(JwtError::Expired)
    );
    assert_eq!(verifier.cached_tokens(), 0, "the expired entry is dropped");
    // Bad tokens are not cached.
    assert!(verifier.verify("a.b.c", NOW).await.is_err());
    assert_eq!(verifier.key_store().fetch_count(), 1);
}

#[tokio::test]
async fn file_source_picks_up_a_new_kid_after_the_cooldown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) = (TestIssuer::new("old"), TestIssuer::new("new"));
    let (verifier, path) = file_verifier(&dir, &[&old]);
    verifier.load_at(NOW).await.expect("load");
    std::fs::write(&path, TestIssuer::jwks(&[&old, &new])).expect("rotate");
    // Within the 30 s cooldown of the load, an unknown kid does not re-read.
    assert_eq!(
        verifier.verify(&new.token(&claims()), NOW + 10).await,
        Err(JwtError::UnknownKey)
    );
    assert_eq!(verifier.key_store().fetch_count(), 1);
    assert!(
        verifier
            .verify(&new.token(&claims()), NOW + 30)
            .await
            .is_ok()
    );
    assert_eq!(verifier.key_store().fetch_count(), 2);
}

#[tokio::test]
async fn missing_file_fails_load_and_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = JwtConfig {
        issuer: ISS.into(),
        audience: AUD.into(),
        keys: KeySource::File(dir.path().join("absent.json")),
    };
    let verifier = JwtVerifier::new(cfg).expect("verifier");
    assert!(matches!(verifier.load_at(NOW).await, Err(JwksError::Io(_))));
    assert_eq!(
        verifier.verify(&issuer().token(&claims()), NOW + 100).await,
        Err(JwtError::KeysUnavailable)
    );
}

#[tokio::test]
async fn oversized_file_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (verifier, path) = file_verifier(&dir, &[&issuer()]);
    std::fs::write(&path, vec![b' '; 64 * 1024 + 1]).expect("write");
    assert_eq!(verifier.load_at(NOW).await, Err(JwksError::TooLarge));
}

#[test]
fn random_mutations_never_panic_and_never_verify() {
    // A seeded mutation loop (deterministic): flip, insert, delete and truncate bytes of a
    // valid token. Nothing may panic, and only the untouched token may verify.
    let keys = keys(&[&issuer()]);
    let rules = rules();
    let token = issuer().token(&claims());
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ {}\"";
    for _ in 0..1000 {
        let mut bytes = token.clone().into_bytes();
        for _ in 0..rng.usize(1..4) {
            let at = rng.usize(..bytes.len());
            match rng.u8(..4) {
                0 => bytes[at] = alphabet[rng.usize(..alphabet.len())],
                1 => bytes.insert(at, alphabet[rng.usize(..alphabet.len())]),
                2 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
            if bytes.is_empty() {
                break;
            }
        }
        let Ok(mutated) = String::from_utf8(bytes) else {
            continue;
        };
        let result = verify_with_keys(&mutated, &keys, &rules, NOW);
        if mutated != token {
            assert!(result.is_err(), "mutation verified: {mutated}");
        }
    }
}

#[tokio::test]
async fn debug_output_shows_no_claims_or_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = issuer();
    let (verifier, _) = file_verifier(&dir, &[&key]);
    verifier.load_at(NOW).await.expect("load");
    let token = key.token(&with(claims(), "sub", json!("secret-user-id")));
    verifier.verify(&token, NOW).await.expect("ok");
    let debug = format!("{verifier:?}");
    let parsed = hub_core::auth::parse_jws(&token).expect("parses");
    let parsed_debug = format!("{parsed:?}");
    assert!(parsed_debug.contains("key-1") && !parsed_debug.contains(&token[..30]));
    assert!(
        !debug.contains("secret-user-id") && !debug.contains(&token[..30]),
        "{debug}"
    );
}
