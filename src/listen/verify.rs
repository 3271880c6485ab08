//! Webhook verification (and the matching signing, for the simulator's sender).
//!
//! Three modes, one per provider:
//! - [`Mode::Path`]: the shared secret is an unguessable path segment,
//!   `POST /hooks/{provider}/{secret}`; compared in constant time.
//! - [`Mode::Hmac`]: HMAC-SHA256 of the raw body in a configured header, written as
//!   hex, `sha256=<hex>` or base64; checked with `hmac`'s constant-time `verify_slice`.
//! - [`Mode::Standard`]: Standard Webhooks (standardwebhooks.com): `webhook-id`,
//!   `webhook-timestamp` (unix seconds, within [`TOLERANCE_SECS`] either way) and
//!   `webhook-signature` (space-separated `v1,<base64>`; any may match) over
//!   `{id}.{timestamp}.{body}`, keyed by the base64 bytes of a `whsec_` secret.
//!
//! Nothing here reads a clock (`now` is passed in) or logs; a refusal's reason names
//! what was wrong, never the secret or the expected signature.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Standard Webhooks' timestamp tolerance, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The Standard Webhooks header names.
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// How a provider's requests prove they come from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The secret is the last path segment.
    Path,
    /// HMAC-SHA256 of the body in `header` (e.g. `X-Signature`).
    Hmac { header: String },
    /// Standard Webhooks.
    Standard,
}

impl Mode {
    /// `path`, `hmac` (with its header, default `X-Signature`) or `standard`.
    pub fn parse(mode: &str, header: Option<&str>) -> Result<Mode, String> {
        match mode.trim().to_ascii_lowercase().as_str() {
            "path" => Ok(Mode::Path),
            "hmac" => {
                let header = header.map(str::trim).unwrap_or("X-Signature");
                if header.is_empty()
                    || !header
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(format!("`{header}` is not an HTTP header name"));
                }
                Ok(Mode::Hmac {
                    header: header.to_string(),
                })
            }
            "standard" | "standard-webhooks" | "standardwebhooks" => Ok(Mode::Standard),
            other => Err(format!(
                "verification mode `{other}`: use path, hmac or standard"
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Path => "path",
            Mode::Hmac { .. } => "hmac",
            Mode::Standard => "standard",
        }
    }
}

/// HMAC-SHA256 of `parts` (concatenated) under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    mac(key, parts).finalize().into_bytes().into()
}

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes a key of any length (longer ones are hashed): this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac
}

/// Byte strings equal, in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Path mode: the request's last segment against the secret.
pub fn verify_path(secret: &[u8], given: &str) -> Result<(), &'static str> {
    if !secret.is_empty() && constant_time_eq(secret, given.as_bytes()) {
        Ok(())
    } else {
        Err("wrong path secret")
    }
}

/// The signature bytes a header value carries: hex (optionally `sha256=`-prefixed) or
/// base64 (standard or URL-safe alphabet).
fn decode_signature(value: &str) -> Option<Vec<u8>> {
    let v = value.trim();
    let v = match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256=") => &v[7..],
        _ => v,
    };
    if v.len() == 64 {
        if let Ok(b) = hex::decode(v) {
            return Some(b);
        }
    }
    let e = &base64::engine::general_purpose::STANDARD;
    let u = &base64::engine::general_purpose::URL_SAFE;
    let un = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let sn = &base64::engine::general_purpose::STANDARD_NO_PAD;
    e.decode(v)
        .or_else(|_| u.decode(v))
        .or_else(|_| sn.decode(v))
        .or_else(|_| un.decode(v))
        .ok()
}

/// HMAC mode: `header_value` (the configured header) against HMAC-SHA256(secret, body).
pub fn verify_hmac(
    secret: &[u8],
    body: &[u8],
    header_value: Option<&str>,
) -> Result<(), &'static str> {
    let value = header_value.ok_or("missing signature header")?;
    let sig = decode_signature(value).ok_or("signature is neither hex nor base64")?;
    mac(secret, &[body])
        .verify_slice(&sig)
        .map_err(|_| "signature does not match")
}

/// The HMAC-mode header value for `body`: `sha256=<hex>`.
pub fn sign_hmac(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret, &[body])))
}

/// The Standard Webhooks key: the base64 after `whsec_` (a secret without the prefix
/// is taken as base64 too, as the reference libraries do).
pub fn standard_key(secret: &[u8]) -> Result<Vec<u8>, String> {
    let s = std::str::from_utf8(secret)
        .map_err(|_| "the Standard Webhooks secret is not text".to_string())?
        .trim();
    let b64 = s.strip_prefix("whsec_").unwrap_or(s);
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the Standard Webhooks secret is not whsec_<base64>: {e}"))?;
    if key.is_empty() {
        return Err("the Standard Webhooks secret is empty".into());
    }
    Ok(key)
}

/// `v1,<base64>` of HMAC-SHA256(key, `{id}.{timestamp}.{body}`).
pub fn sign_standard(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let sig = hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
}

/// Standard Webhooks: the three headers (as given, `None` when missing) against `key`
/// (from [`standard_key`]) at time `now` (unix seconds).
pub fn verify_standard(
    key: &[u8],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let id = id.filter(|s| !s.is_empty()).ok_or("missing webhook-id")?;
    let ts: i64 = timestamp
        .ok_or("missing webhook-timestamp")?
        .trim()
        .parse()
        .map_err(|_| "webhook-timestamp is not unix seconds")?;
    let sigs = signature.ok_or("missing webhook-signature")?;
    if now.saturating_sub(ts) > TOLERANCE_SECS {
        return Err("webhook-timestamp older than 5 minutes");
    }
    if ts.saturating_sub(now) > TOLERANCE_SECS {
        return Err("webhook-timestamp more than 5 minutes ahead");
    }
    let ts = ts.to_string();
    let expected = mac(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    let any = sigs
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .filter(|(v, _)| *v == "v1")
        .filter_map(|(_, b64)| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .any(|sig| expected.clone().verify_slice(&sig).is_ok());
    if any {
        Ok(())
    } else {
        Err("no webhook-signature matches")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published example of the standard-webhooks repository
    /// (standard-webhooks/standard-webhooks, libraries/rust/src/lib.rs, `test_sign`).
    const SW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SW_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SW_TS: i64 = 1649367553;
    const SW_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SW_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn standard_webhooks_published_vector() {
        let key = standard_key(SW_SECRET.as_bytes()).unwrap();
        assert_eq!(sign_standard(&key, SW_ID, SW_TS, SW_BODY), SW_SIG);
        let ts = SW_TS.to_string();
        let ok = |sig: &str, now: i64| {
            verify_standard(&key, Some(SW_ID), Some(&ts), Some(sig), SW_BODY, now)
        };
        assert_eq!(ok(SW_SIG, SW_TS), Ok(()));
        // Any of several signatures may match; other versions are skipped.
        let multi = format!("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU= v2,xyz {SW_SIG}");
        assert_eq!(ok(&multi, SW_TS), Ok(()));
        assert!(ok("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=", SW_TS).is_err());
        assert!(ok(&SW_SIG.replace("v1,", "v2,"), SW_TS).is_err());
        // The tolerance, both ways, to the second.
        assert_eq!(ok(SW_SIG, SW_TS + TOLERANCE_SECS), Ok(()));
        assert_eq!(
            ok(SW_SIG, SW_TS + TOLERANCE_SECS + 1),
            Err("webhook-timestamp older than 5 minutes")
        );
        assert_eq!(ok(SW_SIG, SW_TS - TOLERANCE_SECS), Ok(()));
        assert!(ok(SW_SIG, SW_TS - TOLERANCE_SECS - 1).is_err());
        // Another body, id or missing header: refused.
        assert!(verify_standard(&key, Some(SW_ID), Some(&ts), Some(SW_SIG), b"{}", SW_TS).is_err());
        assert!(
            verify_standard(&key, Some("msg_x"), Some(&ts), Some(SW_SIG), SW_BODY, SW_TS).is_err()
        );
        assert!(verify_standard(&key, None, Some(&ts), Some(SW_SIG), SW_BODY, SW_TS).is_err());
        assert!(verify_standard(&key, Some(SW_ID), None, Some(SW_SIG), SW_BODY, SW_TS).is_err());
        assert!(verify_standard(&key, Some(SW_ID), Some(&ts), None, SW_BODY, SW_TS).is_err());
        // A secret that is not base64 is refused when configured, not at request time.
        assert!(standard_key(b"whsec_not base64!").is_err());
    }

    /// RFC 4231 test case 2 (HMAC-SHA256, key "Jefe").
    #[test]
    fn hmac_rfc4231_vector_in_every_accepted_encoding() {
        let key = b"Jefe";
        let body = b"what do ya want for nothing?";
        let hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(sign_hmac(key, body), format!("sha256={hex}"));
        let b64 = base64::engine::general_purpose::STANDARD.encode(hex::decode(hex).unwrap());
        for v in [
            hex.to_string(),
            hex.to_uppercase(),
            format!("sha256={hex}"),
            format!("SHA256={hex}"),
            b64.clone(),
            b64.trim_end_matches('=').to_string(),
        ] {
            assert_eq!(verify_hmac(key, body, Some(&v)), Ok(()), "{v}");
        }
        assert_eq!(
            verify_hmac(key, body, None),
            Err("missing signature header")
        );
        assert!(verify_hmac(b"jefe", body, Some(hex)).is_err());
        assert!(verify_hmac(key, b"what do ya want for nothing!", Some(hex)).is_err());
        assert!(verify_hmac(key, body, Some(&hex[..62])).is_err());
        assert!(verify_hmac(key, body, Some("not a signature")).is_err());
    }

    #[test]
    fn path_secret_is_compared_whole() {
        let s = b"Zp4u9QmX2c";
        assert_eq!(verify_path(s, "Zp4u9QmX2c"), Ok(()));
        assert!(verify_path(s, "Zp4u9QmX2").is_err());
        assert!(verify_path(s, "Zp4u9QmX2cX").is_err());
        assert!(verify_path(s, "zp4u9QmX2c").is_err());
        assert!(
            verify_path(b"", "").is_err(),
            "an empty secret never matches"
        );
    }

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse("path", None), Ok(Mode::Path));
        assert_eq!(
            Mode::parse("HMAC", None),
            Ok(Mode::Hmac {
                header: "X-Signature".into()
            })
        );
        assert_eq!(
            Mode::parse("hmac", Some("X-PS-Signature")),
            Ok(Mode::Hmac {
                header: "X-PS-Signature".into()
            })
        );
        assert!(Mode::parse("hmac", Some("bad header")).is_err());
        assert_eq!(Mode::parse("standard", None), Ok(Mode::Standard));
        assert!(Mode::parse("basic", None).is_err());
    }
}
