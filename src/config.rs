//! Paths and the user's config file (`config.toml` in the platform config directory).
//!
//! Secrets never live here: PRM tokens and AI keys are in the OS keyring or an
//! environment variable (see the `sync` module).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where tierdesk keeps things on this machine.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The user's cache (`--db`, `TIERDESK_DB`, or `DATA/cache.db`).
    pub db: PathBuf,
    /// The demo program's cache (never the user's real one).
    pub demo_db: PathBuf,
    pub data_dir: PathBuf,
    pub config_dir: PathBuf,
    pub config_file: PathBuf,
    pub log_dir: PathBuf,
}

impl Paths {
    /// Resolves the platform directories; `db_override` comes from `--db`/`TIERDESK_DB`.
    pub fn resolve(db_override: Option<&Path>) -> Paths {
        let (data_dir, config_dir) = match directories::ProjectDirs::from("", "", "tierdesk") {
            Some(p) => (p.data_dir().to_path_buf(), p.config_dir().to_path_buf()),
            None => (PathBuf::from(".tierdesk"), PathBuf::from(".tierdesk")),
        };
        let db = db_override
            .map(Path::to_path_buf)
            .unwrap_or_else(|| data_dir.join("cache.db"));
        Paths {
            demo_db: data_dir.join("demo.db"),
            config_file: config_dir.join("config.toml"),
            log_dir: data_dir.clone(),
            db,
            data_dir,
            config_dir,
        }
    }
}

/// Roles a person acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Analyst,
    Manager,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Manager => "manager",
        }
    }
}

/// `config.toml`. Every field is optional in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Who acts (overridden by `--user` / `TIERDESK_USER`).
    pub user: Option<String>,
    pub role: Option<Role>,
    /// Theme name, a file in `themes/` (overridden by `--theme`).
    pub theme: Option<String>,
    /// Sign-off thresholds per currency: adjustments whose absolute value is at or
    /// above the threshold need a manager's sign-off. `default` applies otherwise.
    pub signoff_thresholds: BTreeMap<String, Decimal>,
    pub default_signoff_threshold: Decimal,
    /// Partners whose adjustments always need sign-off.
    pub high_value_partners: Vec<String>,
    /// Key overrides: action name -> key list, e.g. `approve = ["a", "ctrl-a"]`.
    pub keys: BTreeMap<String, Vec<String>>,
    /// The PRM this cache syncs with (the secret is in the keyring, not here).
    pub prm: Option<PrmConfig>,
    /// GL accounts and closed periods of `tierdesk journal`.
    pub journal: JournalConfig,
    /// The routing policy of governed automation (`[policy]`).
    pub policy: crate::policy::PolicyConfig,
    /// Alert channels and delivery (`[alerts]`; secrets in the keyring).
    pub alerts: crate::alerts::AlertsConfig,
    /// Workbench habits (`[workbench]`).
    pub workbench: WorkbenchConfig,
    /// The webhook receiver (`[listen]`; secrets in the keyring).
    pub listen: ListenConfig,
    /// The optional language model that rephrases answers (`[assistant]`; the key in
    /// the keyring or TIERDESK_AI_KEY).
    pub assistant: Option<crate::answer::model::AssistantConfig>,
}

/// `[listen]`: `tierdesk listen`'s address, polling fallback and webhook senders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// `host:port` to listen on (default 127.0.0.1:8790).
    pub addr: Option<String>,
    /// Seconds between the incremental syncs that catch a missed event (default 300;
    /// 0: none).
    pub poll_secs: Option<u64>,
    /// Sender name (the route `/hooks/NAME`) to its verification: `path`, `standard`,
    /// or `hmac` / `hmac:HEADER` (default header X-Signature).
    pub providers: BTreeMap<String, String>,
}

/// `[journal]`: how `tierdesk journal` books adjustments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JournalConfig {
    /// Debited for an increase, credited for a decrease (the P&L account).
    pub expense_account: String,
    /// The balance-sheet accrual the commission sits in.
    pub accrued_account: String,
    /// Written in every line's Subsidiary column (empty when unset).
    pub subsidiary: Option<String>,
    /// Written in every line's Department column (empty when unset).
    pub department: Option<String>,
    /// The last closed fiscal quarter (e.g. `2026-Q2`): nothing is dated into it or an
    /// earlier one. Unset: a quarter is closed once it ended before the decision.
    pub closed_through: Option<String>,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            expense_account: "Commission Expense".into(),
            accrued_account: "Accrued Commissions".into(),
            subsidiary: None,
            department: None,
            closed_through: None,
        }
    }
}

/// `[workbench]` in `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WorkbenchConfig {
    /// After a decision on one record, move to the next one (default on).
    pub auto_advance: bool,
    /// Days a dispute may stay with the reviewers before the Disputes view marks it
    /// overdue (default 10).
    pub dispute_sla_days: u32,
}

impl Default for WorkbenchConfig {
    fn default() -> Self {
        WorkbenchConfig {
            auto_advance: true,
            dispute_sla_days: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrmConfig {
    pub url: String,
    pub flavor: String,
    #[serde(default)]
    pub tenant: Option<String>,
    /// `[prm.mapping]`: the tenant's Impartner object and field names (each one
    /// defaults to the standard name; `tierdesk prm check` lists what the tenant lacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<crate::prm::impartner::Mapping>,
    /// `[prm.roles]`: PartnerStack offer key (or Impartner commission type) to the
    /// commission role it pays: seller, override, spiff or clawback (seller when unlisted).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, String>,
    /// `[prm] full_pass_hours`: hours between full passes over the resources whose
    /// incremental pull cannot see status changes (PartnerStack transactions and
    /// rewards; default 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_pass_hours: Option<u64>,
    /// `[prm] timeout_secs`: seconds a request may take before it is retried (default 15;
    /// connecting has 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// `[prm.tasks]`: the Impartner object and fields a `prm` alert channel creates its
    /// tasks in (default `tdTask__co` with `name`, `tdDescription__cf`,
    /// `tdTransaction__cf`, `tdAlertId__cf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<crate::prm::impartner::TaskMapping>,
}

impl PrmConfig {
    pub fn new(url: &str, flavor: &str, tenant: Option<String>) -> PrmConfig {
        PrmConfig {
            url: url.to_string(),
            flavor: flavor.to_string(),
            tenant,
            mapping: None,
            roles: BTreeMap::new(),
            full_pass_hours: None,
            timeout_secs: None,
            tasks: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            user: None,
            role: None,
            theme: None,
            signoff_thresholds: BTreeMap::new(),
            default_signoff_threshold: Decimal::from(5000),
            high_value_partners: Vec::new(),
            keys: BTreeMap::new(),
            prm: None,
            journal: JournalConfig::default(),
            policy: crate::policy::PolicyConfig::default(),
            alerts: crate::alerts::AlertsConfig::default(),
            workbench: WorkbenchConfig::default(),
            listen: ListenConfig::default(),
            assistant: None,
        }
    }
}

impl Config {
    /// Loads the config file; a missing file is the default config, a malformed
    /// one is an error naming the file and the problem.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut c: Config = toml::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
                c.alerts.prm = c.prm.clone();
                Ok(c)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(anyhow::anyhow!(
                "cannot read config file {}: {e}",
                path.display()
            )),
        }
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, toml::to_string_pretty(self)?)?;
        Ok(())
    }

    /// The sign-off threshold for a currency.
    pub fn signoff_threshold(&self, currency: &str) -> Decimal {
        self.signoff_thresholds
            .get(currency)
            .copied()
            .unwrap_or(self.default_signoff_threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_thresholds_and_defaults() {
        let c: Config = toml::from_str(
            "user = \"ana\"\nrole = \"manager\"\n[signoff_thresholds]\nEUR = \"2500\"\n",
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("ana"));
        assert_eq!(c.role, Some(Role::Manager));
        assert_eq!(c.signoff_threshold("EUR"), Decimal::from(2500));
        assert_eq!(c.signoff_threshold("USD"), Decimal::from(5000));
    }

    #[test]
    fn malformed_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "role = 5").unwrap();
        let err = Config::load(&p).unwrap_err().to_string();
        assert!(err.contains("config.toml"), "{err}");
    }
}
