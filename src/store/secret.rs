//! Partner data sealed at rest: tax ids and bank details (account and routing numbers,
//! IBAN, BIC) are stored encrypted with ChaCha20-Poly1305 under a key that lives in the
//! OS keyring (or `TIERDESK_CACHE_KEY`), never in the cache, its WAL, a config file or
//! the log. They are opened only for the masked display and the payout file.
//!
//! A sealed value reads `enc1:<base64(nonce ‖ ciphertext)>`. The nonce is derived from
//! the key, the field and the value (a keyed SHA-256), so sealing the same value twice gives
//! the same text: a re-import changes nothing, and two partners with the same bank
//! account still compare equal (the shared-account check needs that), while nothing of
//! the value can be read without the key. The field name is bound as associated data,
//! so a sealed tax id cannot be passed off as a bank account.
//!
//! Values stored before sealing (plain text) are read as they are.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

/// The environment variable that can hold the cache key (base64 of 32 bytes), for
/// machines without an OS keyring. It wins over the keyring.
pub const KEY_ENV: &str = "TIERDESK_CACHE_KEY";
/// The keyring account of the cache key (service `tierdesk`): one per OS user.
pub const KEY_ACCOUNT: &str = "cache-key";
const PREFIX: &str = "enc1:";

/// The key sealing partner data.
#[derive(Clone)]
pub struct CacheKey([u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(…)")
    }
}

/// Why a sealed value cannot be read, or no key can be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the cache key is not available ({0}): partner tax ids and bank details cannot be \
         read or stored; everything else works (set {KEY_ENV} or restore the key in the OS keyring)"
    )]
    NoKey(String),
    #[error(
        "{field} cannot be decrypted with this cache key (another machine's or a lost key): \
         it cannot be read; everything else works"
    )]
    WrongKey { field: String },
    #[error("{field}: the stored value is damaged ({why})")]
    Damaged { field: String, why: String },
}

impl CacheKey {
    pub fn from_bytes(b: [u8; 32]) -> CacheKey {
        CacheKey(b)
    }

    /// A new random key.
    pub fn generate() -> CacheKey {
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        CacheKey(b)
    }

    /// The key as base64 (what the keyring and `TIERDESK_CACHE_KEY` hold).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    pub fn from_base64(s: &str) -> Result<CacheKey, String> {
        let v = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let b: [u8; 32] = v
            .try_into()
            .map_err(|v: Vec<u8>| format!("{} bytes, not 32", v.len()))?;
        Ok(CacheKey(b))
    }

    fn nonce(&self, field: &str, plain: &str) -> [u8; 12] {
        // A keyed hash of the field and the value (the key is a fixed-size prefix).
        let mut h = Sha256::new();
        h.update(b"tierdesk-nonce-v1");
        h.update(self.0);
        h.update(field.as_bytes());
        h.update([0]);
        h.update(plain.as_bytes());
        let d = h.finalize();
        let mut n = [0u8; 12];
        n.copy_from_slice(&d[..12]);
        n
    }

    /// Seals `plain` as the value of `field`.
    pub fn seal(&self, field: &str, plain: &str) -> String {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let n = self.nonce(field, plain);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: field.as_bytes(),
        };
        // Encryption with a valid key and nonce cannot fail for inputs this size.
        let ct = cipher
            .encrypt(Nonce::from_slice(&n), payload)
            .unwrap_or_default();
        let mut out = n.to_vec();
        out.extend(ct);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    /// Opens a stored value of `field` (plain text stored before sealing is returned
    /// as it is).
    pub fn open(&self, field: &str, stored: &str) -> Result<String, SecretError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let damaged = |why: String| SecretError::Damaged {
            field: field.to_string(),
            why,
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| damaged(e.to_string()))?;
        if raw.len() < 12 + 16 {
            return Err(damaged("too short".into()));
        }
        let (n, ct) = raw.split_at(12);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let plain = cipher
            .decrypt(
                Nonce::from_slice(n),
                Payload {
                    msg: ct,
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| SecretError::WrongKey {
                field: field.to_string(),
            })?;
        String::from_utf8(plain).map_err(|e| damaged(e.to_string()))
    }
}

/// Whether a stored value is sealed.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Where the key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    Keyring(String),
}

impl KeySource {
    pub fn describe(&self) -> String {
        match self {
            KeySource::Env => format!("key from {KEY_ENV}"),
            KeySource::Keyring(b) => format!("key in the {b}"),
        }
    }
}

/// The cache key: `TIERDESK_CACHE_KEY`, else the OS keyring; `create` makes and stores
/// one when there is none yet (the first import of partner data).
pub fn load_key(create: bool) -> Result<(CacheKey, KeySource), SecretError> {
    use crate::sync::creds;
    if let Ok(v) = std::env::var(KEY_ENV) {
        if !v.trim().is_empty() {
            let k = CacheKey::from_base64(&v)
                .map_err(|e| SecretError::NoKey(format!("{KEY_ENV}: {e}")))?;
            return Ok((k, KeySource::Env));
        }
    }
    // Two processes importing at once must not each create a key (the second would
    // replace the first in the keyring): the look-up and the creation hold a lock file.
    let _lock = if create { key_lock() } else { None };
    match creds::load_keyring(KEY_ACCOUNT, creds::TIMEOUT) {
        Ok((s, backend)) => {
            use secrecy::ExposeSecret;
            let k = CacheKey::from_base64(s.expose_secret())
                .map_err(|e| SecretError::NoKey(format!("the key in the OS keyring: {e}")))?;
            Ok((k, KeySource::Keyring(backend.describe().to_string())))
        }
        Err(creds::CredError::Missing { .. }) if create => {
            let k = CacheKey::generate();
            let secret = secrecy::SecretString::from(k.to_base64());
            let backend = creds::store(KEY_ACCOUNT, &secret, creds::TIMEOUT)
                .map_err(|e| SecretError::NoKey(e.to_string()))?;
            tracing::info!(backend = backend.describe(), "created the cache key");
            Ok((k, KeySource::Keyring(backend.describe().to_string())))
        }
        Err(creds::CredError::Missing { .. }) => {
            Err(SecretError::NoKey("no cache key in the OS keyring".into()))
        }
        Err(e) => Err(SecretError::NoKey(e.to_string())),
    }
}

/// An exclusive lock file, held while the key is looked up and made: created with
/// `create_new` (atomic), removed on drop; one left by a crashed process is taken over
/// after 30 s; waits at most 10 s.
struct KeyLock(std::path::PathBuf);

impl Drop for KeyLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn key_lock() -> Option<KeyLock> {
    let user = std::env::var("USER").unwrap_or_default();
    let path = std::env::temp_dir().join(format!("tierdesk-cache-key-{user}.lock"));
    let start = std::time::Instant::now();
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Some(KeyLock(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let stale = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(30));
                if stale {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                if start.elapsed() > std::time::Duration::from_secs(10) {
                    return None;
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(_) => return None,
        }
    }
}

/// Masks the sensitive values of a partners.jsonl line (for the quarantine, which keeps
/// rejected lines): every value of a `tax_id`, `account_number`, `routing_number`,
/// `iban` or `bic` key keeps only its last four characters. Works on broken JSON too.
pub fn mask_line(raw: &str) -> String {
    const KEYS: [&str; 5] = ["tax_id", "account_number", "routing_number", "iban", "bic"];
    let mut out = raw.to_string();
    for k in KEYS {
        let pat = format!("\"{k}\"");
        let mut from = 0;
        while let Some(at) = out[from..].find(&pat) {
            let start = from + at + pat.len();
            // `"key" : "value"`: find the opening quote of the value.
            let rest = &out[start..];
            let Some(colon) = rest.find(':') else { break };
            let after = &rest[colon + 1..];
            let trimmed = after.trim_start();
            if !trimmed.starts_with('"') {
                from = start;
                continue;
            }
            let vstart = start + colon + 1 + (after.len() - trimmed.len()) + 1;
            let vend = out[vstart..]
                .find('"')
                .map(|e| vstart + e)
                .unwrap_or(out.len());
            let value: String = out[vstart..vend].to_string();
            let masked = crate::model::mask(&value);
            out.replace_range(vstart..vend, &masked);
            from = vstart + masked.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_is_deterministic_bound_to_the_field_and_needs_the_key() {
        let k = CacheKey::from_bytes([7; 32]);
        let s = k.seal("tax_id", "60-7053353");
        assert!(is_sealed(&s));
        assert!(!s.contains("7053353"));
        assert_eq!(s, k.seal("tax_id", "60-7053353"), "same value, same text");
        assert_ne!(s, k.seal("tax_id", "60-7053354"));
        assert_eq!(k.open("tax_id", &s).unwrap(), "60-7053353");
        // Another field's seal does not open as this one.
        assert!(matches!(
            k.open("bank_account", &s),
            Err(SecretError::WrongKey { .. })
        ));
        // Another key cannot read it.
        let other = CacheKey::from_bytes([8; 32]);
        assert!(matches!(
            other.open("tax_id", &s),
            Err(SecretError::WrongKey { .. })
        ));
        // Plain text from before sealing reads as it is.
        assert_eq!(k.open("tax_id", "12-3456789").unwrap(), "12-3456789");
        assert!(matches!(
            k.open("tax_id", "enc1:@@@"),
            Err(SecretError::Damaged { .. })
        ));
        let b = CacheKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(b.seal("x", "y"), k.seal("x", "y"));
        assert!(CacheKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn rejected_partner_lines_are_masked_even_when_broken() {
        let raw = r#"{"partner_id":"P1","tax_id":"60-7053353","bank_account":{"routing_number": "027038916","account_number":"656781683848","iban":"DE89370400440532013000"}"#;
        let m = mask_line(raw);
        for s in [
            "7053353",
            "027038916",
            "656781683848",
            "DE89370400440532013000",
        ] {
            assert!(!m.contains(s), "{s} left in {m}");
        }
        assert!(m.contains("3353") && m.contains("3848"), "{m}");
        assert!(m.contains("\"partner_id\":\"P1\""));
    }
}
