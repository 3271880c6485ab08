//! The simulator's webhook sender: posts an event to a `tierdesk listen` receiver,
//! signed exactly as the receiver verifies it (see `crate::listen::verify`).
//!
//! - [`SignMode::Path`]: the secret is appended as the last path segment
//!   (`{url}/{secret}`, so `url` is `http://HOST/hooks/{provider}`);
//! - [`SignMode::Hmac`]: `sha256=<hex>` of HMAC-SHA256(secret, body) in the mode's header;
//! - [`SignMode::Standard`]: Standard Webhooks `webhook-id` (= `id`),
//!   `webhook-timestamp` and `webhook-signature` (`v1,<base64>`), keyed by the
//!   base64 bytes of the `whsec_` secret.
//!
//! `secret` is the secret as stored for the receiver (`whsec_…` text for Standard
//! Webhooks). `id` is sent only in Standard Webhooks mode (the other modes carry the
//! event id, if any, in the body).

use crate::listen::verify;
pub use crate::listen::verify::Mode as SignMode;

/// Sends `event` (serialised compactly), signed now; returns the HTTP status.
pub async fn send(
    url: &str,
    mode: &SignMode,
    secret: &[u8],
    event: &serde_json::Value,
    id: &str,
) -> Result<u16, String> {
    let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
    send_bytes_at(url, mode, secret, &body, id, chrono::Utc::now().timestamp()).await
}

/// Sends the raw `body` signed as of `timestamp` (unix seconds; used by Standard
/// Webhooks only): for replays, stale timestamps and malformed bodies in tests.
pub async fn send_bytes_at(
    url: &str,
    mode: &SignMode,
    secret: &[u8],
    body: &[u8],
    id: &str,
    timestamp: i64,
) -> Result<u16, String> {
    let client = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let target = match mode {
        SignMode::Path => {
            let s = std::str::from_utf8(secret).map_err(|_| "the path secret is not text")?;
            format!("{base}/{s}")
        }
        _ => base.to_string(),
    };
    let mut rb = client
        .post(&target)
        .header("content-type", "application/json")
        .body(body.to_vec());
    match mode {
        SignMode::Path => {}
        SignMode::Hmac { header } => {
            rb = rb.header(header.as_str(), verify::sign_hmac(secret, body));
        }
        SignMode::Standard => {
            let key = verify::standard_key(secret)?;
            rb = rb
                .header(verify::ID_HEADER, id)
                .header(verify::TIMESTAMP_HEADER, timestamp.to_string())
                .header(
                    verify::SIGNATURE_HEADER,
                    verify::sign_standard(&key, id, timestamp, body),
                );
        }
    }
    let resp = rb
        .send()
        .await
        .map_err(|e| format!("sending the webhook: {e}"))?;
    Ok(resp.status().as_u16())
}
