//! Governed automation end to end: scoring a program sends exactly the alerts the policy
//! says to a real HTTP receiver on 127.0.0.1 (Block Kit for Slack, Standard Webhooks
//! signatures that verify with the spec's algorithm), a replay sends nothing, phases
//! hold exactly what `policy simulate` predicts, and delivery retries without blocking.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use tierdesk::alerts::{deliver, AlertsConfig, Channel, ChannelKind};
use tierdesk::store::policy::NewAlert;
use tierdesk::store::Store;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: String,
}

/// Answers to give before answering 200: (status, Retry-After).
type Script = VecDeque<(u16, Option<String>)>;

#[derive(Clone, Default)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<Script>>,
}

async fn handle(
    axum::extract::State(s): axum::extract::State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    s.hits.lock().unwrap().push(Hit {
        path: uri.path().to_string(),
        headers,
        body,
    });
    let next = s.script.lock().unwrap().pop_front();
    let mut h = HeaderMap::new();
    match next {
        Some((code, retry)) => {
            if let Some(r) = retry {
                h.insert("retry-after", r.parse().unwrap());
            }
            (StatusCode::from_u16(code).unwrap(), h, "no".to_string())
        }
        None => (StatusCode::OK, h, "ok".to_string()),
    }
}

fn receiver(script: Vec<(u16, Option<&str>)>) -> (String, Shared) {
    let shared = Shared::default();
    shared
        .script
        .lock()
        .unwrap()
        .extend(script.into_iter().map(|(c, r)| (c, r.map(str::to_string))));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    let state = shared.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            let app = axum::Router::new().fallback(handle).with_state(state);
            axum::serve(l, app).await.unwrap();
        });
    });
    (addr, shared)
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample-program-v2")
}

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
    config: PathBuf,
    addr: String,
}

impl Env {
    fn new(addr: &str, policy: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "# test config\n{policy}\n[alerts]\nretry_base_ms = 50\nbudget_secs = 20\n\n\
                 [[alerts.channels]]\nname = \"ops\"\nkind = \"slack\"\n\n\
                 [[alerts.channels]]\nname = \"hooks\"\nkind = \"webhook\"\nurl = \"{addr}/hook\"\n"
            ),
        )
        .unwrap();
        Env {
            dir,
            db,
            config,
            addr: addr.to_string(),
        }
    }

    fn run(&self, user: &str, role: &str, args: &[&str]) -> Output {
        let home = self.dir.path();
        Command::new(env!("CARGO_BIN_EXE_tierdesk"))
            .args([
                "--db",
                self.db.to_str().unwrap(),
                "--user",
                user,
                "--role",
                role,
            ])
            .args(["--config", self.config.to_str().unwrap()])
            .args(args)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("cfg"))
            .env("TIERDESK_ALERT_OPS", format!("{}/slack", self.addr))
            .env("TIERDESK_ALERT_HOOKS", SECRET)
            .env_remove("TIERDESK_USER")
            .env_remove("TIERDESK_ROLE")
            .env_remove("TIERDESK_DB")
            .env_remove("TIERDESK_CONFIG")
            .output()
            .unwrap()
    }

    fn ok(&self, user: &str, role: &str, args: &[&str]) -> String {
        let o = self.run(user, role, args);
        assert!(
            o.status.success(),
            "{args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// The Standard Webhooks check, written here from the spec (not the product's code).
fn signature_ok(secret: &str, hit: &Hit) -> bool {
    let h = |k: &str| {
        hit.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            h("webhook-id"),
            h("webhook-timestamp"),
            hit.body
        )
        .as_bytes(),
    );
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    h("webhook-signature").split(' ').any(|s| s == want)
}

fn effects(store: &Store) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in store.policy_routes().unwrap() {
        *m.entry(r.effect).or_insert(0) += 1;
    }
    m
}

#[test]
fn scoring_sends_exactly_the_alerts_the_policy_routes_and_phases_hold_what_simulate_says() {
    let (addr, rx) = receiver(vec![]);
    let env = Env::new(&addr, "");
    let imp = env.run("ana", "analyst", &["import", sample().to_str().unwrap()]);
    assert!(matches!(imp.status.code(), Some(0) | Some(3)), "{imp:?}");
    env.ok("ana", "analyst", &["score"]);

    // Observe (the default): every task/hold route is alerted once per channel, nothing held.
    let store = Store::open(&env.db).unwrap();
    let e = effects(&store);
    let alerted = e.get("alerted").copied().unwrap_or(0);
    assert!(alerted > 0, "{e:?}");
    assert_eq!(e.get("held"), None, "observe holds nothing: {e:?}");
    assert_eq!(e.get("adjusted"), None);
    let hits = rx.hits.lock().unwrap().clone();
    let slack: Vec<_> = hits.iter().filter(|h| h.path == "/slack").collect();
    let hooks: Vec<_> = hits.iter().filter(|h| h.path == "/hook").collect();
    assert_eq!(
        slack.len(),
        alerted,
        "one Slack alert per routed task/hold flag"
    );
    assert_eq!(
        hooks.len(),
        alerted,
        "one webhook per routed task/hold flag"
    );
    for h in &slack {
        let v: serde_json::Value = serde_json::from_str(&h.body).unwrap();
        let blocks = v["blocks"].as_array().expect("Block Kit blocks");
        assert_eq!(blocks[0]["type"], "header");
        assert!(
            v["text"].as_str().unwrap().starts_with("Task:")
                || v["text"].as_str().unwrap().starts_with("Hold:")
        );
    }
    for h in &hooks {
        assert!(signature_ok(SECRET, h), "signature must verify");
        assert!(!signature_ok("whsec_dGhpcyBpcyBhbm90aGVyIGtleQ==", h));
        let v: serde_json::Value = serde_json::from_str(&h.body).unwrap();
        assert_eq!(v["type"], "tierdesk.flag");
        let tx = v["data"]["transaction_id"].as_str().unwrap();
        assert!(store.policy_route(tx).unwrap().is_some());
    }
    // Alert bodies carry no tax ids or bank details of any partner.
    let partners = std::fs::read_to_string(sample().join("partners.jsonl")).unwrap();
    for line in partners.lines().take(50) {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(t) = p["tax_id"].as_str() {
            assert!(
                hits.iter().all(|h| !h.body.contains(t)),
                "tax id {t} leaked"
            );
        }
    }
    let no_policy_decisions = store
        .decisions_on_kinds()
        .unwrap()
        .iter()
        .all(|d| d.actor != "policy");
    assert!(no_policy_decisions, "observe changes no accrual");
    drop(store);

    // The queue carries each transaction's processing status.
    let q = env.ok("ana", "analyst", &["queue", "--format", "jsonl"]);
    assert!(!q.is_empty());
    for l in q.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["processing_status"], "anomaly_flagged", "{l}");
    }

    // A replay of the same flags sends nothing.
    env.ok("ana", "analyst", &["score"]);
    env.ok("ana", "analyst", &["policy", "run"]);
    assert_eq!(rx.hits.lock().unwrap().len(), hits.len());

    // What simulate says review would hold, review holds.
    let sim = env.ok(
        "ana",
        "analyst",
        &[
            "policy", "simulate", "--phase", "review", "--format", "jsonl",
        ],
    );
    let mut want: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for l in sim.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        want.insert(
            (
                v["rule"].as_str().unwrap().into(),
                v["kind"].as_str().unwrap().into(),
            ),
            (v["held"].as_u64().unwrap(), v["tasks"].as_u64().unwrap()),
        );
    }
    let refused = env.run(
        "ana",
        "analyst",
        &["policy", "phase", "set", "review", "--reason", "pilot"],
    );
    assert!(
        !refused.status.success(),
        "an analyst cannot change the phase"
    );
    env.ok(
        "mia",
        "manager",
        &["policy", "phase", "set", "review", "--reason", "pilot"],
    );
    env.ok("mia", "manager", &["policy", "run"]);
    let store = Store::open(&env.db).unwrap();
    let mut got: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for r in store.policy_routes().unwrap() {
        if r.effect == "qa_sample" {
            continue;
        }
        for k in &r.kinds {
            let e = got.entry((r.rule.clone(), k.clone())).or_default();
            e.0 += u64::from(r.effect == "held");
            e.1 += u64::from(r.effect == "task");
        }
    }
    assert_eq!(
        got, want,
        "policy simulate equals what applying the policy does"
    );
    assert!(
        got.values().any(|(h, _)| *h > 0),
        "the default policy holds something on the v2 sample"
    );
    let trail = store.audit_for_action_count("policy_hold");
    let held = store
        .policy_routes()
        .unwrap()
        .iter()
        .filter(|r| r.effect == "held")
        .count();
    assert_eq!(trail, held, "every hold is audited once");
    // The holds are listed for the partner manager, with what to tell each partner.
    let listed: Vec<serde_json::Value> = env
        .ok("ana", "analyst", &["policy", "held", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), held, "{listed:?}");
    for l in &listed {
        let m = l["message"].as_str().unwrap();
        assert!(m.contains(l["transaction_id"].as_str().unwrap()), "{m}");
        assert!(m.contains("held for review"), "{m}");
    }
    // No new alerts: the flags did not change, only the phase.
    assert_eq!(rx.hits.lock().unwrap().len(), hits.len());

    // Assist is refused without pre-approved kinds (and with too few decisions).
    let assist = env.run(
        "mia",
        "manager",
        &["policy", "phase", "set", "assist", "--reason", "go"],
    );
    assert!(!assist.status.success());
    let verify = env.ok("ana", "analyst", &["audit", "verify"]);
    assert!(!verify.is_empty());
}

trait AuditCount {
    fn audit_for_action_count(&self, action: &str) -> usize;
}

impl AuditCount for Store {
    fn audit_for_action_count(&self, action: &str) -> usize {
        let mut n = 0;
        self.wf()
            .for_each_audit(|a| {
                if a.action == action {
                    n += 1;
                }
                Ok(true)
            })
            .unwrap();
        n
    }
}

fn webhook_cfg(name: &str, url: &str) -> AlertsConfig {
    AlertsConfig {
        channels: vec![Channel {
            name: name.into(),
            kind: ChannelKind::Webhook,
            url: Some(url.into()),
        }],
        retry_base_ms: 50,
        timeout_secs: 1,
        budget_secs: 10,
        ..AlertsConfig::default()
    }
}

fn queue_one(store: &Store, channel: &str) {
    let payload = serde_json::json!({"type": "test", "channel": channel});
    store
        .insert_alert(&NewAlert {
            alert_id: "msg_1",
            channel,
            dedupe_key: &format!("{channel}:t"),
            kind: "test",
            transaction_id: None,
            payload: &payload,
            now: "2000-01-01T00:00:00.000Z",
        })
        .unwrap();
}

#[test]
fn a_failing_receiver_gets_retries_and_the_alert_once_it_recovers() {
    let (addr, rx) = receiver(vec![(500, None), (500, None), (429, Some("1"))]);
    std::env::set_var("TIERDESK_ALERT_RETRYHOOK", SECRET);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).unwrap();
    queue_one(&store, "retryhook");
    let cfg = webhook_cfg("retryhook", &format!("{addr}/hook"));
    let rep = deliver::deliver(&store, &cfg, Duration::from_secs(10)).unwrap();
    assert_eq!(rep.sent, 1, "{rep:?}");
    assert_eq!(rep.pending, 0);
    let hits = rx.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 4, "500, 500, 429, then 200");
    assert!(hits.iter().all(|h| signature_ok(SECRET, h)));
    // Delivered once: another pass sends nothing.
    let again = deliver::deliver(&store, &cfg, Duration::from_secs(1)).unwrap();
    assert_eq!(again.sent, 0);
    assert_eq!(rx.hits.lock().unwrap().len(), 4);
}

#[test]
fn an_unreachable_or_silent_receiver_never_blocks() {
    std::env::set_var("TIERDESK_ALERT_DEADHOOK", SECRET);
    std::env::set_var("TIERDESK_ALERT_SILENTHOOK", SECRET);
    // Nothing listens on the port of a listener that was closed again.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/x", l.local_addr().unwrap())
    };
    // This one accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/x", silent.local_addr().unwrap());
    for (name, url) in [("deadhook", dead), ("silenthook", silent_url)] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.db")).unwrap();
        queue_one(&store, name);
        let cfg = webhook_cfg(name, &url);
        let start = Instant::now();
        let rep = deliver::deliver(&store, &cfg, Duration::from_secs(2)).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "{name}: {:?}",
            start.elapsed()
        );
        assert_eq!(rep.sent, 0);
        assert_eq!(rep.pending, 1, "{name}: the alert waits in the outbox");
        assert!(!rep.errors.is_empty());
        let a = &store.alerts(10).unwrap()[0];
        assert!(a.attempts >= 1 && a.status == "pending", "{a:?}");
    }
    drop(silent);
}

#[test]
fn a_qa_sample_of_validated_high_value_transactions_reaches_the_queue_and_stays() {
    // Every partner of the sample is high-value here, so the pool is every clean
    // transaction of the review window.
    let ids: Vec<String> = std::fs::read_to_string(sample().join("partners.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{:?}", v["partner_id"].as_str().unwrap())
        })
        .collect();
    let policy = format!(
        "high_value_partners = [{}]\n[policy]\nqa_sample = 0.05\n",
        ids.join(", ")
    );
    let (addr, _rx) = receiver(vec![]);
    let env = Env::new(&addr, &policy);
    env.run("ana", "analyst", &["import", sample().to_str().unwrap()]);
    let first = env.ok("ana", "analyst", &["score"]);
    let qa = |env: &Env| -> Vec<serde_json::Value> {
        env.ok("ana", "analyst", &["queue", "--format", "jsonl"])
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["kinds"] == serde_json::json!(["qa_sample"]))
            .collect()
    };
    let sampled = qa(&env);
    assert!(!sampled.is_empty(), "no QA sample drawn: {first}");
    let store = Store::open(&env.db).unwrap();
    let plain: Vec<String> = ids
        .iter()
        .map(|q| q.trim_matches('"').to_string())
        .collect();
    let plain: Vec<&str> = plain.iter().map(String::as_str).collect();
    let pool = store.validated_high_value(&plain).unwrap().len() + sampled.len();
    drop(store);
    // Near the configured share of the pool (deterministic, hash-drawn).
    let share = sampled.len() as f64 / pool as f64;
    assert!((0.02..0.09).contains(&share), "{} of {pool}", sampled.len());
    for v in &sampled {
        assert_eq!(v["processing_status"], "ai_validated", "{v}");
        assert!(
            v["reasons"][0].as_str().unwrap().contains("QA sample"),
            "{v}"
        );
    }
    // A rescore of the same rows keeps the sample and rewrites nothing.
    let again = env.ok("ana", "analyst", &["score"]);
    assert!(again.contains("0 new or changed rewritten"), "{again}");
    assert_eq!(qa(&env).len(), sampled.len());
    // A person's verdict on a QA sample measures no detector's precision.
    let t = sampled[0]["transaction_id"].as_str().unwrap();
    env.ok(
        "ana",
        "analyst",
        &["decide", t, "--dismiss", "--reason", "checked: fine"],
    );
    let p = env.ok("ana", "analyst", &["policy", "precision"]);
    assert!(!p.contains("qa_sample"), "{p}");
}

/// The workbench on a real cache (TestBackend), as `tests/workbench_items.rs` drives it.
struct Bench {
    app: tierdesk::tui::app::App,
    store: Store,
    env: tierdesk::tui::effects::Env,
    term: ratatui::Terminal<ratatui::backend::TestBackend>,
}

impl Bench {
    fn new(db: &Path, config: &Path, user: &str, role: tierdesk::config::Role) -> Bench {
        let text = std::fs::read_to_string(config).unwrap();
        let cfg: tierdesk::config::Config = toml::from_str(&text).unwrap();
        let keymap = tierdesk::tui::keymap::Keymap::new(&Default::default()).unwrap();
        let theme = tierdesk::tui::theme::Theme::monochrome();
        let app = tierdesk::tui::app::App::new(user.into(), role, cfg.clone(), theme, keymap);
        app.size.set((100, 30));
        let env = tierdesk::tui::effects::Env {
            user: user.into(),
            role,
            config: cfg,
        };
        let mut b = Bench {
            app,
            store: Store::open(db).unwrap(),
            env,
            term: ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap(),
        };
        let fx = b.app.start();
        tierdesk::cli::workbench::settle(&mut b.app, &mut b.store, &b.env, fx);
        b.draw();
        b
    }

    fn draw(&mut self) {
        let app = &self.app;
        self.term.draw(|f| tierdesk::tui::ui::draw(f, app)).unwrap();
    }

    fn key(&mut self, c: char) {
        let k = crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char(c),
            crossterm::event::KeyModifiers::NONE,
        );
        let fx = self.app.on_key(k);
        tierdesk::cli::workbench::settle(&mut self.app, &mut self.store, &self.env, fx);
        self.draw();
        self.draw();
    }

    fn screen(&self) -> String {
        let buf = self.term.backend().buffer();
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }
}

#[test]
fn assist_adjusts_once_the_gate_is_met_and_the_policy_view_rolls_one_back() {
    let policy = "[policy]\npre_approved = [\"discount_policy\"]\nmin_precision = 0.9\n\
                  min_decisions = 3\nqa_sample = 0.0\n\n[[policy.rules]]\nname = \"deep discounts\"\n\
                  kinds = [\"discount_policy\"]\naction = \"auto_adjust\"\n";
    let (addr, _rx) = receiver(vec![]);
    let env = Env::new(&addr, policy);
    env.run("ana", "analyst", &["import", sample().to_str().unwrap()]);
    env.ok("ana", "analyst", &["score"]);
    let discount: Vec<String> = env
        .ok("ana", "analyst", &["queue", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kinds"] == serde_json::json!(["discount_policy"]))
        .map(|v| v["transaction_id"].as_str().unwrap().to_string())
        .collect();
    assert!(discount.len() >= 4, "{discount:?}");
    // Too few decisions: assist is refused.
    let early = env.run(
        "mia",
        "manager",
        &["policy", "phase", "set", "assist", "--reason", "go"],
    );
    assert!(!early.status.success(), "assist allowed with no decisions");
    // People confirm three; the gate (0.9 over 3) is met and assist is allowed.
    for t in &discount[..3] {
        env.ok("ana", "analyst", &["decide", t, "--approve"]);
    }
    env.ok(
        "mia",
        "manager",
        &[
            "policy",
            "phase",
            "set",
            "assist",
            "--reason",
            "precision measured",
        ],
    );
    env.ok("mia", "manager", &["policy", "run"]);
    let store = Store::open(&env.db).unwrap();
    let adjusted: Vec<_> = store
        .policy_routes()
        .unwrap()
        .into_iter()
        .filter(|r| r.effect == "adjusted")
        .collect();
    assert_eq!(
        adjusted.len(),
        discount.len() - 3,
        "the rest of the kind is adjusted by the policy"
    );
    let policy_decisions = store
        .decisions_on_kinds()
        .unwrap()
        .into_iter()
        .filter(|d| d.actor == "policy")
        .map(|d| d.transaction_id)
        .collect::<std::collections::BTreeSet<_>>();
    let adjusted_ids: std::collections::BTreeSet<String> =
        adjusted.iter().map(|r| r.transaction_id.clone()).collect();
    assert_eq!(policy_decisions, adjusted_ids, "made by the policy actor");
    drop(store);

    // The Policy view lists them; `u` asks, `y` rolls the selected one back.
    let mut b = Bench::new(&env.db, &env.config, "mia", tierdesk::config::Role::Manager);
    b.key('4');
    let screen = b.screen();
    assert!(screen.contains("deep discounts"), "{screen}");
    assert!(screen.contains("Automated decisions"), "{screen}");
    let first = b.app.policy.selected().unwrap().transaction_id.clone();
    assert!(screen.contains(&first), "{screen}");
    assert!(screen.contains("phase assist"), "status bar: {screen}");
    b.key('u');
    assert!(b.app.modal.is_some(), "rollback did not ask first");
    b.key('y');
    let store = Store::open(&env.db).unwrap();
    let route = store.policy_route(&first).unwrap().unwrap();
    assert_eq!(route.effect, "rolled_back");
    let undone = store
        .wf()
        .decisions_for(&first)
        .unwrap()
        .iter()
        .any(|d| d.reverts.is_some());
    assert!(undone, "a compensating decision was written");
    // The others stay adjusted; the view shows the rollback.
    assert_eq!(
        store
            .policy_routes()
            .unwrap()
            .iter()
            .filter(|r| r.effect == "adjusted")
            .count(),
        adjusted.len() - 1
    );
    assert!(b.screen().contains("rolled back"), "{}", b.screen());
    let verify = env.ok("ana", "analyst", &["audit", "verify"]);
    assert!(!verify.is_empty());
}

/// A `prm` channel creates the alert as a task record in Impartner (the mapped task
/// object, with the alert id), through the PRM's connection; on PartnerStack, which has no
/// task API, it is refused with what to use instead and never retried.
#[test]
fn a_prm_channel_creates_an_impartner_task_and_partnerstack_is_refused() {
    use tierdesk::sim::{Flavor, SimOptions, SimState, DEFAULT_TENANT, DEFAULT_TOKEN};
    let ds = tierdesk::sim::synth::program(5, 4, 10, true);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let state = SimState::new(
        &ds,
        SimOptions {
            flavor: Flavor::Impartner,
            ..SimOptions::default()
        },
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(tierdesk::sim::serve(listener, state.clone()));
    std::env::set_var("TIERDESK_PRM_TOKEN", DEFAULT_TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("c.db")).unwrap();
    let payload = serde_json::json!({
        "type": "flag", "what": "Task:", "transaction_id": "100007", "partner_id": "P1",
        "partner_name": "Acme Partners", "amount_at_stake": "120.50", "currency": "USD",
        "score": 0.55, "confidence": 0.5, "kinds": ["duplicate"],
        "top_reason": "resubmits 100003", "rule": "low", "phase": "observe"
    });
    let queue = |ch: &str| {
        store
            .insert_alert(&NewAlert {
                alert_id: &format!("msg_{ch}"),
                channel: ch,
                dedupe_key: &format!("{ch}:t"),
                kind: "flag",
                transaction_id: Some("100007"),
                payload: &payload,
                now: "2000-01-01T00:00:00.000Z",
            })
            .unwrap()
    };
    assert!(queue("prmtasks"));
    let mut cfg = AlertsConfig {
        channels: vec![Channel {
            name: "prmtasks".into(),
            kind: ChannelKind::Prm,
            url: None,
        }],
        retry_base_ms: 50,
        timeout_secs: 2,
        budget_secs: 10,
        ..AlertsConfig::default()
    };
    cfg.prm = Some(tierdesk::config::PrmConfig::new(
        &url,
        "impartner",
        Some(DEFAULT_TENANT.into()),
    ));
    let rep = deliver::deliver(&store, &cfg, Duration::from_secs(10)).unwrap();
    assert_eq!(rep.sent, 1, "{rep:?}");
    let tasks: Vec<_> = state
        .ledger()
        .into_iter()
        .filter(|e| e.action == "task")
        .collect();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].decision_id.as_deref(), Some("msg_prmtasks"));
    assert_eq!(tasks[0].transaction_id, "100007");
    assert!(tasks[0].record.starts_with("tdTask__co/"));
    let text = tasks[0].reason.clone().unwrap();
    assert!(
        text.contains("Acme Partners") && text.contains("resubmits 100003"),
        "{text}"
    );
    // Delivered once: a second pass creates nothing.
    let again = deliver::deliver(&store, &cfg, Duration::from_secs(2)).unwrap();
    assert_eq!(again.sent, 0);
    assert_eq!(state.ledger().len(), 1);
    // The same channel on a PartnerStack program: refused, named, not retried.
    let ps = AlertsConfig {
        channels: vec![Channel {
            name: "pstasks".into(),
            kind: ChannelKind::Prm,
            url: None,
        }],
        prm: Some(tierdesk::config::PrmConfig::new(&url, "partnerstack", None)),
        ..cfg.clone()
    };
    assert!(queue("pstasks"));
    let rep = deliver::deliver(&store, &ps, Duration::from_secs(2)).unwrap();
    assert_eq!(rep.sent, 0);
    assert_eq!(rep.failed, 1, "{rep:?}");
    assert!(
        rep.errors
            .iter()
            .any(|e| e.contains("no task or case object")),
        "{:?}",
        rep.errors
    );
}

/// `alerts add prm NAME` writes the channel for Impartner and refuses on PartnerStack.
#[test]
fn alerts_add_prm_writes_the_channel_on_impartner_and_refuses_partnerstack() {
    let dir = tempfile::tempdir().unwrap();
    for (flavor, ok) in [("impartner", true), ("partnerstack", false)] {
        let cfg = dir.path().join(format!("{flavor}.toml"));
        std::fs::write(
            &cfg,
            format!("# mine\n[prm]\nurl = \"http://127.0.0.1:9\"\nflavor = \"{flavor}\"\ntenant = \"1\"\n"),
        )
        .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_tierdesk"))
            .arg("--db")
            .arg(dir.path().join("c.db"))
            .arg("--config")
            .arg(&cfg)
            .args(["alerts", "add", "prm", "tasks"])
            .env("HOME", dir.path())
            .output()
            .unwrap();
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert_eq!(o.status.success(), ok, "{flavor}: {o:?}");
        if ok {
            assert!(
                text.contains("kind = \"prm\"") && text.contains("# mine"),
                "{text}"
            );
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("no task or case object"), "{err}");
            assert!(!text.contains("kind = \"prm\""));
        }
    }
}
