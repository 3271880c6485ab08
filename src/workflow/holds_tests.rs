//! Unit tests of what a decision means and writes: holds (no write-off, no reversal,
//! released or reversed later), money at the edge, four-eyes on normalised names, the
//! typed outbox (and old rows), and the journal's closed periods.

use std::collections::BTreeMap;

use rust_decimal_macros::dec;
use serde_json::Value;

use super::*;
use crate::config::{JournalConfig, Role};
use crate::store::workflow::test_support as ts;
use crate::store::Store;

fn analyst(u: &str) -> Actor {
    Actor::new(u, Role::Analyst)
}
fn manager(u: &str) -> Actor {
    Actor::new(u, Role::Manager)
}

fn policy() -> Policy {
    Policy {
        thresholds: BTreeMap::new(),
        default_threshold: dec!(500),
        high_value_partners: Default::default(),
    }
}

fn store() -> Store {
    let s = Store::open_in_memory().unwrap();
    ts::insert_program(&s, "USD", 1).unwrap();
    ts::insert_partner(&s, "P1", false).unwrap();
    s
}

/// A flagged transaction (deal 10,000 closed on `closed`) with a proposal.
fn add(s: &Store, tx: &str, action: &str, current: &str, proposed: &str, closed: &str) {
    ts::insert_transaction(s, tx, "P1", "10000.00", "USD", closed, &format!("h-{tx}")).unwrap();
    ts::insert_flag(
        s,
        tx,
        "P1",
        0.9,
        &["registration_mismatch"],
        &format!("h-{tx}"),
    )
    .unwrap();
    let delta = proposed.parse::<Decimal>().unwrap() - current.parse::<Decimal>().unwrap();
    ts::insert_proposal(s, tx, action, current, proposed, &delta.to_string(), "USD").unwrap();
}

fn state(s: &Store, tx: &str) -> CaseState {
    case(s, tx).unwrap().unwrap().state
}

/// The PRM writes of the pending outbox for `tx`, as the sync sends them.
fn pushes(s: &Store, tx: &str) -> Vec<(String, Option<Decimal>)> {
    pending_outbox(s, 100)
        .unwrap()
        .into_iter()
        .filter(|o| o.transaction_id == tx)
        .map(|o| {
            let r = crate::sync::push_request_item(&o, None).unwrap();
            (r.action, r.amount)
        })
        .collect()
}

fn push_all(s: &mut Store) {
    for o in pending_outbox(s, 100).unwrap() {
        mark_pushed(s, &o.decision_id, "r").unwrap();
    }
}

fn open_journal() -> JournalConfig {
    JournalConfig {
        closed_through: Some("2000-Q1".into()),
        ..JournalConfig::default()
    }
}

fn all_lines(s: &Store, cfg: &JournalConfig) -> usize {
    let mut n = 0;
    for y in 2025..=2028 {
        for q in 1..=4 {
            n += journal_with(s, &format!("{y}-Q{q}"), cfg).unwrap().len();
        }
    }
    n
}

#[test]
fn an_approved_hold_holds_the_commission_and_reverses_nothing() {
    let mut s = store();
    let p = policy();
    add(&s, "H", "hold", "300", "0", "2026-08-15");
    assert_eq!(
        decide(&mut s, &p, &analyst("ana"), "H", Command::Approve, "").unwrap(),
        CaseState::QueuedForPush
    );
    // The PRM is asked to hold, not to adjust to 0.
    assert_eq!(pushes(&s, "H"), vec![("hold".to_string(), None)]);
    let o = &pending_outbox(&s, 10).unwrap()[0];
    assert_eq!(o.payload["prm_write"], "hold");
    assert_eq!(o.payload["held_amount"], "300");
    assert_eq!(case(&s, "H").unwrap().unwrap().decided_amount, None);
    push_all(&mut s);
    assert_eq!(state(&s, "H"), CaseState::Pushed);
    // No reversal in any period, whatever is open.
    assert_eq!(all_lines(&s, &open_journal()), 0);
    assert_eq!(all_lines(&s, &JournalConfig::default()), 0);
    // Approving it again is refused; releasing it is a further decision.
    assert!(matches!(
        decide(&mut s, &p, &analyst("ana"), "H", Command::Approve, "again"),
        Err(WorkflowError::IllegalTransition { .. })
    ));
    assert_eq!(
        decide(
            &mut s,
            &p,
            &analyst("ana"),
            "H",
            Command::Dismiss,
            "docs came"
        )
        .unwrap(),
        CaseState::Dismissed
    );
    assert_eq!(pushes(&s, "H"), vec![("release".to_string(), None)]);
    assert_eq!(
        OutboxPayload::decode(&pending_outbox(&s, 10).unwrap()[0].payload, "x")
            .unwrap()
            .write,
        PrmWrite::Release
    );
    assert_eq!(all_lines(&s, &open_journal()), 0);
}

#[test]
fn a_pushed_hold_can_be_reversed_by_an_override_to_zero() {
    let mut s = store();
    let p = policy();
    add(&s, "H", "hold", "300", "0", "2026-08-15");
    decide(&mut s, &p, &analyst("ana"), "H", Command::Approve, "").unwrap();
    push_all(&mut s);
    let st = decide(
        &mut s,
        &p,
        &analyst("ana"),
        "H",
        Command::Override { amount: dec!(0) },
        "no documents: reverse",
    )
    .unwrap();
    assert_eq!(st, CaseState::QueuedForPush);
    assert_eq!(pushes(&s, "H"), vec![("adjust".to_string(), Some(dec!(0)))]);
    let lines = journal_with(&s, "2026-Q3", &open_journal()).unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].account, "Accrued Commissions");
    assert_eq!(lines[0].debit, Some(dec!(300)));
}

#[test]
fn a_large_hold_needs_signoff_and_the_list_says_it_is_a_hold() {
    let mut s = store();
    let p = policy();
    add(&s, "HB", "hold", "800", "0", "2026-08-15");
    add(&s, "RV", "reverse", "900", "0", "2026-08-15");
    for t in ["HB", "RV"] {
        assert_eq!(
            decide(&mut s, &p, &analyst("ana"), t, Command::Approve, "").unwrap(),
            CaseState::AwaitingSignoff
        );
    }
    let q = signoff_queue(&s).unwrap();
    let hb = q.iter().find(|i| i.transaction_id == "HB").unwrap();
    assert_eq!(hb.action, "hold");
    assert_eq!(hb.held_amount, Some(dec!(800)));
    assert_eq!(hb.delta, dec!(0));
    let rv = q.iter().find(|i| i.transaction_id == "RV").unwrap();
    assert_eq!(rv.action, "reverse");
    assert_eq!(rv.held_amount, None);
    assert_eq!(rv.delta, dec!(-900));
    signoff(
        &mut s,
        &p,
        &manager("max"),
        "HB",
        SignoffCommand::Approve,
        "",
    )
    .unwrap();
    assert_eq!(pushes(&s, "HB"), vec![("hold".to_string(), None)]);
    let o = pending_outbox(&s, 10).unwrap();
    assert_eq!(o[0].payload["signed_off_by"], "max");
    assert_eq!(o[0].payload["proposer"], "ana");
}

#[test]
fn overrides_beyond_the_bounds_or_the_minor_unit_are_refused_with_nothing_applied() {
    let mut s = store();
    let p = policy();
    add(&s, "T", "adjust", "100", "90", "2026-08-15");
    for (amount, needle) in [
        (dec!(12.345), "more decimals than USD allows"),
        (
            dec!(9999999999999999999999999999),
            "beyond the largest amount",
        ),
        (dec!(1000000000000.01), "beyond the largest amount"),
    ] {
        let e = decide(
            &mut s,
            &p,
            &analyst("ana"),
            "T",
            Command::Override { amount },
            "typo",
        )
        .unwrap_err();
        assert!(matches!(e, WorkflowError::InvalidAmount(_)), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        assert_eq!(state(&s, "T"), CaseState::Flagged);
        assert!(pending_outbox(&s, 10).unwrap().is_empty());
    }
    // The largest amount accepted converts exactly.
    decide(
        &mut s,
        &p,
        &analyst("ana"),
        "T",
        Command::Override {
            amount: dec!(1000000000000),
        },
        "max",
    )
    .unwrap();
    signoff(
        &mut s,
        &p,
        &manager("max"),
        "T",
        SignoffCommand::Approve,
        "",
    )
    .unwrap();
    assert_eq!(
        pushes(&s, "T"),
        vec![("adjust".to_string(), Some(dec!(1000000000000)))]
    );
}

mod money_fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Any decimal a parser can produce: every scale, mantissas up to the type's limit,
    /// both signs, and the edges of the accepted range.
    fn amount() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (any::<i64>(), 0u32..=28).prop_map(|(m, e)| Decimal::new(m, e)),
            (any::<i128>(), 0u32..=28).prop_map(|(m, e)| {
                let m = m % 79_228_162_514_264_337_593_543_950_335i128;
                Decimal::from_i128_with_scale(m, e)
            }),
            (0i64..=100_000_000_000_000, 0u32..=3).prop_map(|(m, e)| Decimal::new(m, e)),
            Just(dec!(1000000000000)),
            Just(dec!(1000000000000.01)),
            Just(Decimal::MAX),
            Just(Decimal::MIN),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

        /// A random override is refused as an invalid amount (nothing applied) or taken,
        /// and whatever is taken converts to the PRM's write exactly: the push never
        /// overflows, saturates or rounds.
        #[test]
        fn any_override_is_refused_or_pushed_exactly(a in amount()) {
            let mut s = store();
            let p = policy();
            add(&s, "T", "adjust", "100", "90", "2026-08-15");
            match decide(&mut s, &p, &analyst("ana"), "T", Command::Override { amount: a }, "fuzz") {
                Err(WorkflowError::InvalidAmount(m)) => {
                    prop_assert!(!m.is_empty());
                    prop_assert_eq!(state(&s, "T"), CaseState::Flagged);
                    prop_assert!(pending_outbox(&s, 10).unwrap().is_empty());
                }
                Err(e) => prop_assert!(false, "{a}: unexpected refusal {e}"),
                Ok(_) => {
                    if state(&s, "T") == CaseState::AwaitingSignoff {
                        signoff(&mut s, &p, &manager("max"), "T", SignoffCommand::Approve, "")
                            .unwrap();
                    }
                    for o in pending_outbox(&s, 10).unwrap() {
                        let r = crate::sync::push_request_item(&o, None);
                        prop_assert!(r.is_ok(), "{a}: {:?}", r.err());
                        let r = r.unwrap();
                        if let Some(m) = r.amount {
                            prop_assert_eq!(m, a);
                            prop_assert!(crate::money::to_minor_exact(m, "USD").is_ok());
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn far_beyond_the_deal_is_named_with_its_numbers() {
    let s = store();
    add(&s, "T", "adjust", "100", "90", "2026-08-15");
    // deal 10,000; 10x the commission 1,000: the limit is 10,000.
    assert_eq!(far_beyond(&s, "T", dec!(10000)).unwrap(), None);
    let f = far_beyond(&s, "T", dec!(99999999999)).unwrap().unwrap();
    assert_eq!(f.limit, dec!(10000));
    let m = f.to_string();
    assert!(
        m.contains("$99,999,999,999.00") && m.contains("$10,000.00"),
        "{m}"
    );
    assert_eq!(far_beyond(&s, "NOPE", dec!(1)).unwrap(), None);
}

#[test]
fn four_eyes_sees_one_person_under_every_spelling() {
    let mut s = store();
    let p = policy();
    add(&s, "B", "adjust", "9000", "0", "2026-08-15");
    decide(&mut s, &p, &manager("Mia"), "B", Command::Approve, "").unwrap();
    for other in [
        "mia",
        "mia ",
        "MIA",
        "m\u{0456}a",
        "m\u{200B}ia",
        "\u{FF2D}ia",
    ] {
        let e = signoff(
            &mut s,
            &p,
            &manager(other),
            "B",
            SignoffCommand::Approve,
            "",
        )
        .unwrap_err();
        assert!(
            matches!(e, WorkflowError::FourEyes { .. }),
            "{other:?}: {e}"
        );
        assert!(check_signoff(&mut s, &manager(other), "B").is_err());
    }
    signoff(
        &mut s,
        &p,
        &manager("max"),
        "B",
        SignoffCommand::Approve,
        "",
    )
    .unwrap();
    assert_eq!(state(&s, "B"), CaseState::QueuedForPush);
}

#[test]
fn outbox_rows_of_the_old_shape_are_still_pushed_and_compensated() {
    let mut s = store();
    let p = policy();
    add(&s, "OLD", "adjust", "100", "90", "2026-08-15");
    decide(&mut s, &p, &analyst("ana"), "OLD", Command::Approve, "").unwrap();
    let o = &pending_outbox(&s, 10).unwrap()[0];
    let legacy = serde_json::json!({
        "decision_id": o.decision_id, "transaction_id": "OLD", "action": "approve",
        "prm_action": "adjust", "current_amount": "100", "amount": "90", "delta": "-10",
        "currency": "USD", "reason": "", "decided_by": "ana", "proposer": "ana",
        "signed_off_by": null, "decided_at": "2026-10-01T00:00:00Z", "seen": {"row_hash": "h-OLD"}
    });
    ts::exec(
        &s,
        &format!(
            "UPDATE outbox SET payload = '{}' WHERE decision_id = '{}'",
            legacy, o.decision_id
        ),
    )
    .unwrap();
    assert_eq!(
        pushes(&s, "OLD"),
        vec![("adjust".to_string(), Some(dec!(90)))]
    );
    push_all(&mut s);
    undo(&mut s, &p, &analyst("ana"), "OLD", "take back").unwrap();
    assert_eq!(
        pushes(&s, "OLD"),
        vec![("adjust".to_string(), Some(dec!(100)))]
    );
    let o = &pending_outbox(&s, 10).unwrap()[0];
    assert_eq!(o.payload["payload_version"], PAYLOAD_VERSION);
    assert!(o.payload["reverts"].as_str().is_some());
}

#[test]
fn an_unconvertible_amount_is_refused_by_the_push_not_saturated() {
    let mut s = store();
    let p = policy();
    add(&s, "X", "adjust", "100", "90", "2026-08-15");
    decide(&mut s, &p, &analyst("ana"), "X", Command::Approve, "").unwrap();
    let o = &pending_outbox(&s, 10).unwrap()[0];
    let mut v: Value = o.payload.clone();
    v["amount"] = Value::String("12.345".into());
    ts::exec(
        &s,
        &format!(
            "UPDATE outbox SET payload = '{}' WHERE decision_id = '{}'",
            v, o.decision_id
        ),
    )
    .unwrap();
    let o = &pending_outbox(&s, 10).unwrap()[0];
    let e = crate::sync::push_request_item(o, None).unwrap_err();
    assert!(
        e.contains(&o.decision_id) && e.contains("more decimals"),
        "{e}"
    );
}

#[test]
fn nothing_is_dated_into_a_closed_quarter() {
    let mut s = store();
    let p = policy();
    add(&s, "Q2", "adjust", "100", "40", "2026-05-10");
    decide(&mut s, &p, &analyst("ana"), "Q2", Command::Approve, "rate").unwrap();
    // Closed through 2026-Q2: booked in 2026-Q3 with a note naming 2026-Q2.
    let cfg = JournalConfig {
        closed_through: Some("2026-Q2".into()),
        expense_account: "6100 Commission Expense".into(),
        accrued_account: "2150 Accrued Commissions".into(),
        subsidiary: Some("US".into()),
        department: Some("Sales".into()),
    };
    assert!(journal_with(&s, "2026-Q2", &cfg).unwrap().is_empty());
    let q3 = journal_with(&s, "2026-Q3", &cfg).unwrap();
    assert_eq!(q3.len(), 2);
    assert!(q3.iter().all(|l| l.date == "2026-09-30"));
    assert!(
        q3[0].line_memo.contains("affects 2026-Q2"),
        "{}",
        q3[0].line_memo
    );
    assert_eq!(q3[0].account, "2150 Accrued Commissions");
    assert_eq!(q3[1].account, "6100 Commission Expense");
    assert_eq!(
        (q3[0].subsidiary.as_str(), q3[0].department.as_str()),
        ("US", "Sales")
    );
    // Default: closed once it ended before the decision (made today).
    let today = chrono::Utc::now().date_naive();
    let now_q = crate::model::fiscal_quarter(today, 1);
    let def = JournalConfig::default();
    let booked = journal_with(&s, &now_q, &def).unwrap();
    assert_eq!(booked.len(), 2);
    if now_q != "2026-Q2" {
        assert!(journal_with(&s, "2026-Q2", &def).unwrap().is_empty());
        assert!(booked[0]
            .line_memo
            .contains("affects 2026-Q2, a closed period"));
    }
    // A year out of range is a clear error, not a panic.
    for bad in ["300000-Q3", "0-Q1", "2026-Q0"] {
        assert!(matches!(
            journal_with(&s, bad, &def),
            Err(WorkflowError::InvalidPeriod(_))
        ));
    }
    let bad_cfg = JournalConfig {
        closed_through: Some("99999-Q1".into()),
        ..JournalConfig::default()
    };
    let e = journal_with(&s, "2026-Q3", &bad_cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("closed_through"), "{e}");
}

/// A hold the PRM's API cannot write (PartnerStack) leaves the push queue as `manual`,
/// is listed for the PRM's own screen, and is marked pushed only once a pull shows the
/// reward on hold; a pull showing something else leaves it waiting.
#[test]
fn a_manual_hold_waits_for_a_pull_showing_it() {
    let mut s = store();
    let p = policy();
    add(&s, "H", "hold", "300", "0", "2026-08-15");
    decide(&mut s, &p, &analyst("ana"), "H", Command::Approve, "docs").unwrap();
    let o = pending_outbox(&s, 10).unwrap().remove(0);
    mark_manual(&mut s, &o.decision_id, "hold reward rwd_1 in PartnerStack").unwrap();
    assert!(
        pending_outbox(&s, 10).unwrap().is_empty(),
        "not pushed again"
    );
    let m = manual_decisions(&s).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(
        (
            m[0].transaction_id.as_str(),
            m[0].write.as_str(),
            m[0].amount
        ),
        ("H", "hold", Some(dec!(300)))
    );
    assert_eq!(m[0].note, "hold reward rwd_1 in PartnerStack");
    assert_eq!(state(&s, "H"), CaseState::QueuedForPush);
    // Marking it again changes nothing.
    mark_manual(&mut s, &o.decision_id, "again").unwrap();
    assert_eq!(
        manual_decisions(&s).unwrap()[0].note,
        "hold reward rwd_1 in PartnerStack"
    );
    // The PRM still says pending: nothing is confirmed.
    let reward = |s: &Store, status: &str| {
        ts::exec(
            s,
            &format!(
                "INSERT INTO prm_rewards (reward_id, transaction_id, status, pulled_at)
                 VALUES ('rwd_1', 'H', '{status}', 'now')
                 ON CONFLICT (reward_id) DO UPDATE SET status = excluded.status"
            ),
        )
        .unwrap();
    };
    reward(&s, "pending");
    assert!(confirm_manual(&mut s).unwrap().is_empty());
    assert_eq!(manual_decisions(&s).unwrap().len(), 1);
    // Someone held it in the dashboard: the next pull confirms it.
    reward(&s, "hold");
    assert_eq!(confirm_manual(&mut s).unwrap(), vec!["H".to_string()]);
    assert!(manual_decisions(&s).unwrap().is_empty());
    assert_eq!(state(&s, "H"), CaseState::Pushed);
    let trail = crate::workflow::audit::trail(&s, "H").unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"left_for_prm"), "{actions:?}");
    assert_eq!(*actions.last().unwrap(), "pushed");
    assert!(crate::workflow::audit::verify_chain(&s)
        .unwrap()
        .first_bad
        .is_none());
    assert!(confirm_manual(&mut s).unwrap().is_empty(), "confirmed once");
}
