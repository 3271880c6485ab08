//! `tierdesk listen`: the webhook receiver, wired to the configured PRM (re-fetch,
//! incremental sync, scoring) with polling as the fallback.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::Context;
use crate::listen::{self, Fetched, Ingest, Mode, Provider, Receiver, Refetch, Resource};
use crate::sync::adapter::{AnyPrm, Prm};
use crate::sync::SyncOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on, host:port (default: `[listen] addr`, else 127.0.0.1:8790).
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Seconds between incremental syncs that catch a missed event (default:
    /// `[listen] poll_secs`, else 300; 0: no polling).
    #[arg(long, value_name = "SECS")]
    pub poll_secs: Option<u64>,
    /// A webhook sender: NAME=MODE[:HEADER], MODE one of path, standard, hmac
    /// (`hmac:X-Signature`). Repeatable; replaces `[listen.providers]`.
    #[arg(long = "provider", value_name = "NAME=MODE[:HEADER]")]
    pub providers: Vec<String>,
    /// Store a sender's secret in the OS keyring (read from stdin) and exit.
    #[arg(long, value_name = "NAME")]
    pub set_secret: Option<String>,
}

/// `NAME=MODE[:HEADER]` as a provider name and mode.
pub fn parse_provider(spec: &str) -> Result<(String, Mode), String> {
    let (name, mode) = spec
        .split_once('=')
        .ok_or_else(|| format!("--provider `{spec}`: expected NAME=MODE[:HEADER]"))?;
    let name = name.trim();
    listen::valid_provider_name(name)?;
    let (m, header) = match mode.split_once(':') {
        Some((m, h)) => (m, Some(h.trim())),
        None => (mode, None),
    };
    let mode = Mode::parse(m, header).map_err(|e| format!("provider `{name}`: {e}"))?;
    Ok((name.to_string(), mode))
}

/// Re-fetches through the PRM connector.
struct PrmRefetch(Arc<AnyPrm>);

impl Refetch for PrmRefetch {
    async fn refetch(
        &self,
        kind: Resource,
        key: &str,
    ) -> Result<Option<serde_json::Value>, String> {
        self.0.get(kind, key).await.map_err(|e| e.to_string())
    }
}

/// An incremental sync of the resources the events named, then the scoring `tierdesk
/// sync` runs.
struct SyncIngest {
    prm: Arc<AnyPrm>,
    ctx: Context,
}

impl SyncIngest {
    async fn sync(&self, resources: Vec<Resource>) -> Result<String, String> {
        let store = self.ctx.open_store().map_err(|e| e.to_string())?;
        let opts = SyncOptions {
            resources,
            ..SyncOptions::default()
        };
        let (mut store, report) =
            crate::sync::run_once(self.prm.as_ref(), store, &opts, &mut |_| {}).await;
        if !report.errors.is_empty() {
            return Err(report.errors.join("; "));
        }
        let summary = format!(
            "pulled {} ({} written), pushed {}",
            crate::plural::n(report.total_pulled(), "item"),
            report.written,
            report.pushed
        );
        if !report.changed_transactions.is_empty() || super::sync::has_unscored(&store) {
            let ctx = self.ctx.clone();
            tokio::task::block_in_place(|| super::sync::score_new(&mut store, &ctx));
        }
        Ok(summary)
    }
}

impl Ingest for SyncIngest {
    async fn ingest(&self, fetched: &[Fetched]) -> Result<(), String> {
        let mut kinds: Vec<Resource> = fetched.iter().map(|f| f.kind).collect();
        kinds.sort();
        kinds.dedup();
        // A changed transaction changes its rewards too; a reward needs its transaction.
        if kinds.contains(&Resource::Transactions) || kinds.contains(&Resource::Rewards) {
            for k in [Resource::Transactions, Resource::Rewards] {
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            kinds.sort();
        }
        let line = self.sync(kinds).await?;
        println!("sync after events: {line}");
        Ok(())
    }
}

fn providers(ctx: &Context, args: &Args) -> anyhow::Result<Vec<Provider>> {
    let specs: BTreeMap<String, String> = if args.providers.is_empty() {
        ctx.config.listen.providers.clone()
    } else {
        let mut m = BTreeMap::new();
        for p in &args.providers {
            let (name, _) = parse_provider(p).map_err(|e| anyhow::anyhow!(e))?;
            let mode = p.split_once('=').map(|x| x.1).unwrap_or_default();
            if m.insert(name.clone(), mode.to_string()).is_some() {
                anyhow::bail!("--provider `{name}` is given twice");
            }
        }
        m
    };
    if specs.is_empty() {
        anyhow::bail!(
            "no webhook sender configured: pass --provider NAME=MODE[:HEADER] (e.g. \
             --provider partnerstack=hmac:X-Signature) or add [listen.providers] to config.toml"
        );
    }
    let mut out = Vec::new();
    for (name, mode) in specs {
        let (name, mode) =
            parse_provider(&format!("{name}={mode}")).map_err(|e| anyhow::anyhow!(e))?;
        let secret = listen::load_secret(&name).map_err(|e| anyhow::anyhow!(e))?;
        out.push(
            Provider::new(&name, mode, secret.expose_secret().as_bytes())
                .map_err(|e| anyhow::anyhow!(e))?,
        );
    }
    Ok(out)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.set_secret {
        listen::valid_provider_name(name).map_err(|e| anyhow::anyhow!(e))?;
        let secret = super::login::read_secret(&format!("webhook secret of `{name}`"))?;
        if secret.expose_secret().trim().is_empty() {
            anyhow::bail!("the secret is empty: nothing stored");
        }
        let backend = crate::sync::creds::store(
            &listen::secret_account(name),
            &secret,
            crate::sync::creds::TIMEOUT,
        )?;
        println!(
            "stored the webhook secret of `{name}` in the {}",
            backend.describe()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let providers = providers(ctx, &args)?;
    if ctx.config.prm.is_none() {
        anyhow::bail!(
            "listen re-fetches every event's object from the PRM: configure one first \
             (`tierdesk login --prm URL --flavor F`)"
        );
    }
    let (cfg, flavor) = super::sync::target(ctx, None, None, None)?;
    let prm_id = super::guard::prm_identity(
        &cfg.url,
        flavor.as_str(),
        cfg.tenant.as_deref().unwrap_or(crate::sim::DEFAULT_TENANT),
    );
    let store = ctx.open_store()?;
    store.check_prm_binding(&prm_id)?;
    let prm =
        Arc::new(crate::sync::adapter::connect_configured(&cfg).map_err(|e| anyhow::anyhow!(e))?);
    let addr = args
        .addr
        .clone()
        .or_else(|| ctx.config.listen.addr.clone())
        .unwrap_or_else(|| listen::DEFAULT_ADDR.to_string());
    let poll = args
        .poll_secs
        .or(ctx.config.listen.poll_secs)
        .unwrap_or(listen::DEFAULT_POLL_SECS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr()?;
        let routes: Vec<String> = providers.iter().map(Provider::route).collect();
        let receiver = Receiver::new(store, providers);
        println!("listening on http://{local} ({})", routes.join(", "));
        let ingest = SyncIngest {
            prm: prm.clone(),
            ctx: ctx.clone(),
        };
        receiver.spawn_worker(PrmRefetch(prm.clone()), ingest);
        if poll > 0 {
            let poller = SyncIngest {
                prm: prm.clone(),
                ctx: ctx.clone(),
            };
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(poll));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match poller.sync(Vec::new()).await {
                        Ok(line) => println!("poll: {line}"),
                        Err(e) => println!("poll failed: {e}"),
                    }
                }
            });
        }
        receiver.serve(listener).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_specs_parse_or_say_what_is_wrong() {
        assert_eq!(
            parse_provider("ps=hmac:X-PS-Sig").unwrap(),
            (
                "ps".to_string(),
                Mode::Hmac {
                    header: "X-PS-Sig".into()
                }
            )
        );
        assert_eq!(parse_provider("imp=path").unwrap().1, Mode::Path);
        assert_eq!(parse_provider("s=standard").unwrap().1, Mode::Standard);
        assert!(parse_provider("nomode").unwrap_err().contains("NAME=MODE"));
        assert!(parse_provider("x=rot13")
            .unwrap_err()
            .contains("provider `x`"));
        assert!(parse_provider("a b=path").unwrap_err().contains("a b"));
    }
}
