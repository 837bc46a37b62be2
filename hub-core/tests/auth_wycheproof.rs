//! Wycheproof vectors through the verifier's signature path.
//!
//! - ECDSA P-256/SHA-256 in IEEE P1363 form (`r‖s`, the JWS encoding): every key goes
//!   through our JWK parser, every signature through `decode_signature` +
//!   `verify_signature`. `valid` must verify, `invalid` must fail; the set has no
//!   `acceptable` case (checked, so a future upstream change is noticed).
//! - The JWS ES256 group (C2SP/wycheproof `json_web_signature_test.json`, tcId 18–32,
//!   copied in `testdata/`) through `verify_jws`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hub_core::auth::{JwtError, decode_signature, parse_jwks, verify_jws, verify_signature};
use wycheproof::TestResult;
use wycheproof::ecdsa::{TestName, TestSet};

#[test]
fn ecdsa_p256_sha256_p1363_vectors() {
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).expect("vectors load");
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        let point: &[u8] = &group.key.key;
        assert_eq!(point.len(), 65, "uncompressed point");
        let jwks = serde_json::json!({ "keys": [{
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        }]});
        let keys = parse_jwks(jwks.to_string().as_bytes()).expect("wycheproof key parses");
        let key = keys.keys()[0].verifying_key();
        for test in &group.tests {
            let outcome =
                decode_signature(&test.sig).and_then(|sig| verify_signature(key, &test.msg, &sig));
            match test.result {
                TestResult::Valid => {
                    valid += 1;
                    assert_eq!(
                        outcome,
                        Ok(()),
                        "tcId {} ({}) must verify",
                        test.tc_id,
                        test.comment
                    );
                }
                TestResult::Invalid => {
                    invalid += 1;
                    assert!(
                        outcome.is_err(),
                        "tcId {} ({}) must fail",
                        test.tc_id,
                        test.comment
                    );
                }
                TestResult::Acceptable => {
                    panic!(
                        "tcId {}: no acceptable case expected in this set",
                        test.tc_id
                    )
                }
            }
        }
    }
    assert!(
        valid > 0 && invalid > 0,
        "ran {valid} valid and {invalid} invalid"
    );
    assert_eq!(valid + invalid, set.number_of_tests);
}

#[derive(serde::Deserialize)]
struct JwsFile {
    public: serde_json::Value,
    tests: Vec<JwsCase>,
}

#[derive(serde::Deserialize)]
struct JwsCase {
    #[serde(rename = "tcId")]
    tc_id: u32,
    comment: String,
    jws: String,
    result: String,
}

#[test]
fn jws_es256_vectors() {
    let file: JwsFile = serde_json::from_str(include_str!("../testdata/wycheproof-jws-es256.json"))
        .expect("testdata parses");
    let jwks = serde_json::json!({ "keys": [file.public] }).to_string();
    let keys = parse_jwks(jwks.as_bytes()).expect("key parses");
    assert_eq!(file.tests.len(), 15);
    for case in &file.tests {
        let outcome = verify_jws(&case.jws, &keys);
        match case.result.as_str() {
            "valid" => assert_eq!(
                outcome,
                Ok(b"foo".to_vec()),
                "tcId {} {}",
                case.tc_id,
                case.comment
            ),
            "invalid" => assert!(
                outcome.is_err(),
                "tcId {} {} must fail",
                case.tc_id,
                case.comment
            ),
            other => panic!("tcId {}: unexpected result {other}", case.tc_id),
        }
    }
    // The specific reasons for the attack cases.
    let by_id = |id| &file.tests.iter().find(|c| c.tc_id == id).expect("case").jws;
    assert_eq!(
        verify_jws(by_id(31), &keys),
        Err(JwtError::UnsupportedAlgorithm)
    );
    // tcId 32 embeds an attacker's jwk in the header; it is ignored, so the real key fails.
    assert_eq!(verify_jws(by_id(32), &keys), Err(JwtError::BadSignature));
    assert_eq!(verify_jws(by_id(19), &keys), Err(JwtError::BadSignature));
}

/// RFC 7515 Appendix A.3: the ES256 worked example (key without `kid`, token without `kid`).
#[test]
fn rfc7515_a3_es256_example() {
    let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    let keys = parse_jwks(jwks.as_bytes()).expect("key parses");
    let token = concat!(
        "eyJhbGciOiJFUzI1NiJ9",
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
        ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
    );
    let payload = verify_jws(token, &keys).expect("the RFC example verifies");
    assert_eq!(
        payload,
        b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"
    );
    // As a JWT for us it lacks aud and sub.
    let rules = hub_core::auth::Validation::new("joe", "spell-coven");
    assert_eq!(
        hub_core::auth::verify_with_keys(token, &keys, &rules, 1_300_819_300),
        Err(JwtError::MissingClaim("aud"))
    );
    let mut tampered = token.to_owned();
    tampered.pop();
    tampered.push('R');
    assert!(verify_jws(&tampered, &keys).is_err());
}
