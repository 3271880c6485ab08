//! Store: what a cache is bound to and what is unfinished in it.
//!
//! - The program: the `program` row. An import of another program (another
//!   `program_id` or currency) is refused ([`Store::check_program_binding`]).
//! - The PRM: recorded by the first sync that reaches one ([`Store::bind_prm`]); a
//!   sync against another PRM, or of a demo cache, is refused
//!   ([`Store::check_prm_binding`]).
//! - Unfinished work: an import or sync writes a `work_runs` row when it starts and
//!   deletes it when it ends well; a row whose process is gone is an interrupted run
//!   ([`Store::incomplete_work`]).
//! - Scoring: how many transactions have no current flag ([`Store::unscored_count`]).
//! - Integrity: PRM rows kept although they break a data-set rule.

use chrono::Utc;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{Result, Store, StoreError};

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Which PRM a cache is synced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrmIdentity {
    /// The connector (`partnerstack`, `impartner`).
    pub provider: String,
    /// The base URL, without a trailing `/`, scheme and host in lower case.
    pub base_url: String,
    pub tenant: String,
}

impl PrmIdentity {
    pub fn new(provider: &str, base_url: &str, tenant: &str) -> PrmIdentity {
        PrmIdentity {
            provider: provider.trim().to_ascii_lowercase(),
            base_url: normalize_url(base_url),
            tenant: tenant.trim().to_string(),
        }
    }
}

impl std::fmt::Display for PrmIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at {} (tenant {})",
            self.provider, self.base_url, self.tenant
        )
    }
}

/// `HTTP://Host:8080/api/` -> `http://host:8080/api`.
fn normalize_url(url: &str) -> String {
    let t = url.trim().trim_end_matches('/');
    match t.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                path
            )
        }
        None => t.to_string(),
    }
}

/// A program as a binding names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramRef {
    pub program_id: String,
    pub name: String,
    pub currency: String,
}

impl std::fmt::Display for ProgramRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} \"{}\" ({})",
            self.program_id, self.name, self.currency
        )
    }
}

impl From<&crate::model::Program> for ProgramRef {
    fn from(p: &crate::model::Program) -> ProgramRef {
        ProgramRef {
            program_id: p.program_id.clone(),
            name: p.name.clone(),
            currency: p.currency.clone(),
        }
    }
}

/// Why a cache refuses an import or a sync.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error(
        "this is a demo cache ({path}): it never syncs with a PRM (the PRM asked for: {asked}); \
         sync your own cache instead (`tierdesk import DIR`, then `tierdesk sync`)"
    )]
    Demo { path: String, asked: String },
    #[error(
        "the cache {path} is bound to the PRM {bound}, not to {asked}: it was filled from the \
         first; use another cache for the second (`tierdesk --db OTHER.db sync ...`)"
    )]
    OtherPrm {
        path: String,
        bound: Box<PrmIdentity>,
        asked: Box<PrmIdentity>,
    },
    #[error(
        "the cache {path} holds the program {cache}, and this data set is the program {incoming}: \
         refused (import it into another cache with `--db OTHER.db`, or pass `--replace` to \
         set the current cache aside and start a new one)"
    )]
    OtherProgram {
        path: String,
        cache: Box<ProgramRef>,
        incoming: Box<ProgramRef>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for BindingError {
    fn from(e: rusqlite::Error) -> BindingError {
        BindingError::Store(StoreError::Sql(e))
    }
}

/// An import or sync that started and has not ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkRun {
    /// `import` or `sync`.
    pub kind: String,
    /// The folder imported, or the PRM's URL.
    pub source: String,
    pub pid: u32,
    pub started_at: String,
    /// Its process is still running (on this machine): not interrupted (yet).
    pub running: bool,
}

impl WorkRun {
    /// What to run to finish it.
    pub fn how_to_finish(&self) -> String {
        match self.kind.as_str() {
            "import" => format!("tierdesk import {}", shell_quote(&self.source)),
            _ => "tierdesk sync --once".to_string(),
        }
    }
}

impl std::fmt::Display for WorkRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.running {
            write!(
                f,
                "an {} of {} is running (process {}, started {})",
                self.kind, self.source, self.pid, self.started_at
            )
        } else {
            write!(
                f,
                "the {} of {} started {} did not finish (interrupted): the cache is incomplete; \
                 run `{}` to finish it",
                self.kind,
                self.source,
                self.started_at,
                self.how_to_finish()
            )
        }
    }
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Why an import or sync cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    #[error("another {} is running on this cache (process {}, started {}, from {}): wait for it to finish", .0.kind, .0.pid, .0.started_at, .0.source)]
    Running(WorkRun),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether process `pid` exists on this machine (Linux: /proc; elsewhere assumed).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

impl Store {
    fn binding_row(&self) -> Result<Option<(bool, Option<PrmIdentity>)>> {
        let row = self
            .conn
            .query_row(
                "SELECT demo, prm_provider, prm_base_url, prm_tenant FROM cache_binding WHERE id = 1",
                [],
                |r| {
                    let demo: bool = r.get(0)?;
                    let p: Option<String> = r.get(1)?;
                    let u: Option<String> = r.get(2)?;
                    let t: Option<String> = r.get(3)?;
                    Ok((demo, p.zip(u).map(|(p, u)| (p, u, t.unwrap_or_default()))))
                },
            )
            .optional()?;
        Ok(row.map(|(demo, prm)| {
            (
                demo,
                prm.map(|(provider, base_url, tenant)| PrmIdentity {
                    provider,
                    base_url,
                    tenant,
                }),
            )
        }))
    }

    /// The PRM this cache was filled from, once a sync reached one.
    pub fn prm_binding(&self) -> Result<Option<PrmIdentity>> {
        Ok(self.binding_row()?.and_then(|(_, p)| p))
    }

    /// Whether this is a demo cache (it never syncs).
    pub fn is_demo(&self) -> Result<bool> {
        Ok(self.binding_row()?.is_some_and(|(d, _)| d))
    }

    /// Marks this cache as a demo cache: every sync of it is refused.
    pub fn mark_demo(&self) -> Result<()> {
        self.conn.execute(
            "INSERT INTO cache_binding (id, demo, bound_at) VALUES (1, 1, ?1)
             ON CONFLICT (id) DO UPDATE SET demo = 1",
            [now()],
        )?;
        Ok(())
    }

    /// Whether a sync with `asked` may run on this cache: not on a demo cache, not on
    /// a cache bound to another PRM (provider, URL or tenant). An unbound cache may.
    pub fn check_prm_binding(&self, asked: &PrmIdentity) -> Result<(), BindingError> {
        let path = self.path().display().to_string();
        match self.binding_row()? {
            Some((true, _)) => Err(BindingError::Demo {
                path,
                asked: asked.to_string(),
            }),
            Some((false, Some(bound))) if bound != *asked => Err(BindingError::OtherPrm {
                path,
                bound: Box::new(bound),
                asked: Box::new(asked.clone()),
            }),
            _ => Ok(()),
        }
    }

    /// Binds this cache to `prm` if it is bound to none yet (after a sync reached it).
    pub fn bind_prm(&self, prm: &PrmIdentity) -> Result<()> {
        self.conn.execute(
            "INSERT INTO cache_binding (id, demo, prm_provider, prm_base_url, prm_tenant, bound_at)
             VALUES (1, 0, ?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET prm_provider = excluded.prm_provider,
                 prm_base_url = excluded.prm_base_url, prm_tenant = excluded.prm_tenant,
                 bound_at = excluded.bound_at
             WHERE cache_binding.prm_provider IS NULL",
            params![prm.provider, prm.base_url, prm.tenant, now()],
        )?;
        Ok(())
    }

    /// The check a sync run makes when all it knows is its connector's name
    /// (`provider`): refused on a demo cache and on a cache bound to another
    /// provider. `Some(why)` when refused.
    pub fn sync_refusal(&self, provider: &str) -> Result<Option<String>> {
        let path = self.path().display().to_string();
        Ok(match self.binding_row()? {
            Some((true, _)) => Some(format!(
                "this is a demo cache ({path}): it never syncs with a PRM"
            )),
            Some((false, Some(bound))) if !bound.provider.eq_ignore_ascii_case(provider) => Some(
                format!("the cache {path} is bound to the PRM {bound}, not to a {provider} PRM"),
            ),
            _ => None,
        })
    }

    /// Whether a data set of program `incoming` may be imported into this cache: yes
    /// when the cache has no program yet or the same one (same `program_id` and
    /// currency; a renamed program is the same program).
    pub fn check_program_binding(&self, incoming: &ProgramRef) -> Result<(), BindingError> {
        let Some(p) = self.program()? else {
            return Ok(());
        };
        let cache = ProgramRef::from(&p);
        if cache.program_id == incoming.program_id && cache.currency == incoming.currency {
            return Ok(());
        }
        Err(BindingError::OtherProgram {
            path: self.path().display().to_string(),
            cache: Box::new(cache),
            incoming: Box::new(incoming.clone()),
        })
    }

    /// Records that an import or sync (`kind`) of `source` starts. Refused when one
    /// of that kind is running in another live process; an interrupted one is taken
    /// over (this run restarts it).
    pub fn begin_work(&mut self, kind: &str, source: &str) -> Result<(), BeginError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let found = read_runs(&tx, Some(kind)).map_err(StoreError::from)?;
        if let Some(run) = found.into_iter().find(|r| r.running) {
            return Err(BeginError::Running(run));
        }
        tx.execute(
            "INSERT OR REPLACE INTO work_runs (kind, source, pid, host, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind, source, std::process::id(), host(), now()],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Records that this process's `kind` run ended well.
    pub fn end_work(&mut self, kind: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM work_runs WHERE kind = ?1 AND pid = ?2",
            params![kind, std::process::id()],
        )?;
        Ok(())
    }

    /// Imports and syncs that started and did not end well: interrupted ones
    /// (`running` false) and ones running now in another process.
    pub fn incomplete_work(&self) -> Result<Vec<WorkRun>> {
        Ok(read_runs(&self.conn, None)?)
    }

    /// Why the cache cannot be taken as complete, when an import or sync did not
    /// finish (or one runs now): one sentence per run, saying how to finish it.
    pub fn incomplete_message(&self) -> Result<Option<String>> {
        let runs = self.incomplete_work()?;
        if runs.is_empty() {
            return Ok(None);
        }
        let parts: Vec<String> = runs.iter().map(WorkRun::to_string).collect();
        Ok(Some(parts.join("; ")))
    }

    /// Transactions with no current flag: never scored, scored before their row
    /// changed, or scored by another detector version than `detector_version`.
    pub fn unscored_count(&self, detector_version: &str) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM transactions t
             LEFT JOIN flags f ON f.transaction_id = t.transaction_id
             WHERE f.transaction_id IS NULL OR f.row_hash <> t.row_hash
                OR f.detector_version <> ?1",
            [detector_version],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    /// Of [`Store::unscored_count`]: flags whose transaction changed since it was
    /// scored (stale until the next scoring).
    pub fn stale_flag_count(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM flags f JOIN transactions t ON t.transaction_id = f.transaction_id
             WHERE f.row_hash <> t.row_hash",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    /// Records that a kept transaction breaks a data-set rule (kind
    /// `data_integrity`); `source` is `prm` or `import`. The latest issue per
    /// transaction is kept.
    pub fn record_integrity_issue(
        &self,
        transaction_id: &str,
        field: &str,
        reason: &str,
        source: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO integrity_issues (transaction_id, field, reason, source, found_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![transaction_id, field, reason, source, now()],
        )?;
        Ok(())
    }

    /// Clears the integrity issue of a transaction whose row is now consistent.
    pub fn clear_integrity_issue(&self, transaction_id: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM integrity_issues WHERE transaction_id = ?1",
            [transaction_id],
        )?;
        Ok(())
    }

    /// Every recorded integrity issue: (transaction id, field, reason).
    pub fn integrity_issues(&self) -> Result<Vec<(String, String, String)>> {
        let mut st = self.conn.prepare(
            "SELECT transaction_id, field, reason FROM integrity_issues ORDER BY transaction_id",
        )?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}

fn read_runs(conn: &rusqlite::Connection, kind: Option<&str>) -> rusqlite::Result<Vec<WorkRun>> {
    let mut st = conn.prepare(
        "SELECT kind, source, pid, host, started_at FROM work_runs
         WHERE ?1 IS NULL OR kind = ?1 ORDER BY started_at",
    )?;
    let me = host();
    let rows = st
        .query_map([kind], |r| {
            let pid: i64 = r.get(2)?;
            let h: String = r.get(3)?;
            let pid = u32::try_from(pid).unwrap_or(0);
            Ok(WorkRun {
                kind: r.get(0)?,
                source: r.get(1)?,
                pid,
                started_at: r.get(4)?,
                // Another machine's process (a cache on a shared disk) cannot be
                // checked: taken as running.
                running: if h.is_empty() || h == me {
                    process_alive(pid)
                } else {
                    true
                },
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prm_binding_refuses_another_prm_and_demo() {
        let s = Store::open_in_memory().unwrap();
        let a = PrmIdentity::new("partnerstack", "http://127.0.0.1:9/", "t1");
        let b = PrmIdentity::new("partnerstack", "http://127.0.0.1:10", "t1");
        s.check_prm_binding(&a).unwrap();
        s.bind_prm(&a).unwrap();
        s.check_prm_binding(&PrmIdentity::new(
            "PartnerStack",
            "HTTP://127.0.0.1:9",
            "t1",
        ))
        .unwrap();
        let e = s.check_prm_binding(&b).unwrap_err().to_string();
        assert!(
            e.contains("127.0.0.1:9") && e.contains("127.0.0.1:10"),
            "{e}"
        );
        // A second bind does not move the binding.
        s.bind_prm(&b).unwrap();
        assert_eq!(s.prm_binding().unwrap(), Some(a.clone()));
        assert!(s.sync_refusal("impartner").unwrap().is_some());
        assert!(s.sync_refusal("partnerstack").unwrap().is_none());
        s.mark_demo().unwrap();
        assert!(matches!(
            s.check_prm_binding(&a),
            Err(BindingError::Demo { .. })
        ));
        assert!(s.sync_refusal("partnerstack").unwrap().is_some());
    }

    #[test]
    fn work_runs_are_recorded_and_cleared() {
        let mut s = Store::open_in_memory().unwrap();
        s.begin_work("import", "/data/x").unwrap();
        let runs = s.incomplete_work().unwrap();
        assert_eq!(runs.len(), 1);
        // This process's own marker is not "running": a new import takes it over.
        assert!(!runs[0].running);
        assert!(runs[0].to_string().contains("tierdesk import /data/x"));
        s.begin_work("import", "/data/y").unwrap();
        assert_eq!(s.incomplete_work().unwrap()[0].source, "/data/y");
        s.end_work("import").unwrap();
        assert!(s.incomplete_work().unwrap().is_empty());
    }
}
