//! Checks made before the workbench opens a cache or a sync starts: the cache is
//! complete (no interrupted import or sync), bound to the PRM the configuration
//! names, and a demo cache never syncs.

use std::path::Path;

use super::Context;
use crate::store::binding::PrmIdentity;
use crate::store::Store;

/// The PRM a sync talks to, as a binding names it.
pub fn prm_identity(url: &str, flavor: &str, tenant: &str) -> PrmIdentity {
    PrmIdentity::new(flavor, url, tenant)
}

/// The PRM of `config.toml`, when one is configured.
pub fn configured_prm(ctx: &Context) -> Option<PrmIdentity> {
    ctx.config.prm.as_ref().map(|p| {
        prm_identity(
            &p.url,
            &p.flavor,
            p.tenant.as_deref().unwrap_or(crate::sim::DEFAULT_TENANT),
        )
    })
}

/// The context to open the workbench on `db` with, or `None` (after saying why on
/// stderr) when it must not open: the cache holds an interrupted import or sync
/// (it is incomplete: finish it first), or it is bound to another PRM than the one
/// configured. A demo cache opens with no PRM (it never syncs).
pub fn workbench_context(ctx: &Context, db: &Path) -> anyhow::Result<Option<Context>> {
    let store = Store::open(db)?;
    if let Some(why) = store.incomplete_message()? {
        eprintln!("tierdesk: the cache {} is incomplete: {why}", db.display());
        return Ok(None);
    }
    let mut ctx = ctx.clone();
    if store.is_demo()? {
        ctx.config.prm = None;
        return Ok(Some(ctx));
    }
    if let Some(prm) = configured_prm(&ctx) {
        if let Err(e) = store.check_prm_binding(&prm) {
            eprintln!("tierdesk: {e}");
            return Ok(None);
        }
    }
    Ok(Some(ctx))
}
