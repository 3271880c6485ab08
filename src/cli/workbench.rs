//! The workbench (terminal UI).
//! Store: queue.
//! `tierdesk` with no subcommand: the workbench on the user's cache.
//! `tierdesk bench tui`: first frame, key-to-frame latency and memory on a large cache.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::Context;
use crate::store::queue::synthetic;
use crate::store::Store;
use crate::tui::app::App;
use crate::tui::effects::{self, Effect, Env};

pub fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!(
            "tierdesk: the workbench needs a terminal (stdin and stdout); \
             in scripts use a subcommand (see `tierdesk --help`)"
        );
        return Ok(ExitCode::from(2));
    }
    let Some(ctx) = super::guard::workbench_context(ctx, &ctx.paths.db)? else {
        return Ok(ExitCode::FAILURE);
    };
    crate::tui::run(&ctx.workbench_options(), &ctx.paths.db)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs effects synchronously until none are left (what the worker does, inline).
pub fn settle(app: &mut App, store: &mut Store, env: &Env, fx: Vec<Effect>) {
    settle_with(app, store, env, &mut effects::WorkerState::default(), fx);
}

/// [`settle`] with a worker state kept between calls (the search index, loaded data).
pub fn settle_with(
    app: &mut App,
    store: &mut Store,
    env: &Env,
    state: &mut effects::WorkerState,
    mut fx: Vec<Effect>,
) {
    while !fx.is_empty() {
        let mut next = Vec::new();
        for e in fx {
            effects::execute_stream(store, env, state, e, &mut |m| {
                next.extend(app.on_msg(m));
                true
            });
        }
        fx = next;
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1000.0
}

/// Builds (or reuses) a synthetic cache of `n` transactions at `db`.
pub fn bench_cache(db: &Path, n: usize, seed: u64) -> anyhow::Result<()> {
    if db.exists() {
        let s = Store::open(db)?;
        let have = s
            .row_counts()?
            .into_iter()
            .find(|(t, _)| t == "transactions")
            .map(|(_, c)| c)
            .unwrap_or(0);
        if have as usize == n {
            println!("cache: reusing {} ({n} transactions)", db.display());
            return Ok(());
        }
        drop(s);
        std::fs::remove_file(db)?;
        let _ = std::fs::remove_file(db.with_extension("db-wal"));
        let _ = std::fs::remove_file(db.with_extension("db-shm"));
    }
    let t = Instant::now();
    let mut s = Store::open(db)?;
    s.execute_fixture_sql("PRAGMA synchronous=OFF")?;
    let queued = synthetic::fill(
        &mut s,
        &synthetic::Options {
            transactions: n,
            seed,
            currency: "USD".into(),
            anomaly_rate: 0.3,
        },
    )?;
    s.execute_fixture_sql("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")?;
    println!(
        "cache: built {} with {n} transactions, {queued} in the queue, in {:.1} s",
        db.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn bench(ctx: &Context, opts: &super::bench::BenchOpts) -> anyhow::Result<ExitCode> {
    // The cache is kept (and reused by the next run) in --dir or the temp folder.
    let tmp = std::env::temp_dir().join("tierdesk-bench-tui");
    let dir = match opts.dir.clone() {
        // A data set folder (e.g. `demo --export`) is read-only input: keep the cache apart.
        Some(d) if d.join("transactions.jsonl").exists() => {
            println!(
                "{} holds a data set: the workbench cache goes to {} (synthetic, same size)",
                d.display(),
                tmp.display()
            );
            tmp
        }
        Some(d) => d,
        None => tmp,
    };
    std::fs::create_dir_all(&dir)?;
    let db = dir.join(format!("bench-tui-{}.db", opts.transactions));
    bench_cache(&db, opts.transactions, opts.seed)?;
    // Reset the peak-memory mark so the figure covers the workbench, not the cache build.
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    let (w, h) = (160u16, 48u16);
    let env = Env {
        user: ctx.user.clone(),
        role: ctx.role,
        config: ctx.config.clone(),
    };
    // Start to first full frame: open the cache, load program, counters, status, first page, draw.
    let t0 = Instant::now();
    let wb = ctx.workbench_options();
    let (theme, keymap) = crate::tui::theme_and_keys(&wb)?;
    let mut store = Store::open(&db)?;
    let mut app = crate::tui::new_app(&wb, theme, keymap);
    app.size.set((w, h));
    let mut term = Terminal::new(TestBackend::new(w, h))?;
    let mut state = effects::WorkerState::default();
    let fx = app.start();
    settle_with(&mut app, &mut store, &env, &mut state, fx);
    term.draw(|f| crate::tui::ui::draw(f, &app))?;
    // A full frame has the record pane too (wide layout): load it as the app asked.
    let first_frame = t0.elapsed();
    let first_full = {
        let fx: Vec<Effect> = app
            .detail_id
            .clone()
            .map(|id| vec![Effect::LoadDetail(id)])
            .unwrap_or_default();
        settle_with(&mut app, &mut store, &env, &mut state, fx);
        term.draw(|f| crate::tui::ui::draw(f, &app))?;
        t0.elapsed()
    };
    // The search index: built on the search worker after start (not on the render loop).
    // `TIERDESK_BENCH_SEARCH=sql` measures the store's LIKE search instead (the old path).
    let sql_search = std::env::var("TIERDESK_BENCH_SEARCH").is_ok_and(|v| v == "sql");
    let (index_ms, index_cpu, index_entries, index_mib) = if sql_search {
        (0.0, None, 0, 0.0)
    } else {
        let cpu0 = super::bench::cpu_seconds();
        let t = Instant::now();
        let m = effects::execute(&mut store, &env, &mut state, Effect::BuildSearchIndex);
        let took = t.elapsed();
        let cpu = super::bench::cpu_seconds()
            .zip(cpu0)
            .map(|(a, b)| (a - b) * 1000.0);
        let _ = app.on_msg(m);
        let mib = state
            .search
            .as_ref()
            .map_or(0.0, |ix| ix.heap_bytes() as f64 / 1048576.0);
        (
            took.as_secs_f64() * 1000.0,
            cpu,
            app.search_entries.unwrap_or(0),
            mib,
        )
    };
    anyhow::ensure!(
        !app.queue.rows.is_empty(),
        "the queue is empty: nothing to measure"
    );

    // Two figures per key: the frame right after the key (what the event loop does: the
    // query runs on the worker), and the frame that shows the query's result (run inline).
    let frames: std::cell::RefCell<Vec<Duration>> = std::cell::RefCell::new(Vec::new());
    let first_results: std::cell::RefCell<Vec<Duration>> = std::cell::RefCell::new(Vec::new());
    let mut measure = |app: &mut App,
                       store: &mut Store,
                       keys: &[KeyEvent],
                       out: &mut Vec<Duration>|
     -> anyhow::Result<()> {
        for k in keys {
            let t = Instant::now();
            let mut fx = app.on_key(*k);
            term.draw(|f| crate::tui::ui::draw(f, app))?;
            frames.borrow_mut().push(t.elapsed());
            // Run the effects as the workers do; the frame after the first queue page
            // arrives is the key's first results frame.
            let mut shown = false;
            while !fx.is_empty() {
                let mut next = Vec::new();
                for e in fx {
                    // Each message is applied (and the first page drawn) as it arrives,
                    // before the rest of a streamed page is fetched.
                    let mut drawn: std::io::Result<()> = Ok(());
                    effects::execute_stream(store, &env, &mut state, e, &mut |m| {
                        let is_page = matches!(m, effects::Msg::Queue { .. });
                        next.extend(app.on_msg(m));
                        if is_page && !shown {
                            shown = true;
                            drawn = term.draw(|f| crate::tui::ui::draw(f, app)).map(|_| ());
                            first_results.borrow_mut().push(t.elapsed());
                        }
                        true
                    });
                    drawn?;
                }
                fx = next;
            }
            term.draw(|f| crate::tui::ui::draw(f, app))?;
            out.push(t.elapsed());
        }
        Ok(())
    };
    let mut moves = Vec::new();
    let mut pages = Vec::new();
    let mut filters = Vec::new();
    let mut searches = Vec::new();
    let down: Vec<KeyEvent> = (0..600).map(|_| key(KeyCode::Char('j'))).collect();
    let up: Vec<KeyEvent> = (0..300).map(|_| key(KeyCode::Char('k'))).collect();
    measure(&mut app, &mut store, &down, &mut moves)?;
    measure(&mut app, &mut store, &up, &mut moves)?;
    let pgdn: Vec<KeyEvent> = (0..200).map(|_| key(KeyCode::PageDown)).collect();
    let pgup: Vec<KeyEvent> = (0..100).map(|_| key(KeyCode::PageUp)).collect();
    measure(&mut app, &mut store, &pgdn, &mut pages)?;
    measure(&mut app, &mut store, &pgup, &mut pages)?;
    measure(
        &mut app,
        &mut store,
        &[key(KeyCode::Char('G')), key(KeyCode::Char('g'))],
        &mut pages,
    )?;
    // Filters: open the dialog, step through kinds and statuses, apply, clear.
    for i in 0..8 {
        let mut ks = vec![key(KeyCode::Char('f'))];
        ks.extend((0..=i).map(|_| key(KeyCode::Right)));
        if i % 2 == 1 {
            ks.push(key(KeyCode::Down));
            ks.push(key(KeyCode::Right));
        }
        ks.push(key(KeyCode::Enter));
        measure(&mut app, &mut store, &ks, &mut filters)?;
        measure(
            &mut app,
            &mut store,
            &[key(KeyCode::PageDown), key(KeyCode::Char('j'))],
            &mut filters,
        )?;
        measure(
            &mut app,
            &mut store,
            &[key(KeyCode::Char('F'))],
            &mut filters,
        )?;
    }
    // Incremental search: each typed character re-queries.
    let frames_before_search = frames.borrow().len();
    let results_before_search = first_results.borrow().len();
    let cpu_search0 = super::bench::cpu_seconds();
    for word in ["acme", "helios", "tx-00012", "p0001", "kestrel bank", "zzz"] {
        let mut ks = vec![key(KeyCode::Char('/'))];
        ks.extend(word.chars().map(|c| key(KeyCode::Char(c))));
        ks.push(key(KeyCode::Enter));
        measure(&mut app, &mut store, &ks, &mut searches)?;
        measure(
            &mut app,
            &mut store,
            &[key(KeyCode::Char('F'))],
            &mut searches,
        )?;
    }
    #[allow(clippy::drop_non_drop)]
    drop(measure);
    let search_cpu_ms = super::bench::cpu_seconds()
        .zip(cpu_search0)
        .map(|(a, b)| (a - b) * 1000.0 / searches.len().max(1) as f64);
    let mut frames = frames.into_inner();
    let mut search_results: Vec<Duration> =
        first_results.into_inner()[results_before_search..].to_vec();
    let mut search_frames: Vec<Duration> = frames[frames_before_search..].to_vec();
    let peak = super::bench::peak_memory_mib();
    println!(
        "bench tui: {} transactions, TestBackend {w}x{h}, effects run inline (worst case)",
        opts.transactions
    );
    println!(
        "  first frame            {:>8.1} ms (queue page + header)   first full frame {:.1} ms (goal < 200)",
        first_frame.as_secs_f64() * 1000.0,
        first_full.as_secs_f64() * 1000.0
    );
    {
        let n = frames.len();
        let (p50, p99, max) = (
            pct(&mut frames, 0.5),
            pct(&mut frames, 0.99),
            pct(&mut frames, 1.0),
        );
        println!("  key-to-frame, any key (query on the worker)  p50 {p50:>6.2} ms  p99 {p99:>6.2} ms  max {max:>6.2} ms  (n={n}, goal p99 < 16)");
    }
    {
        let n = search_frames.len();
        let p50 = pct(&mut search_frames, 0.5);
        let p99 = pct(&mut search_frames, 0.99);
        println!("  key-to-frame, search keys                     p50 {p50:>6.2} ms  p99 {p99:>6.2} ms  (n={n})");
        let n = search_results.len();
        let p50 = pct(&mut search_results, 0.5);
        let p99 = pct(&mut search_results, 0.99);
        let max = pct(&mut search_results, 1.0);
        println!("  key-to-results-frame, search (first screenful of matches)  p50 {p50:>6.2} ms  p99 {p99:>6.2} ms  max {max:>6.2} ms  (n={n}, goal p99 < 16)");
    }
    if sql_search {
        println!("  search index           none: TIERDESK_BENCH_SEARCH=sql (LIKE over SQLite)");
    } else {
        println!(
        "  search index           {index_entries} records in {index_ms:.0} ms ({}), {index_mib:.1} MiB; built on the search worker after the first frame",
        index_cpu.map_or("cpu n/a".to_string(), |c| format!("{c:.0} ms CPU"))
    );
    }
    println!("  key-to-result-frame (query run inline, worst case):");
    for (name, v) in [
        ("move", &mut moves),
        ("page", &mut pages),
        ("filter", &mut filters),
        ("search", &mut searches),
    ] {
        let n = v.len();
        let p50 = pct(v, 0.5);
        let p99 = pct(v, 0.99);
        let max = pct(v, 1.0);
        println!("    {name:<8}  p50 {p50:>7.2} ms   p99 {p99:>7.2} ms   max {max:>7.2} ms   (n={n}, goal p99 < 16)");
    }
    if let Some(c) = search_cpu_ms {
        println!(
            "    search: {c:.2} ms CPU per key on average (query + two frames; load-independent)"
        );
    }
    match peak {
        Some(m) => println!(
            "  peak memory            {m:>8.1} MiB (VmHWM after the cache build; goal < 150)"
        ),
        None => println!("  peak memory            unknown on this platform"),
    }
    Ok(ExitCode::SUCCESS)
}
