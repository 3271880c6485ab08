//! The SQLite cache. This module (and its submodules) owns every SQL statement
//! in tierdesk; everything else speaks in domain types.
//!
//! Submodules, one per concern:
//! - `dataset`: the imported program entities (import, load back as a `Dataset`)
//! - `flags`: scores, proposals and queue counters
//! - `workflow`: cases, decisions, audit log, outbox
//! - `sync`: cursors, sync state, conflicts, remote flags
//! - `queue`: read models for the workbench (keyset-paginated pages)
//! - `webhook`: PRM webhook events received by `tierdesk listen`

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub mod binding;
pub mod bulk;
pub mod dataset;
pub mod dispute;
pub mod flags;
pub mod payout;
pub mod plan_versions;
pub mod policy;
pub mod queue;
pub mod secret;
pub mod statement;
pub mod sync;
pub mod views;
pub mod webhook;
pub mod workflow;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
///
/// schema.sql is idempotent (IF NOT EXISTS throughout), so step 2 re-applies it: an
/// older cache gets exactly the tables added since (prm_rewards), and its rewards
/// cursor is reset so the next sync pulls every reward's status once.
///
/// Step 3 moves the transactions' key from a column constraint (`UNIQUE`, an index
/// SQLite never lets go of) to the index `idx_tx_id`: the table is copied into the
/// new shape, its indexes built once after the copy.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    concat!(
        include_str!("schema.sql"),
        "\nDELETE FROM sync_cursors WHERE resource = 'rewards';\n"
    ),
    concat!(
        "DROP INDEX IF EXISTS idx_tx_partner;
         DROP INDEX IF EXISTS idx_tx_submitted;
         ALTER TABLE transactions RENAME TO transactions_v2;\n",
        include_str!("schema.sql"),
        "\nDROP INDEX idx_tx_id; DROP INDEX idx_tx_partner; DROP INDEX idx_tx_submitted;
         INSERT INTO transactions SELECT * FROM transactions_v2;
         DROP TABLE transactions_v2;\n",
        include_str!("schema.sql"),
    ),
    include_str!("migrations/0004_data_edge.sql"),
    include_str!("migrations/0011_plan_versions.sql"),
    include_str!("migrations/0012_policy.sql"),
    include_str!("migrations/0013_payouts.sql"),
    include_str!("migrations/0014_statements.sql"),
    include_str!("migrations/0015_erp_invoices.sql"),
    include_str!("migrations/0016_webhook_events.sql"),
    include_str!("migrations/0017_prm_sync.sql"),
    include_str!("migrations/0018_saved_views.sql"),
    include_str!("migrations/0019_payout_accounts.sql"),
    include_str!("migrations/0020_prm_status.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the cache at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the cache at {path} has schema version {found}, newer than this build's {SCHEMA_VERSION}; upgrade tierdesk")]
    TooNew { path: PathBuf, found: i64 },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An open cache. Cheap to open; open one per thread.
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
    /// The key sealing partner data, resolved on first need (see [`secret`]).
    key: std::cell::OnceCell<std::result::Result<secret::CacheKey, secret::SecretError>>,
}

impl Store {
    /// Opens (creating if needed) the cache at `path` and migrates it.
    ///
    /// WAL journal, `synchronous=FULL`, foreign keys on, a busy timeout so a
    /// second process (a sync while the workbench is open) waits instead of failing.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        // Partner data: the cache is readable by its owner only (SQLite creates the
        // WAL and shared-memory files with the database file's permissions).
        private_file(path);
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
            key: Default::default(),
        };
        store.configure()?;
        store.migrate()?;
        for suffix in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            private_file(Path::new(&p));
        }
        Ok(store)
    }

    /// An in-memory cache, for tests.
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            key: Default::default(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// The cache key (created and put into the OS keyring on first use).
    pub fn cache_key(&self) -> std::result::Result<&secret::CacheKey, secret::SecretError> {
        self.key
            .get_or_init(|| secret::load_key(true).map(|(k, _)| k))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Seals a partner's sensitive value for storing. Without a key nothing readable
    /// is stored: the value is kept masked (last four) and the error says why.
    pub fn seal_value(&self, field: &str, plain: &str) -> (String, Option<secret::SecretError>) {
        match self.cache_key() {
            Ok(k) => (k.seal(field, plain), None),
            Err(e) => (crate::model::mask(plain), Some(e)),
        }
    }

    /// Opens a stored sensitive value (plain values from before sealing as they are).
    pub fn open_value(
        &self,
        field: &str,
        stored: &str,
    ) -> std::result::Result<String, secret::SecretError> {
        if !secret::is_sealed(stored) {
            return Ok(stored.to_string());
        }
        self.cache_key()?.open(field, stored)
    }

    fn configure(&self) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(30))?;
        // New files get 16 KiB pages (fewer, fuller B-tree pages: a bulk import writes and
        // an index build scans a third less page overhead). No effect on an existing file.
        self.conn.execute_batch("PRAGMA page_size=16384")?;
        // journal_mode returns a row; query it rather than execute.
        let _mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        // journal_size_limit: a WAL grown by a bulk import is cut back to 64 MiB the
        // next time it starts over.
        self.conn.execute_batch(
            "PRAGMA synchronous=FULL;
             PRAGMA foreign_keys=ON;
             PRAGMA temp_store=MEMORY;
             PRAGMA journal_size_limit=67108864;",
        )?;
        Ok(())
    }

    fn migrate(&self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// The SQLite library version in use.
    pub fn sqlite_version() -> &'static str {
        rusqlite::version()
    }

    /// `PRAGMA integrity_check`: `Ok(())` when the file is sound.
    pub fn integrity_check(&self) -> Result<()> {
        let res: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if res == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt(res))
        }
    }

    /// Row counts of every table, for `doctor`.
    pub fn row_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT COUNT(*) FROM \"{name}\""), [], |r| {
                        r.get(0)
                    })?;
            out.push((name, n));
        }
        Ok(out)
    }
}

/// Creates `path` (empty) readable and writable by its owner only (mode 0600), or
/// narrows an existing file to that; best effort (a file of another owner, a
/// platform without Unix modes, is left as it is).
pub fn private_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o077 != 0 => {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
            Ok(_) => {}
            Err(_) => {
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_fresh_file_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        s.integrity_check().unwrap();
        let counts = s.row_counts().unwrap();
        assert!(counts.iter().any(|(n, c)| n == "transactions" && *c == 0));
    }

    /// A version-2 cache (the transactions' key a column constraint) is moved to
    /// version 3 with every row kept and the key an index of its own.
    #[test]
    fn migrates_a_version_2_cache_keeping_its_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        {
            let s = Store::open(&path).unwrap();
            let ddl: String = s
                .conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = 'transactions'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let old = ddl.replace(
                "transaction_id          TEXT NOT NULL,       -- unique: idx_tx_id",
                "transaction_id          TEXT NOT NULL UNIQUE,",
            );
            assert_ne!(old, ddl, "the version-2 column definition");
            // Columns added by later migrations (ALTER TABLE ... ADD COLUMN) were not there.
            let old = old.replace(", missing TEXT", "");
            s.conn
                .execute_batch(&format!(
                    "DROP TABLE transactions; {old};
                     CREATE INDEX idx_tx_partner ON transactions (partner_id, closed_on);
                     CREATE INDEX idx_tx_submitted ON transactions (submitted_at);"
                ))
                .unwrap();
            for (id, partner) in [("T1", "P1"), ("T2", "P2")] {
                s.conn
                    .execute(
                        "INSERT INTO transactions (transaction_id, kind, partner_id, \
                         customer_name, sku, quantity, unit_list_price, unit_net_price, \
                         amount, amount_minor, currency, closed_on, submitted_at, \
                         invoice_number, row_hash, updated_at) VALUES (?1, 'sale', ?2, \
                         'Acme', 'S1', 1, '10', '10', '10', 1000, 'USD', '2025-01-02', \
                         '2025-01-02T00:00:00Z', 'INV', 'h', 'now')",
                        [id, partner],
                    )
                    .unwrap();
            }
            s.conn.execute_batch("PRAGMA user_version = 2").unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        s.integrity_check().unwrap();
        let t2 = s.get_transaction("T2").unwrap().unwrap();
        assert_eq!(t2.partner_id, "P2");
        let indexes: Vec<String> = s
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transactions' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(indexes, ["idx_tx_id", "idx_tx_partner", "idx_tx_submitted"]);
        // The key still refuses a second row with the same id.
        assert!(s
            .conn
            .execute(
                "INSERT INTO transactions SELECT NULL, transaction_id, kind, \
                 original_transaction_id, partner_id, registration_id, customer_name, sku, \
                 quantity, unit_list_price, unit_net_price, amount, amount_minor, currency, \
                 closed_on, submitted_at, invoice_number, notes, row_hash, record_version, \
                 updated_at, missing FROM transactions WHERE transaction_id = 'T1'",
                [],
            )
            .is_err());
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        {
            let s = Store::open(&path).unwrap();
            s.conn
                .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 5))
                .unwrap();
        }
        match Store::open(&path) {
            Err(StoreError::TooNew { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 5),
            Err(other) => panic!("wrong error: {other}"),
            Ok(_) => panic!("opened a newer schema"),
        }
    }
}
