//! PRM credentials: the OS keyring (keyring 3 with real backends — Secret Service and
//! kernel keyutils on Linux, Keychain on macOS, Credential Manager on Windows), never
//! config, logs or the database. `TIERDESK_PRM_TOKEN` overrides. Every keyring call
//! runs on its own thread with a timeout and fails closed with a clear message.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub const SERVICE: &str = "tierdesk";
pub const TOKEN_ENV: &str = "TIERDESK_PRM_TOKEN";
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum CredError {
    #[error("no PRM credential stored for {account}: run `tierdesk login --prm URL --flavor F` or set {TOKEN_ENV}")]
    Missing { account: String },
    #[error("the OS keyring did not answer within {0:?} (is the desktop keyring locked?); nothing was read or stored")]
    Timeout(Duration),
    #[error(
        "the OS keyring failed: {0}; the credential was not read or stored (no plaintext fallback)"
    )]
    Keyring(String),
}

/// The keyring account name for a PRM.
/// The environment variable that may carry a named secret instead of the keyring:
/// `prefix` and the name upper-cased, every other character than a letter or digit as
/// `_` (`env_name("TIERDESK_ALERT_", "ops-slack.1")` = `TIERDESK_ALERT_OPS_SLACK_1`).
pub fn env_name(prefix: &str, name: &str) -> String {
    let up: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{up}")
}

pub fn account(url: &str, flavor: &str) -> String {
    format!("{flavor}@{}", url.trim_end_matches('/'))
}

/// Which backend holds a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The platform default (Linux: keyutils cache + Secret Service persistence).
    Default,
    /// Linux kernel keyutils, the user keyring (headless Linux: no Secret Service).
    KeyutilsUser,
}

impl Backend {
    pub fn describe(&self) -> &'static str {
        match self {
            Backend::Default => {
                if cfg!(target_os = "linux") {
                    "OS keyring (kernel keyutils + Secret Service)"
                } else {
                    "OS keyring"
                }
            }
            Backend::KeyutilsUser => "OS keyring (Linux kernel keyutils, user keyring)",
        }
    }
}

fn entry(backend: Backend, account: &str) -> Result<keyring::Entry, keyring::Error> {
    match backend {
        Backend::Default => keyring::Entry::new(SERVICE, account),
        #[cfg(target_os = "linux")]
        Backend::KeyutilsUser => {
            use linux_keyutils::{KeyRing, KeyRingIdentifier};
            // Not `new_with_target`: it links the persistent keyring into the session,
            // which (without a login session keyring) gives the process a fresh
            // anonymous session and hides the user's keys from it.
            let user = KeyRing::from_special_id(KeyRingIdentifier::User, false)
                .map_err(|e| keyring::Error::PlatformFailure(Box::new(e)))?;
            let c = keyring::keyutils::KeyutilsCredential {
                session: user,
                persistent: None,
                description: format!("keyring-rs:{account}@{SERVICE}"),
            };
            Ok(keyring::Entry::new_with_credential(Box::new(c)))
        }
        #[cfg(not(target_os = "linux"))]
        Backend::KeyutilsUser => keyring::Entry::new(SERVICE, account),
    }
}

/// Runs `f` on its own thread; gives up after `timeout`.
fn off_thread<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CredError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(timeout)
        .map_err(|_| CredError::Timeout(timeout))
}

/// Backends in the order they are tried when storing.
fn backends() -> &'static [Backend] {
    if cfg!(target_os = "linux") {
        &[Backend::Default, Backend::KeyutilsUser]
    } else {
        &[Backend::Default]
    }
}

/// Backends in the order they are tried when reading: the user keyring first, so a
/// headless read never disturbs the session keyring.
fn read_backends() -> &'static [Backend] {
    if cfg!(target_os = "linux") {
        &[Backend::KeyutilsUser, Backend::Default]
    } else {
        &[Backend::Default]
    }
}

/// Stores the secret; returns the backend that holds it.
pub fn store(
    account: &str,
    secret: &SecretString,
    timeout: Duration,
) -> Result<Backend, CredError> {
    let account = account.to_string();
    let secret = SecretString::from(secret.expose_secret().to_string());
    off_thread(timeout, move || {
        let mut errors = Vec::new();
        for &b in backends() {
            match entry(b, &account).and_then(|e| e.set_password(secret.expose_secret())) {
                Ok(()) => return Ok(b),
                Err(e) => errors.push(format!("{}: {e}", b.describe())),
            }
        }
        Err(CredError::Keyring(errors.join("; ")))
    })?
}

/// Reads the secret: `TIERDESK_PRM_TOKEN` first, then the keyring.
pub fn load(account: &str, timeout: Duration) -> Result<SecretString, CredError> {
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        if !t.is_empty() {
            return Ok(SecretString::from(t));
        }
    }
    load_keyring(account, timeout).map(|(s, _)| s)
}

/// Reads the secret from the keyring only.
pub fn load_keyring(
    account: &str,
    timeout: Duration,
) -> Result<(SecretString, Backend), CredError> {
    let acc = account.to_string();
    off_thread(timeout, move || {
        let mut errors = Vec::new();
        for &b in read_backends() {
            match entry(b, &acc).and_then(|e| e.get_password()) {
                Ok(p) => return Ok((SecretString::from(p), b)),
                Err(keyring::Error::NoEntry) => {}
                Err(e) => errors.push(format!("{}: {e}", b.describe())),
            }
        }
        if errors.len() == backends().len() {
            Err(CredError::Keyring(errors.join("; ")))
        } else {
            Err(CredError::Missing { account: acc })
        }
    })?
}

/// Removes the secret from every backend; true when one was removed.
pub fn delete(account: &str, timeout: Duration) -> Result<bool, CredError> {
    let acc = account.to_string();
    off_thread(timeout, move || {
        let mut removed = false;
        let mut errors = Vec::new();
        for &b in backends() {
            match entry(b, &acc).and_then(|e| e.delete_credential()) {
                Ok(()) => removed = true,
                Err(keyring::Error::NoEntry) => {}
                Err(e) => errors.push(format!("{}: {e}", b.describe())),
            }
        }
        if !removed && errors.len() == backends().len() {
            Err(CredError::Keyring(errors.join("; ")))
        } else {
            Ok(removed)
        }
    })?
}
