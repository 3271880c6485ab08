use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::deliver::{backoff, sign, verify};
use super::*;

/// The Standard Webhooks example secret and message (from its specification).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn signature_follows_standard_webhooks() {
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    let ts = 1614265330;
    let body = r#"{"test": 2432232314}"#;
    // The specification's published signature for this example.
    assert_eq!(
        sign(SECRET, id, ts, body).unwrap(),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    // Computed independently: HMAC-SHA256 over id.timestamp.body with the decoded key.
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert!(verify(
        SECRET,
        id,
        ts,
        body,
        &format!("v1,bogus v1,{expected}")
    ));
    assert!(!verify(
        "whsec_dGhpcyBpcyBhbm90aGVyIGtleQ==",
        id,
        ts,
        body,
        &format!("v1,{expected}")
    ));
    assert!(!verify(SECRET, id, ts + 1, body, &format!("v1,{expected}")));
    assert!(sign("whsec_***not base64***", id, ts, body).is_err());
}

fn sample_flag() -> crate::store::policy::FlagFacts {
    crate::store::policy::FlagFacts {
        transaction_id: "T00012410".into(),
        row_hash: "h".into(),
        kinds: vec!["discount_policy".into()],
        score: 0.934,
        confidence: 0.9,
        at_stake_minor: 123_456,
        partner_id: "R00048".into(),
        partner_name: "Acme \u{1b}[2JCorp\u{202e}".into(),
        tier_id: Some("silver".into()),
        high_value: false,
        status: "flagged".into(),
        currency: "USD".into(),
        top_reason: Some("Discount 47.0% exceeds the silver/security maximum of 20%".into()),
        proposal_action: Some("hold".into()),
    }
}

#[test]
fn slack_message_is_block_kit_without_control_characters() {
    let c = flag_content(&sample_flag(), "hold", "violations", "review");
    assert_eq!(c["amount_at_stake"], "1234.56");
    let m = slack_message(&c);
    assert!(m["text"].as_str().unwrap().contains("T00012410"));
    let blocks = m["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    for b in blocks {
        let t = b["type"].as_str().unwrap();
        assert!(["header", "section", "context"].contains(&t), "{t}");
    }
    let text = m.to_string();
    assert!(text.contains("Acme [2JCorp"), "{text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
    assert!(text.contains("Discount 47.0%"));
}

#[test]
fn digest_lists_five_to_ten() {
    let flags: Vec<_> = (0..12).map(|_| sample_flag()).collect();
    assert_eq!(digest_content(&flags, 3, "2026-10-01")["count"], 5);
    assert_eq!(digest_content(&flags, 30, "2026-10-01")["count"], 10);
    let few = digest_content(&flags[..2], 7, "2026-10-01");
    assert_eq!(few["count"], 2);
    let m = slack_message(&few);
    assert_eq!(m["blocks"].as_array().unwrap().len(), 3);
}

#[test]
fn webhook_body_has_type_timestamp_data() {
    let c = flag_content(&sample_flag(), "task", "low", "observe");
    let b = webhook_body(&c, "2026-10-01T00:00:00Z");
    assert_eq!(b["type"], "tierdesk.flag");
    assert_eq!(b["data"]["transaction_id"], "T00012410");
    assert!(b["data"].get("tax_id").is_none());
    let _: &Value = &b["timestamp"];
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let cfg = AlertsConfig {
        retry_base_ms: 100,
        retry_cap_secs: 1,
        ..AlertsConfig::default()
    };
    assert_eq!(backoff(&cfg, 0).as_millis(), 100);
    assert_eq!(backoff(&cfg, 2).as_millis(), 400);
    assert_eq!(backoff(&cfg, 10).as_millis(), 1000);
    assert_eq!(secret_env("ops-slack.1"), "TIERDESK_ALERT_OPS_SLACK_1");
}
