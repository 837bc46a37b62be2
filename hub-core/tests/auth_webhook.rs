//! Webhook signature checks (contract §4, research checklist W2–W4 and case list 8–10).

use hub_core::Secret;
use hub_core::auth::{VerifiedWebhook, WebhookError, WebhookVerifier, sign_webhook};

const NOW: i64 = 1_800_000_000;
const SECRET: &str = "0123456789abcdef0123456789abcdef-current";
const PREVIOUS: &str = "0123456789abcdef0123456789abcdef-previous";
const BODY: &[u8] = br#"{"id":"e1","event":"voice.joined","payload":{"guildId":"1"}}"#;

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(Secret::new(SECRET), Some(Secret::new(PREVIOUS)))
}

fn verify(ts: &str, sig: &str, body: &[u8]) -> Result<VerifiedWebhook, WebhookError> {
    verifier().verify(Some(ts.as_bytes()), Some(sig.as_bytes()), body, NOW)
}

fn good_sig(ts: i64) -> String {
    sign_webhook(SECRET.as_bytes(), ts, BODY)
}

#[test]
fn known_vector() {
    // python3: hmac.new(b"It's a Secret to Everybody", b"1800000000.Hello, World!", sha256)
    assert_eq!(
        sign_webhook(
            b"It's a Secret to Everybody",
            1_800_000_000,
            b"Hello, World!"
        ),
        "sha256=1d4a7592ae3975c74820b8984b614a5fd6ac817e81302c69861672dc2066a046"
    );
    let v = WebhookVerifier::new(Secret::new("It's a Secret to Everybody"), None);
    let ok = v
        .verify(
            Some(b"1800000000"),
            Some(b"sha256=1d4a7592ae3975c74820b8984b614a5fd6ac817e81302c69861672dc2066a046"),
            b"Hello, World!",
            NOW,
        )
        .expect("valid");
    assert_eq!(ok.timestamp, NOW);
    assert_eq!(ok.mac[..4], [0x1d, 0x4a, 0x75, 0x92]);
}

#[test]
fn current_and_previous_secret_are_accepted() {
    let ts = NOW.to_string();
    assert!(verify(&ts, &good_sig(NOW), BODY).is_ok());
    assert!(verify(&ts, &sign_webhook(PREVIOUS.as_bytes(), NOW, BODY), BODY).is_ok());
    assert_eq!(
        verify(
            &ts,
            &sign_webhook(b"another secret entirely, 32 bytes+", NOW, BODY),
            BODY
        ),
        Err(WebhookError::Mismatch)
    );
    // Without a previous secret, the old one no longer works.
    let only_current = WebhookVerifier::new(Secret::new(SECRET), None);
    let old = sign_webhook(PREVIOUS.as_bytes(), NOW, BODY);
    assert_eq!(
        only_current.verify(Some(ts.as_bytes()), Some(old.as_bytes()), BODY, NOW),
        Err(WebhookError::Mismatch)
    );
}

#[test]
fn the_mac_is_the_replay_key() {
    let ts = NOW.to_string();
    let a = verify(&ts, &good_sig(NOW), BODY).expect("ok");
    let b = verify(&ts, &good_sig(NOW), BODY).expect("ok");
    assert_eq!(a, b);
    let sig = good_sig(NOW);
    let hex = sig.strip_prefix("sha256=").expect("prefix");
    let expected: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    assert_eq!(a.mac.to_vec(), expected);
}

#[test]
fn malformed_signatures_are_rejected() {
    let ts = NOW.to_string();
    let sig = good_sig(NOW);
    let hex = &sig["sha256=".len()..];
    for bad in [
        "sha256=".to_owned(),
        format!("sha256={}", &hex[..63]),
        format!("sha256={hex}0"),
        format!("sha256={}", &hex[..62]),
        format!("sha256={hex}{hex}"),
        format!("sha256={}", hex.to_uppercase()),
        format!("SHA256={hex}"),
        format!("sha1={hex}"),
        format!("sha256= {}", &hex[1..]),
        format!("sha256={hex} "),
        format!(" sha256={hex}"),
        format!("sha256={}g", &hex[..63]),
        format!("sha256:{hex}"),
        hex.to_owned(),
        String::new(),
    ] {
        assert_eq!(
            verify(&ts, &bad, BODY),
            Err(WebhookError::MalformedSignature),
            "{bad:?}"
        );
    }
    // Well-formed but wrong.
    let zeros = format!("sha256={}", "0".repeat(64));
    assert_eq!(verify(&ts, &zeros, BODY), Err(WebhookError::Mismatch));
}

#[test]
fn missing_headers_are_rejected() {
    let ts = NOW.to_string();
    let sig = good_sig(NOW);
    let v = verifier();
    assert_eq!(
        v.verify(None, Some(sig.as_bytes()), BODY, NOW),
        Err(WebhookError::MissingTimestamp)
    );
    assert_eq!(
        v.verify(Some(ts.as_bytes()), None, BODY, NOW),
        Err(WebhookError::MissingSignature)
    );
    assert_eq!(
        v.verify(None, None, BODY, NOW),
        Err(WebhookError::MissingTimestamp)
    );
}

#[test]
fn timestamp_must_be_within_60_seconds_both_ways() {
    for (delta, ok) in [
        (0, true),
        (59, true),
        (-59, true),
        (60, true),
        (-60, true),
        (61, false),
        (-61, false),
        (-3600, false),
        (3600, false),
    ] {
        let ts = NOW + delta;
        let result = verify(&ts.to_string(), &good_sig(ts), BODY);
        if ok {
            assert!(result.is_ok(), "delta {delta}");
        } else {
            assert_eq!(result, Err(WebhookError::Skew), "delta {delta}");
        }
    }
}

#[test]
fn timestamp_must_be_plain_digits() {
    let sig = good_sig(NOW);
    let twenty = "1".repeat(20);
    for bad in [
        "",
        "+1800000000",
        " 1800000000",
        "1800000000 ",
        "1800000000.0",
        "-1800000000",
        "1e9",
        "0x6b49d200",
        "１８",
        &twenty,
        "180000000000",
    ] {
        assert_eq!(
            verify(bad, &sig, BODY),
            Err(WebhookError::MalformedTimestamp),
            "{bad:?}"
        );
    }
    // Leading zeros are digits: the MAC covers the header bytes as sent.
    let ts = format!("0{NOW}");
    let v = WebhookVerifier::new(Secret::new(SECRET), None);
    let sig = {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(format!("{ts}.").as_bytes());
        mac.update(BODY);
        let tag = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    assert!(
        v.verify(Some(ts.as_bytes()), Some(sig.as_bytes()), BODY, NOW)
            .is_ok()
    );
}

#[test]
fn body_and_timestamp_are_covered_by_the_mac() {
    let ts = NOW.to_string();
    let sig = good_sig(NOW);
    let mut flipped = BODY.to_vec();
    flipped[5] ^= 1;
    assert_eq!(verify(&ts, &sig, &flipped), Err(WebhookError::Mismatch));
    let mut newline = BODY.to_vec();
    newline.push(b'\n');
    assert_eq!(verify(&ts, &sig, &newline), Err(WebhookError::Mismatch));
    assert_eq!(verify(&ts, &sig, b""), Err(WebhookError::Mismatch));
    assert_eq!(
        verify(&(NOW + 1).to_string(), &sig, BODY),
        Err(WebhookError::Mismatch)
    );
    // A bad signature wins over a body that is not even JSON (checked before parsing).
    assert_eq!(verify(&ts, &sig, b"{not json"), Err(WebhookError::Mismatch));
}

#[test]
fn any_secret_length_works() {
    for secret in ["", "k", &"x".repeat(200)] {
        let v = WebhookVerifier::new(Secret::new(secret), None);
        let sig = sign_webhook(secret.as_bytes(), NOW, BODY);
        assert!(
            v.verify(
                Some(NOW.to_string().as_bytes()),
                Some(sig.as_bytes()),
                BODY,
                NOW
            )
            .is_ok()
        );
    }
}

#[test]
fn secrets_never_show() {
    let v = verifier();
    let debug = format!("{v:?}");
    assert!(!debug.contains("0123456789abcdef"), "{debug}");
    let sig = good_sig(NOW);
    for err in [
        WebhookError::MissingTimestamp,
        WebhookError::MalformedTimestamp,
        WebhookError::Skew,
        WebhookError::MissingSignature,
        WebhookError::MalformedSignature,
        WebhookError::Mismatch,
    ] {
        let text = format!("{err} {err:?} {}", err.reason());
        assert!(
            !text.contains("0123456789abcdef") && !text.contains(&sig[7..20]),
            "{text}"
        );
    }
}
