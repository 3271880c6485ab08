//! `tierdesk demo`: generate a realistic demo program, import it into the demo
//! cache (never the user's real one) and open the workbench; or, with
//! `--export DIR`, write it as a data-set folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use chrono::NaiveDate;

use super::Context;
use crate::demo::{self, DemoOptions, Generated};
use crate::model::{PartnerKind, TransactionKind};

/// Generate a realistic multi-tier channel program (distributors and resellers,
/// tiers, products, deal registrations, two years of seasonal sales, refunds,
/// PRM commission lines and labelled anomalies of every kind).
///
/// Without --export it is imported into a separate demo cache and the workbench
/// opens on it. The same seed always gives the same program.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Generator seed: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Number of partners (distributors and resellers).
    #[arg(long, default_value_t = 150)]
    pub partners: usize,
    /// Number of transactions (sales and refunds).
    #[arg(long, default_value_t = 20_000)]
    pub transactions: usize,
    /// Program variant: changes tier names, currency, fiscal year, product
    /// families and sizes (0 resembles the shared sample program).
    #[arg(long, default_value_t = 0)]
    pub variant: u32,
    /// "Today" of the program (YYYY-MM-DD); the review window is its last two months.
    #[arg(long, value_name = "DATE", default_value = "2026-09-30")]
    pub as_of: NaiveDate,
    /// Write the data set (docs/dataset.md format, with answers/) to DIR and exit.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// With --export: leave out the answers/ folder (labels, expected commissions).
    #[arg(long, requires = "export")]
    pub no_answers: bool,
    /// The demo cache to (re)create (default: demo.db in the data directory).
    #[arg(long, value_name = "PATH")]
    pub demo_db: Option<PathBuf>,
    /// Import and print the summary, but do not open the workbench.
    #[arg(long)]
    pub no_tui: bool,
    /// Regenerate the demo cache even if it exists (asks first: the work done in it is
    /// lost). Without it, `demo` reopens the existing demo cache.
    #[arg(long)]
    pub fresh: bool,
    /// With --fresh: do not ask (for scripts).
    #[arg(long, short = 'y', requires = "fresh")]
    pub yes: bool,
}

impl Args {
    pub fn options(&self) -> DemoOptions {
        DemoOptions {
            seed: self.seed,
            partners: self.partners,
            transactions: self.transactions,
            variant: self.variant,
            as_of: self.as_of,
        }
    }
}

/// The options a demo cache was made with, kept next to it (`demo.db.options`).
fn options_file(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".options");
    PathBuf::from(p)
}

fn options_text(o: &DemoOptions) -> String {
    format!(
        "--seed {} --partners {} --transactions {} --variant {} --as-of {}",
        o.seed, o.partners, o.transactions, o.variant, o.as_of
    )
}

/// Whether `db` holds an imported demo program.
fn demo_exists(db: &Path) -> bool {
    db.exists()
        && crate::store::Store::open(db)
            .ok()
            .and_then(|s| s.program_info().ok().flatten())
            .is_some()
}

/// `--fresh` on an existing demo: asks (interactive) or needs `--yes`. Ok(false): keep.
fn confirm_fresh(db: &Path, yes: bool) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "the demo cache {} exists and would be replaced (the decisions in it are lost): \
             add --yes to replace it without asking",
            db.display()
        );
    }
    print!(
        "Replace the demo cache {} with a fresh one? The decisions made in it are lost. [y/N] ",
        db.display()
    );
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.options();
    let db = args
        .demo_db
        .clone()
        .unwrap_or_else(|| ctx.paths.demo_db.clone());
    if args.export.is_none() && demo_exists(&db) {
        let made = std::fs::read_to_string(options_file(&db)).unwrap_or_default();
        let wanted = options_text(&opts);
        if !args.fresh {
            println!(
                "Reopening the demo cache {} (made with {}).",
                db.display(),
                if made.trim().is_empty() {
                    "unknown options"
                } else {
                    made.trim()
                }
            );
            if !made.trim().is_empty() && made.trim() != wanted {
                println!("It was made with other options than these ({wanted}): add --fresh to regenerate it.");
            } else {
                println!(
                    "`tierdesk demo --fresh` regenerates it (the decisions made in it are lost)."
                );
            }
            if args.no_tui {
                return Ok(ExitCode::SUCCESS);
            }
            return open_workbench(ctx, &db);
        }
        if !confirm_fresh(&db, args.yes)? {
            println!("Kept the demo cache {}.", db.display());
            return Ok(ExitCode::SUCCESS);
        }
    }
    let t0 = Instant::now();
    let g = demo::generate(&opts);
    let gen_secs = t0.elapsed().as_secs_f64();

    if let Some(dir) = &args.export {
        let t1 = Instant::now();
        demo::export(&g, dir, !args.no_answers)?;
        eprintln!(
            "wrote {} transactions ({} labelled anomalies) to {} (generate {:.2}s, write {:.2}s)",
            g.dataset.transactions.len(),
            g.labels.len(),
            dir.display(),
            gen_secs,
            t1.elapsed().as_secs_f64()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let tmp = std::env::temp_dir().join(format!(
        "tierdesk-demo-{}-{}",
        std::process::id(),
        opts.seed
    ));
    demo::export(&g, &tmp, false)?;
    let t2 = Instant::now();
    let report = fresh_import(&db, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    let report = report?;
    print_summary(&g, &db, gen_secs);
    println!(
        "Imported {} rows into the demo cache {} in {:.2}s ({} rejected)",
        report.accepted(),
        db.display(),
        t2.elapsed().as_secs_f64(),
        report.rejected_total
    );
    score_demo(&db)?;
    let mut store = crate::store::Store::open(&db)?;
    let seeded = crate::demo::cases::seed(&mut store, &ctx.config)?;
    drop(store);
    println!(
        "Seeded review work as {} (analyst) and {} (manager): {}",
        crate::demo::cases::DEMO_ANALYST,
        crate::demo::cases::DEMO_MANAGER,
        seeded.describe()
    );
    let _ = std::fs::write(options_file(&db), options_text(&opts));
    if args.no_tui {
        return Ok(ExitCode::SUCCESS);
    }
    open_workbench(ctx, &db)
}

/// Replaces the demo cache with a fresh one holding the data set in `dir`.
fn fresh_import(db: &Path, dir: &Path) -> anyhow::Result<crate::import::ImportReport> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        if p.exists() {
            std::fs::remove_file(&p)
                .with_context(|| format!("cannot replace the demo cache {}", p.display()))?;
        }
    }
    let mut store = crate::store::Store::open(db)?;
    // A demo cache never syncs with a PRM (its ids would mix with the PRM's).
    store.mark_demo()?;
    crate::import::import_dir(&mut store, dir, &mut |_| {})
}

/// Scores the demo cache so the exception queue is ready when the workbench opens.
fn score_demo(db: &Path) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut store = crate::store::Store::open(db)?;
    let s = crate::service::score::score_cache(&mut store, &mut |_, _| {})?;
    println!(
        "Scored {} transactions in {:.2}s: {} flagged, {} of them in the review window (detector {})",
        s.transactions,
        t.elapsed().as_secs_f64(),
        s.flagged,
        s.flagged_in_window,
        s.detector_version
    );
    Ok(())
}

/// Opens the workbench on the demo cache.
fn open_workbench(ctx: &Context, db: &Path) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        println!(
            "Not a terminal: open the workbench later with `tierdesk --db {}`",
            db.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(ctx) = super::guard::workbench_context(ctx, db)? else {
        return Ok(ExitCode::FAILURE);
    };
    crate::tui::run(&ctx.workbench_options(), db)?;
    Ok(ExitCode::SUCCESS)
}

fn print_summary(g: &Generated, _db: &Path, gen_secs: f64) {
    let ds = &g.dataset;
    let p = &ds.program;
    println!(
        "Demo program {} ({}), currency {}, fiscal year starts in month {}, as of {}",
        p.program_id, p.name, p.currency, p.fiscal_year_start_month, p.as_of
    );
    let dist = ds
        .partners
        .iter()
        .filter(|x| x.kind == PartnerKind::Distributor)
        .count();
    println!(
        "Partners: {} ({} distributors, {} resellers)",
        ds.partners.len(),
        dist,
        ds.partners.len() - dist
    );
    // Current tier of each partner: its latest tier_history row.
    let mut current: std::collections::BTreeMap<&str, &str> = Default::default();
    for h in &ds.tier_history {
        if h.effective_from <= p.as_of {
            current.insert(h.partner_id.as_str(), h.tier_id.as_str());
        }
    }
    let tiers: Vec<String> = ds
        .tiers
        .iter()
        .map(|t| {
            let n = current.values().filter(|v| **v == t.tier_id).count();
            format!("{} {}", t.name, n)
        })
        .collect();
    println!("  by tier:   {}", tiers.join(", "));
    let mut regions: std::collections::BTreeMap<&str, usize> = Default::default();
    for x in &ds.partners {
        *regions.entry(x.region.as_str()).or_default() += 1;
    }
    let regions: Vec<String> = regions.iter().map(|(r, n)| format!("{r} {n}")).collect();
    println!("  by region: {}", regions.join(", "));
    let refunds = ds
        .transactions
        .iter()
        .filter(|t| t.kind == TransactionKind::Refund)
        .count();
    let window = ds
        .transactions
        .iter()
        .filter(|t| p.review_window.contains(&t.submitted_at))
        .count();
    println!(
        "Products {}, registrations {}, quotas {}, commission lines {}",
        ds.products.len(),
        ds.registrations.len(),
        ds.quotas.len(),
        ds.commissions.len()
    );
    println!(
        "Transactions: {} ({} refunds); review window {} to {}: {} submitted",
        ds.transactions.len(),
        refunds,
        p.review_window.start,
        p.review_window.end,
        window
    );
    let kinds: Vec<String> = g
        .kind_counts()
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "Injected anomalies: {} transactions: {}",
        g.labels.len(),
        kinds.join(", ")
    );
    println!("Generated in {gen_secs:.2}s");
}
