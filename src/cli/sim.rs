//! `tierdesk sim`: a PRM simulator on a local port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use crate::sim::{Faults, Flavor, SimOptions, SimState};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// API shape to serve.
    #[arg(long, value_enum, default_value_t = Flavor::Partnerstack)]
    pub flavor: Flavor,
    /// Seed of the generated program (and of fault injection).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Serve this data-set folder instead of a generated program.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
    /// Generated program size: transactions.
    #[arg(long, default_value_t = 5000)]
    pub transactions: usize,
    /// Generated program size: partners.
    #[arg(long, default_value_t = 200)]
    pub partners: usize,
    /// A lean synthetic program without commission lines (for the sync benchmark).
    #[arg(long, hide = true)]
    pub bare: bool,
    /// Fault injection, e.g. `latency=5,5xx=0.1,reset=0.05,truncate=0.05,malformed=0.05,dup=0.1,429=0.1,lost=0.2`; `write5xx=1` refuses every write with a 503 while reads work.
    #[arg(long, value_name = "SPEC", default_value = "")]
    pub faults: String,
    /// The credential clients must present (PartnerStack: `public:secret`).
    #[arg(long, env = "TIERDESK_SIM_TOKEN", default_value = crate::sim::DEFAULT_TOKEN, hide_env_values = true)]
    pub token: String,
    /// Impartner: an object (`Deal`) or field (`Commission__co.tdAuditHead__cf`) the
    /// simulated tenant does not have (repeatable), to try `tierdesk prm check`.
    #[arg(long, value_name = "OBJECT[.FIELD]")]
    pub lacks: Vec<String>,
    /// Impartner: ignore `skip` (a broken server; the client must stop with an error).
    #[arg(long, hide = true)]
    pub ignore_skip: bool,
    /// Send a webhook to this `tierdesk listen` route after every change made through
    /// the admin endpoints (e.g. http://127.0.0.1:8790/hooks/partnerstack).
    #[arg(long, value_name = "URL")]
    pub notify: Option<String>,
    /// How to sign them: path, standard or hmac[:HEADER]; the secret is in
    /// TIERDESK_SIM_WEBHOOK_SECRET.
    #[arg(long, value_name = "MODE", default_value = "hmac:X-Signature")]
    pub notify_mode: String,
    /// Impartner tenant id clients must send in `X-PRM-TenantId`.
    #[arg(long, default_value = crate::sim::DEFAULT_TENANT)]
    pub tenant: String,
}

pub fn run(_ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let faults = Faults::parse(&args.faults).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
    let ds = match &args.dataset {
        Some(dir) => {
            crate::import::load_dataset(dir)
                .with_context(|| format!("loading data set {}", dir.display()))?
                .dataset
        }
        // The benchmark serves a lean synthetic program; users get the demo generator's.
        None if args.bare => {
            crate::sim::synth::program(args.seed, args.partners, args.transactions, false)
        }
        None => {
            crate::demo::generate(&crate::demo::DemoOptions {
                seed: args.seed,
                partners: args.partners,
                transactions: args.transactions,
                ..crate::demo::DemoOptions::default()
            })
            .dataset
        }
    };
    let opts = SimOptions {
        flavor: args.flavor,
        token: args.token.clone(),
        tenant: args.tenant.clone(),
        faults,
        seed: args.seed,
        missing: args
            .lacks
            .iter()
            .map(|l| match l.split_once('.') {
                Some((o, f)) => (o.to_string(), Some(f.to_string())),
                None => (l.clone(), None),
            })
            .collect(),
        ignore_skip: args.ignore_skip,
        notify: match &args.notify {
            None => None,
            Some(url) => {
                let (m, h) = match args.notify_mode.split_once(':') {
                    Some((m, h)) => (m, Some(h)),
                    None => (args.notify_mode.as_str(), None),
                };
                let mode = crate::listen::Mode::parse(m, h)
                    .map_err(|e| anyhow::anyhow!("--notify-mode: {e}"))?;
                let secret = std::env::var("TIERDESK_SIM_WEBHOOK_SECRET").map_err(|_| {
                    anyhow::anyhow!(
                        "--notify needs the webhook secret in TIERDESK_SIM_WEBHOOK_SECRET"
                    )
                })?;
                Some(crate::sim::Notify {
                    url: url.clone(),
                    mode,
                    secret: secret.into_bytes(),
                })
            }
        },
        ..SimOptions::default()
    };
    let n = ds.transactions.len();
    let state = SimState::new(&ds, opts);
    drop(ds);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!(
            "PRM simulator ({}) serving {n} transactions on http://{addr}",
            args.flavor.as_str()
        );
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        crate::sim::serve(listener, state).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
