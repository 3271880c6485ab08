//! Plan rules end to end: what-if on the sample (unchanged plan: zero everywhere; a
//! changed override rate: the hand-computed difference), the rule report on the sample,
//! and the `plan draft` / `plan apply` / `plan whatif` commands on a real cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rust_decimal::{Decimal, RoundingStrategy};
use tierdesk::model::CommissionLine;

fn sample() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample-program"
    ))
}

fn expected() -> Vec<CommissionLine> {
    std::fs::read_to_string(sample().join("answers/expected_commissions.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

#[test]
fn whatif_with_an_unchanged_plan_is_zero_everywhere() {
    let ds = tierdesk::import::load_dataset(sample()).unwrap().dataset;
    let w = tierdesk::plan::whatif::whatif(&ds, &ds.plan.clone(), None);
    assert!(!w.partners.is_empty());
    assert!(w.partners.iter().all(|p| p.difference.is_zero()));
    assert!(w.total.difference.is_zero());
    assert_eq!(w.accelerator_reach.0, w.accelerator_reach.1);
    // `before` is what the expected lines pay.
    let want: Decimal = expected().iter().map(|l| l.amount).sum();
    assert_eq!(w.total.before, want);
}

#[test]
fn whatif_override_rate_difference_is_the_hand_computed_total() {
    let ds = tierdesk::import::load_dataset(sample()).unwrap().dataset;
    // By hand: each expected override line is 2% of its sale; at 1.5% it is the sale's
    // amount x 0.015, rounded half to even to the cent.
    let amount: BTreeMap<&str, Decimal> = ds
        .transactions
        .iter()
        .map(|t| (t.transaction_id.as_str(), t.amount))
        .collect();
    let mut hand = Decimal::ZERO;
    let mut per_partner: BTreeMap<String, Decimal> = BTreeMap::new();
    for l in expected().iter().filter(|l| l.role.as_str() == "override") {
        let after = cents(amount[l.transaction_id.as_str()] * Decimal::new(15, 3));
        hand += after - l.amount;
        *per_partner.entry(l.payee_partner_id.clone()).or_default() += after - l.amount;
    }
    assert!(hand < Decimal::ZERO);
    let change = tierdesk::plan::whatif::parse_set("override_rate=0.015").unwrap();
    let plan = tierdesk::plan::whatif::apply_change(&ds.plan, &change).unwrap();
    let w = tierdesk::plan::whatif::whatif(&ds, &plan, None);
    assert_eq!(w.total.difference, hand);
    for p in &w.partners {
        let want = per_partner.get(&p.partner_id).copied().unwrap_or_default();
        assert_eq!(p.difference, want, "{}", p.partner_id);
    }
    // The jsonl of the binary says the same.
    let o = Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .args([
            "plan",
            "whatif",
            "--set",
            "override_rate=0.015",
            "--format",
            "jsonl",
            "--dataset",
        ])
        .arg(sample())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["total"]["difference"], format!("{hand:.2}"));
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for k in ["partner_id", "before", "after", "difference"] {
        assert!(first[k].is_string(), "{k}: {first}");
    }
}

#[test]
fn report_on_the_sample_names_the_rules_that_never_triggered() {
    let ds = tierdesk::import::load_dataset(sample()).unwrap().dataset;
    let r = tierdesk::plan::report::report(&ds, None, &Default::default(), &Default::default());
    let exp = expected();
    // Independently of the report: a SPIFF triggered iff the expected lines hold one.
    for s in &ds.plan.spiffs {
        let id = format!("plan:spiff:{}", s.spiff_id);
        let paid = exp
            .iter()
            .any(|l| l.commission_id.ends_with(&format!("-P-{}", s.spiff_id)));
        let stat = r.rules.iter().find(|x| x.rule == id).unwrap();
        assert_eq!(stat.triggered > 0, paid, "{id}");
    }
    let never: Vec<&str> = r
        .rules
        .iter()
        .filter(|s| s.triggered == 0 && s.kind != "clawback")
        .map(|s| s.rule.as_str())
        .collect();
    for s in &r.rules {
        let named = r
            .findings
            .iter()
            .any(|f| f.starts_with(&format!("{} (", s.rule)) && f.contains("never triggered"));
        assert_eq!(
            named,
            never.contains(&s.rule.as_str()),
            "{}: {:#?}",
            s.rule,
            r.findings
        );
    }
    // A scoped rule that cannot match any sale of the sample is named as never triggered.
    let mut ds2 = ds.clone();
    let dead: tierdesk::plan::v2::Rule = serde_json::from_str(
        r#"{"rule_id":"DEAD-2001","kind":"rate_multiplier","scope":{"from":"2001-01-01","to":"2001-03-31"},"multiplier":"2"}"#,
    )
    .unwrap();
    ds2.plan.rules.push(dead);
    let r2 = tierdesk::plan::report::report(&ds2, None, &Default::default(), &Default::default());
    assert!(
        r2.findings
            .iter()
            .any(|f| f.starts_with("DEAD-2001 (rate_multiplier) never triggered")),
        "{:#?}",
        r2.findings
    );
    // Paid shares add up to the override and SPIFF part of the payout at most.
    let total: Decimal = exp.iter().map(|l| l.amount).sum();
    assert_eq!(r.total, total);
}

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    fn imported() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let e = Env { dir, db };
        let o = e.run("ann", "analyst", &["import", sample().to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        e
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
            .args(args)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("TIERDESK_CONFIG", home.join("no-config.toml"))
            .env_remove("TIERDESK_USER")
            .env_remove("TIERDESK_ROLE")
            .env_remove("TIERDESK_DB")
            .output()
            .unwrap()
    }
}

#[test]
fn draft_apply_whatif_on_a_real_cache() {
    let e = Env::imported();
    let region = {
        let ds = tierdesk::import::load_dataset(sample()).unwrap().dataset;
        ds.partners[0].region.clone()
    };
    let sentence =
        format!("accelerator of 1.5x for Q3 overachievement in {region} above 110% of quota");
    let o = e.run(
        "ann",
        "analyst",
        &["plan", "draft", &sentence, "--format", "json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rule"]["kind"], "accelerator");
    assert_eq!(v["rule"]["scope"]["region"], region.as_str());
    assert_eq!(v["rule"]["scope"]["quarter"], 3);
    assert_eq!(v["rule"]["accelerators"][0]["attainment_from"], "1.1");
    assert!(v["paraphrase"].as_str().unwrap().contains("1.5x"));
    let draft = e.dir.path().join("draft.json");
    std::fs::write(&draft, &o.stdout).unwrap();

    // A region the program does not have is refused, naming it.
    let o = e.run(
        "ann",
        "analyst",
        &["plan", "draft", "rate of 12% in Europe", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["unreadable"], "Europe");
    assert!(v["refused"].as_str().unwrap().contains("region"));

    // what-if with the draft: the JSON lines add up to the total line.
    let o = e.run(
        "ann",
        "analyst",
        &[
            "plan",
            "whatif",
            "--rule",
            draft.to_str().unwrap(),
            "--format",
            "jsonl",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (parts, total) = rows.split_at(rows.len() - 1);
    let sum: Decimal = parts
        .iter()
        .map(|r| {
            r["difference"]
                .as_str()
                .unwrap()
                .parse::<Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        format!("{sum:.2}"),
        total[0]["total"]["difference"].as_str().unwrap()
    );
    let whatif_after: Decimal = total[0]["total"]["after"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // apply: analysts may not; a manager adds version 2, audited, the old one kept.
    let apply = [
        "plan",
        "apply",
        draft.to_str().unwrap(),
        "--reason",
        "Q3 push",
    ];
    let o = e.run("ann", "analyst", &apply);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("manager"));
    let o = e.run("mo", "manager", &apply);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = e.run("mo", "manager", &["plan", "versions"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("v1 ") && text.contains("v2 ") && text.contains("Q3 push"),
        "{text}"
    );
    let o = e.run("mo", "manager", &["audit", "verify"]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // The plan in use is the new version: recalculating the cache pays what the what-if said.
    let o = e.run("mo", "manager", &["commissions", "--format", "jsonl"]);
    let paid: Decimal = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["amount"]
                .as_str()
                .unwrap()
                .parse::<Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(paid, whatif_after);
}
