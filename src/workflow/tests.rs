//! Unit tests of the workflow: every legal transition, illegal ones refused with
//! nothing applied, four-eyes, undo, lapse, tamper detection, journal balance, and a
//! property test over random action sequences.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::config::Role;
use crate::store::workflow::test_support as ts;
use crate::store::Store;

fn analyst(u: &str) -> Actor {
    Actor::new(u, Role::Analyst)
}
fn manager(u: &str) -> Actor {
    Actor::new(u, Role::Manager)
}

fn policy() -> Policy {
    let mut thresholds = BTreeMap::new();
    thresholds.insert("EUR".to_string(), dec!(1000));
    Policy {
        thresholds,
        default_threshold: dec!(500),
        high_value_partners: ["PL".to_string()].into_iter().collect(),
    }
}

/// Adds a flagged transaction with a proposal `current -> proposed`.
fn add(s: &Store, tx: &str, partner: &str, cur: &str, current: &str, proposed: &str) {
    add_on(s, tx, partner, cur, current, proposed, "2026-08-15");
}

fn add_on(
    s: &Store,
    tx: &str,
    partner: &str,
    cur: &str,
    current: &str,
    proposed: &str,
    closed: &str,
) {
    ts::insert_transaction(s, tx, partner, "10000.00", cur, closed, &format!("h-{tx}")).unwrap();
    ts::insert_flag(s, tx, partner, 0.9, &["duplicate"], &format!("h-{tx}")).unwrap();
    let delta =
        Decimal::from_str_exact(proposed).unwrap() - Decimal::from_str_exact(current).unwrap();
    ts::insert_proposal(s, tx, "adjust", current, proposed, &delta.to_string(), cur).unwrap();
}

fn store() -> Store {
    let s = Store::open_in_memory().unwrap();
    ts::insert_program(&s, "USD", 1).unwrap();
    ts::insert_partner(&s, "P1", false).unwrap();
    ts::insert_partner(&s, "PH", true).unwrap();
    ts::insert_partner(&s, "PL", false).unwrap();
    s
}

fn state(s: &Store, tx: &str) -> CaseState {
    case(s, tx).unwrap().unwrap().state
}

fn flag_status(s: &Store, tx: &str) -> String {
    s.wf().get_flag(tx).unwrap().unwrap().status
}

/// (decisions, audit entries, outbox rows) — to check nothing was half-applied.
fn counts(s: &Store) -> (i64, u64, usize) {
    (
        s.wf().count_decisions().unwrap(),
        verify_chain(s).unwrap().entries,
        s.wf().all_outbox().unwrap().len(),
    )
}

#[test]
fn small_approval_goes_straight_to_the_outbox_and_is_pushed() {
    let mut s = store();
    add(&s, "T1", "P1", "USD", "100.00", "40.00");
    let p = policy();
    assert_eq!(state(&s, "T1"), CaseState::Flagged);
    let st = decide(&mut s, &p, &analyst("ana"), "T1", Command::StartReview, "").unwrap();
    assert_eq!(st, CaseState::InReview);
    assert_eq!(flag_status(&s, "T1"), "in_review");
    let st = decide(&mut s, &p, &analyst("ana"), "T1", Command::Approve, "dup").unwrap();
    assert_eq!(st, CaseState::QueuedForPush);
    assert_eq!(flag_status(&s, "T1"), "queued_for_push");
    let c = case(&s, "T1").unwrap().unwrap();
    assert_eq!(c.decided_amount, Some(dec!(40.00)));
    assert_eq!(c.proposer.as_deref(), Some("ana"));
    let out = pending_outbox(&s, 10).unwrap();
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!(o.idempotency_key, o.decision_id);
    assert!(uuid::Uuid::parse_str(&o.decision_id).is_ok());
    assert_eq!(o.payload["prm_write"], "adjust");
    assert_eq!(o.payload["amount"], "40.00");
    assert_eq!(o.payload["current_amount"], "100.00");
    assert_eq!(o.record_version, Some(1));
    assert_eq!(
        o.audit_head.as_deref(),
        Some(audit_head(&s).unwrap().as_str())
    );
    // approve passed through `approved` and was recorded.
    let actions: Vec<String> = trail(&s, "T1")
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["start_review", "approve", "queue_for_push"]);
    mark_pushed(&mut s, &o.decision_id, "prm-1").unwrap();
    assert_eq!(state(&s, "T1"), CaseState::Pushed);
    assert!(pending_outbox(&s, 10).unwrap().is_empty());
    // idempotent
    mark_pushed(&mut s, &o.decision_id, "prm-1").unwrap();
    assert!(verify_chain(&s).unwrap().is_ok());
}

#[test]
fn deciding_from_flagged_records_the_implicit_review() {
    let mut s = store();
    add(&s, "T1", "P1", "USD", "100", "90");
    decide(
        &mut s,
        &policy(),
        &analyst("ana"),
        "T1",
        Command::Approve,
        "",
    )
    .unwrap();
    let t = trail(&s, "T1").unwrap();
    assert_eq!(t[0].action, "start_review");
    assert_eq!(t[0].before.as_ref().unwrap()["state"], "flagged");
    assert_eq!(t[0].after.as_ref().unwrap()["state"], "in_review");
    assert_eq!(t[0].score, Some(0.9));
    assert_eq!(t[0].detector_version.as_deref(), Some("test-1"));
    let ds = s.wf().decisions_for("T1").unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds[0].action, "start_review");
    assert_eq!(ds[1].from_state, "in_review");
}

#[test]
fn large_or_high_value_adjustments_need_a_second_manager() {
    let mut s = store();
    let p = policy();
    add(&s, "BIG", "P1", "USD", "1000", "500"); // |delta| = 500 = USD default threshold
    add(&s, "JUST", "P1", "USD", "1000", "500.01"); // 499.99 < 500
    add(&s, "EUR", "P1", "EUR", "1000", "100"); // 900 < EUR 1000
    add(&s, "HV", "PH", "USD", "10", "9"); // partners.high_value
    add(&s, "PL1", "PL", "USD", "10", "9"); // policy list
    let a = analyst("ana");
    assert_eq!(
        decide(&mut s, &p, &a, "BIG", Command::Approve, "").unwrap(),
        CaseState::AwaitingSignoff
    );
    assert_eq!(
        decide(&mut s, &p, &a, "JUST", Command::Approve, "").unwrap(),
        CaseState::QueuedForPush
    );
    assert_eq!(
        decide(&mut s, &p, &a, "EUR", Command::Approve, "").unwrap(),
        CaseState::QueuedForPush
    );
    assert_eq!(
        decide(&mut s, &p, &a, "HV", Command::Approve, "").unwrap(),
        CaseState::AwaitingSignoff
    );
    assert_eq!(
        decide(&mut s, &p, &a, "PL1", Command::Approve, "").unwrap(),
        CaseState::AwaitingSignoff
    );
    // override: |amount - current| decides.
    add(&s, "OV", "P1", "USD", "1000", "1000");
    assert_eq!(
        decide(
            &mut s,
            &p,
            &a,
            "OV",
            Command::Override { amount: dec!(1600) },
            "contract says so"
        )
        .unwrap(),
        CaseState::AwaitingSignoff
    );
    assert!(case(&s, "OV").unwrap().unwrap().needs_signoff);
    assert_eq!(flag_status(&s, "OV"), "awaiting_signoff");
    // Nothing awaiting sign-off is in the outbox.
    let queued: Vec<String> = pending_outbox(&s, 100)
        .unwrap()
        .into_iter()
        .map(|o| o.transaction_id)
        .collect();
    assert_eq!(queued, ["JUST", "EUR"]);

    let before = counts(&s);
    let e = signoff(
        &mut s,
        &p,
        &analyst("bob"),
        "BIG",
        SignoffCommand::Approve,
        "",
    )
    .unwrap_err();
    assert!(matches!(e, WorkflowError::NotManager), "{e}");
    let e = signoff(
        &mut s,
        &p,
        &manager("ana"),
        "BIG",
        SignoffCommand::Approve,
        "",
    )
    .unwrap_err();
    assert!(matches!(e, WorkflowError::FourEyes { .. }), "{e}");
    assert!(e.to_string().contains("ana"));
    let e = signoff(
        &mut s,
        &p,
        &manager("max"),
        "BIG",
        SignoffCommand::Reject,
        " ",
    )
    .unwrap_err();
    assert!(matches!(e, WorkflowError::ReasonRequired));
    assert_eq!(counts(&s), before, "refused sign-offs wrote nothing");

    assert_eq!(
        signoff(
            &mut s,
            &p,
            &manager("max"),
            "BIG",
            SignoffCommand::Approve,
            "ok"
        )
        .unwrap(),
        CaseState::QueuedForPush
    );
    let o = pending_outbox(&s, 100)
        .unwrap()
        .into_iter()
        .find(|o| o.transaction_id == "BIG")
        .unwrap();
    assert_eq!(o.payload["signed_off_by"], "max");
    assert_eq!(o.payload["proposer"], "ana");
    assert_eq!(o.payload["amount"], "500");
    let acts: Vec<String> = trail(&s, "BIG")
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        acts,
        [
            "start_review",
            "approve",
            "request_signoff",
            "sign_off",
            "queue_for_push"
        ]
    );

    // Reject, then decide again from rejected.
    assert_eq!(
        signoff(
            &mut s,
            &p,
            &manager("max"),
            "OV",
            SignoffCommand::Reject,
            "no evidence"
        )
        .unwrap(),
        CaseState::Rejected
    );
    assert_eq!(
        decide(&mut s, &p, &a, "OV", Command::Dismiss, "fine after all").unwrap(),
        CaseState::Dismissed
    );
    assert!(verify_chain(&s).unwrap().is_ok());
}

#[test]
fn dismiss_escalate_and_request_documents() {
    let mut s = store();
    let p = policy();
    for t in ["D", "E", "R"] {
        add(&s, t, "P1", "USD", "100", "0");
    }
    let a = analyst("ana");
    assert!(matches!(
        decide(&mut s, &p, &a, "D", Command::Dismiss, "").unwrap_err(),
        WorkflowError::ReasonRequired
    ));
    assert_eq!(
        decide(&mut s, &p, &a, "D", Command::Dismiss, "false positive").unwrap(),
        CaseState::Dismissed
    );
    assert_eq!(
        decide(&mut s, &p, &a, "E", Command::Escalate, "unsure").unwrap(),
        CaseState::Escalated
    );
    assert_eq!(
        decide(&mut s, &p, &a, "R", Command::RequestDocuments, "need PO").unwrap(),
        CaseState::DocumentsRequested
    );
    let out = pending_outbox(&s, 10).unwrap();
    let acts: Vec<(String, String)> = out
        .iter()
        .map(|o| {
            (
                o.transaction_id.clone(),
                o.payload["prm_write"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        acts,
        [("D".into(), "release".into()), ("R".into(), "hold".into())]
    );
    // escalated and documents_requested can be decided later.
    assert_eq!(
        decide(&mut s, &p, &a, "E", Command::StartReview, "").unwrap(),
        CaseState::InReview
    );
    assert_eq!(
        decide(&mut s, &p, &a, "R", Command::Approve, "docs arrived").unwrap(),
        CaseState::QueuedForPush
    );
    // dismissed outbox pushed: state stays dismissed.
    let d = out[0].decision_id.clone();
    mark_pushed(&mut s, &d, "r").unwrap();
    assert_eq!(state(&s, "D"), CaseState::Dismissed);
}

#[test]
fn illegal_transitions_are_refused_and_nothing_is_applied() {
    let p = policy();
    let a = analyst("ana");
    let m = manager("max");
    let cmds = [
        Command::StartReview,
        Command::Approve,
        Command::Override { amount: dec!(5) },
        Command::Dismiss,
        Command::Escalate,
        Command::RequestDocuments,
    ];
    // Reach each resting state, then try every command and sign-off.
    type Setup = fn(&mut Store, &Policy);
    let setups: Vec<(CaseState, Setup)> = vec![
        (CaseState::Flagged, |_, _| {}),
        (CaseState::InReview, |s, p| {
            decide(s, p, &analyst("ana"), "T", Command::StartReview, "").unwrap();
        }),
        (CaseState::AwaitingSignoff, |s, p| {
            decide(
                s,
                p,
                &analyst("ana"),
                "T",
                Command::Override { amount: dec!(5000) },
                "r",
            )
            .unwrap();
        }),
        (CaseState::QueuedForPush, |s, p| {
            decide(s, p, &analyst("ana"), "T", Command::Approve, "").unwrap();
        }),
        (CaseState::Pushed, |s, p| {
            decide(s, p, &analyst("ana"), "T", Command::Approve, "").unwrap();
            let d = pending_outbox(s, 1).unwrap()[0].decision_id.clone();
            mark_pushed(s, &d, "x").unwrap();
        }),
        (CaseState::Conflict, |s, p| {
            decide(s, p, &analyst("ana"), "T", Command::Approve, "").unwrap();
            let d = pending_outbox(s, 1).unwrap()[0].decision_id.clone();
            mark_conflict(s, &d, serde_json::json!({"amount": "1"}), "changed").unwrap();
        }),
        (CaseState::Dismissed, |s, p| {
            decide(s, p, &analyst("ana"), "T", Command::Dismiss, "fp").unwrap();
        }),
        (CaseState::Escalated, |s, p| {
            decide(s, p, &analyst("ana"), "T", Command::Escalate, "hm").unwrap();
        }),
        (CaseState::DocumentsRequested, |s, p| {
            decide(s, p, &analyst("ana"), "T", Command::RequestDocuments, "po").unwrap();
        }),
        (CaseState::Rejected, |s, p| {
            decide(
                s,
                p,
                &analyst("ana"),
                "T",
                Command::Override { amount: dec!(5000) },
                "r",
            )
            .unwrap();
            signoff(s, p, &manager("max"), "T", SignoffCommand::Reject, "no").unwrap();
        }),
    ];
    let mut refused = 0;
    for (expected, setup) in setups {
        for (ci, cmd) in cmds.iter().enumerate() {
            for so in [
                None,
                Some(SignoffCommand::Approve),
                Some(SignoffCommand::Reject),
            ] {
                if so.is_some() && ci > 0 {
                    continue;
                }
                let mut s = store();
                add(&s, "T", "P1", "USD", "100", "90");
                setup(&mut s, &p);
                assert_eq!(state(&s, "T"), expected);
                let before = counts(&s);
                let r = match so {
                    Some(so) => signoff(&mut s, &p, &m, "T", so, "because"),
                    None => decide(&mut s, &p, &a, "T", cmd.clone(), "because"),
                };
                let legal = match so {
                    Some(_) => expected == CaseState::AwaitingSignoff,
                    None => {
                        expected.is_open()
                            && !matches!(
                                (cmd, expected),
                                (Command::Escalate, CaseState::Escalated)
                                    | (Command::RequestDocuments, CaseState::DocumentsRequested)
                                    | (Command::StartReview, CaseState::InReview)
                            )
                    }
                };
                match r {
                    Ok(_) => assert!(legal, "{expected} {cmd:?} {so:?} was allowed"),
                    Err(e) => {
                        assert!(!legal, "{expected} {cmd:?} {so:?} refused: {e}");
                        assert!(matches!(e, WorkflowError::IllegalTransition { .. }), "{e}");
                        assert!(e.to_string().contains(expected.as_str()), "{e}");
                        assert_eq!(counts(&s), before, "refusal wrote something");
                        assert_eq!(state(&s, "T"), expected);
                        refused += 1;
                    }
                }
                assert!(verify_chain(&s).unwrap().is_ok());
            }
        }
    }
    assert!(refused >= 30, "only {refused} refusals exercised");
}

#[test]
fn unflagged_transactions_and_bad_amounts_are_refused() {
    let mut s = store();
    let p = policy();
    let e = decide(&mut s, &p, &analyst("a"), "NOPE", Command::Approve, "").unwrap_err();
    assert!(
        matches!(e, WorkflowError::UnknownTransaction(ref t) if t == "NOPE"),
        "{e}"
    );
    ts::insert_transaction(&s, "CLEAN", "P1", "10", "USD", "2026-08-01", "h").unwrap();
    let e = decide(&mut s, &p, &analyst("a"), "CLEAN", Command::Approve, "").unwrap_err();
    assert!(
        matches!(e, WorkflowError::NoFlag(ref t) if t == "CLEAN"),
        "{e}"
    );
    add(&s, "T", "P1", "USD", "100", "90");
    let e = decide(
        &mut s,
        &p,
        &analyst("a"),
        "T",
        Command::Override { amount: dec!(-1) },
        "x",
    )
    .unwrap_err();
    assert!(matches!(e, WorkflowError::InvalidAmount(_)), "{e}");
    let e = decide(
        &mut s,
        &p,
        &analyst("a"),
        "T",
        Command::Override { amount: dec!(1) },
        "",
    )
    .unwrap_err();
    assert!(matches!(e, WorkflowError::ReasonRequired));
    assert_eq!(counts(&s), (0, 0, 0));
}

#[test]
fn batch_is_all_or_nothing() {
    let mut s = store();
    let p = policy();
    for t in ["A", "B", "C"] {
        add(&s, t, "P1", "USD", "100", "90");
    }
    let ids: Vec<String> = ["A", "B", "MISSING", "C"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let e = decide_batch(&mut s, &p, &analyst("a"), &ids, Command::Approve, "bulk").unwrap_err();
    assert!(e.to_string().contains("MISSING"), "{e}");
    assert_eq!(counts(&s), (0, 0, 0));
    for t in ["A", "B", "C"] {
        assert_eq!(state(&s, t), CaseState::Flagged);
        assert_eq!(flag_status(&s, t), "flagged");
    }
    let dup: Vec<String> = ["A", "A"].iter().map(|s| s.to_string()).collect();
    assert!(matches!(
        decide_batch(&mut s, &p, &analyst("a"), &dup, Command::Approve, "").unwrap_err(),
        WorkflowError::Duplicate(_)
    ));
    let ok: Vec<String> = ["A", "B", "C"].iter().map(|s| s.to_string()).collect();
    let st = decide_batch(&mut s, &p, &analyst("a"), &ok, Command::Dismiss, "bulk fp").unwrap();
    assert_eq!(st, vec![CaseState::Dismissed; 3]);
    assert_eq!(pending_outbox(&s, 10).unwrap().len(), 3);

    // sign-off batch: one not awaiting -> nothing signed.
    for t in ["X", "Y"] {
        add(&s, t, "PH", "USD", "100", "90");
        decide(&mut s, &p, &analyst("a"), t, Command::Approve, "").unwrap();
    }
    let before = counts(&s);
    let ids: Vec<String> = ["X", "A", "Y"].iter().map(|s| s.to_string()).collect();
    assert!(signoff_batch(&mut s, &p, &manager("m"), &ids, SignoffCommand::Approve, "").is_err());
    assert_eq!(counts(&s), before);
    let ids: Vec<String> = ["X", "Y"].iter().map(|s| s.to_string()).collect();
    let st = signoff_batch(&mut s, &p, &manager("m"), &ids, SignoffCommand::Approve, "").unwrap();
    assert_eq!(st, vec![CaseState::QueuedForPush; 2]);
}

#[test]
fn undo_before_push_reverts_and_cancels_the_outbox_row() {
    let mut s = store();
    let p = policy();
    add(&s, "T", "PH", "USD", "100", "90");
    let a = analyst("ana");
    decide(&mut s, &p, &a, "T", Command::Approve, "").unwrap();
    signoff(
        &mut s,
        &p,
        &manager("max"),
        "T",
        SignoffCommand::Approve,
        "",
    )
    .unwrap();
    assert_eq!(pending_outbox(&s, 10).unwrap().len(), 1);
    // undo the sign-off -> awaiting again, proposer kept, outbox row cancelled.
    assert_eq!(
        undo(&mut s, &p, &manager("max"), "T", "oops").unwrap(),
        CaseState::AwaitingSignoff
    );
    assert!(pending_outbox(&s, 10).unwrap().is_empty());
    let c = case(&s, "T").unwrap().unwrap();
    assert_eq!(c.proposer.as_deref(), Some("ana"));
    assert_eq!(c.decided_amount, Some(dec!(90)));
    // the four-eyes rule still holds after the undo
    assert!(signoff(
        &mut s,
        &p,
        &manager("ana"),
        "T",
        SignoffCommand::Approve,
        ""
    )
    .is_err());
    assert_eq!(undo(&mut s, &p, &a, "T", "").unwrap(), CaseState::InReview);
    assert_eq!(case(&s, "T").unwrap().unwrap().decided_amount, None);
    assert_eq!(undo(&mut s, &p, &a, "T", "").unwrap(), CaseState::Flagged);
    assert_eq!(flag_status(&s, "T"), "flagged");
    let e = undo(&mut s, &p, &a, "T", "").unwrap_err();
    assert!(matches!(e, WorkflowError::NothingToUndo { .. }), "{e}");
    let statuses: Vec<String> = outbox_entries(&s)
        .unwrap()
        .into_iter()
        .map(|(_, st)| st)
        .collect();
    assert_eq!(statuses, ["cancelled"]);
    assert!(verify_chain(&s).unwrap().is_ok());
    let acts: Vec<String> = trail(&s, "T")
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(acts.iter().filter(|a| *a == "undo").count(), 3);
}

#[test]
fn undo_after_push_queues_a_compensating_decision() {
    let mut s = store();
    let p = policy();
    add(&s, "T", "P1", "USD", "100", "90");
    let a = analyst("ana");
    decide(&mut s, &p, &a, "T", Command::Approve, "").unwrap();
    let d = pending_outbox(&s, 1).unwrap()[0].decision_id.clone();
    mark_pushed(&mut s, &d, "r1").unwrap();
    assert_eq!(
        undo(&mut s, &p, &a, "T", "wrong one").unwrap(),
        CaseState::InReview
    );
    let out = pending_outbox(&s, 10).unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].payload["reverts"].is_string());
    assert_eq!(out[0].payload["reverts"], d.as_str());
    assert_eq!(out[0].payload["amount"], "100");
    let comp = s.wf().get_decision(&out[0].decision_id).unwrap().unwrap();
    assert_eq!(comp.action, "compensate");
    assert_eq!(comp.reverts.as_deref(), Some(d.as_str()));
    mark_pushed(&mut s, &out[0].decision_id, "r2").unwrap();
    assert_eq!(state(&s, "T"), CaseState::InReview);
    // decide again after compensation
    assert_eq!(
        decide(&mut s, &p, &a, "T", Command::Dismiss, "fp").unwrap(),
        CaseState::Dismissed
    );
    assert!(verify_chain(&s).unwrap().is_ok());
}

#[test]
fn a_changed_transaction_lapses_the_signoff() {
    let mut s = store();
    let p = policy();
    add(&s, "S", "PH", "USD", "100", "90"); // signed off, queued
    add(&s, "W", "PH", "USD", "100", "90"); // awaiting
    add(&s, "Q", "P1", "USD", "100", "90"); // queued without sign-off
    add(&s, "K", "P1", "USD", "100", "90"); // untouched
    let a = analyst("ana");
    for t in ["S", "W", "Q", "K"] {
        decide(&mut s, &p, &a, t, Command::Approve, "").unwrap();
    }
    signoff(
        &mut s,
        &p,
        &manager("max"),
        "S",
        SignoffCommand::Approve,
        "",
    )
    .unwrap();
    assert!(
        lapse_changed_signoffs(&mut s, &a).unwrap().is_empty(),
        "nothing changed yet"
    );

    ts::change_transaction(&s, "S", "h-S-v2").unwrap();
    ts::change_transaction(&s, "W", "h-W-v2").unwrap();
    ts::insert_proposal(&s, "Q", "adjust", "100", "80", "-20", "USD").unwrap();
    // a sign-off on something changed is refused before the lapse runs
    let e = signoff(
        &mut s,
        &p,
        &manager("max"),
        "W",
        SignoffCommand::Approve,
        "",
    )
    .unwrap_err();
    assert!(matches!(e, WorkflowError::Changed { .. }), "{e}");
    assert!(e.to_string().contains("transaction was changed"), "{e}");

    let lapsed = lapse_changed_signoffs(&mut s, &analyst("sync")).unwrap();
    assert_eq!(lapsed, ["Q", "S", "W"]);
    for t in ["S", "W", "Q"] {
        assert_eq!(state(&s, t), CaseState::InReview);
        assert_eq!(flag_status(&s, t), "in_review");
    }
    assert_eq!(state(&s, "K"), CaseState::QueuedForPush);
    let last = trail(&s, "Q").unwrap().pop().unwrap();
    assert_eq!(last.action, "lapse");
    assert!(last.reason.unwrap().contains("proposed amount changed"));
    let last = trail(&s, "S").unwrap().pop().unwrap();
    assert!(last.reason.unwrap().contains("transaction was changed"));
    let pending: Vec<String> = pending_outbox(&s, 10)
        .unwrap()
        .into_iter()
        .map(|o| o.transaction_id)
        .collect();
    assert_eq!(pending, ["K"]);
    // a lapse cannot be undone; the case is decided again
    assert!(undo(&mut s, &p, &a, "S", "").is_err());
    assert_eq!(
        decide(&mut s, &p, &a, "S", Command::Approve, "").unwrap(),
        CaseState::AwaitingSignoff
    );
    assert!(verify_chain(&s).unwrap().is_ok());
}

#[test]
fn lapse_resyncs_flag_status_after_a_rescore() {
    let mut s = store();
    let p = policy();
    add(&s, "T", "P1", "USD", "100", "100");
    decide(&mut s, &p, &analyst("a"), "T", Command::Escalate, "look").unwrap();
    ts::exec(&s, "UPDATE flags SET status = 'flagged'").unwrap();
    lapse_changed_signoffs(&mut s, &analyst("a")).unwrap();
    assert_eq!(flag_status(&s, "T"), "escalated");
}

#[test]
fn sync_outcomes_retry_refusal_and_push_after_undo() {
    let mut s = store();
    let p = policy();
    let a = analyst("ana");
    for t in ["R", "F", "U"] {
        add(&s, t, "P1", "USD", "100", "90");
        decide(&mut s, &p, &a, t, Command::Approve, "").unwrap();
    }
    let out = pending_outbox(&s, 10).unwrap();
    let id = |t: &str| {
        out.iter()
            .find(|o| o.transaction_id == t)
            .unwrap()
            .decision_id
            .clone()
    };
    // transient failure: stays pending, counted
    record_push_attempt(&mut s, &id("R"), "503").unwrap();
    let r = pending_outbox(&s, 10)
        .unwrap()
        .into_iter()
        .find(|o| o.transaction_id == "R")
        .unwrap();
    assert_eq!(r.attempts, 1);
    // refusal: failed, conflict recorded, case needs a reviewer
    mark_refused(&mut s, &id("F"), "self sign-off refused by PRM").unwrap();
    assert_eq!(state(&s, "F"), CaseState::Conflict);
    assert!(pending_outbox(&s, 10)
        .unwrap()
        .iter()
        .all(|o| o.transaction_id != "F"));
    let last = trail(&s, "F").unwrap().pop().unwrap();
    assert_eq!(last.reason.as_deref(), Some("self sign-off refused by PRM"));
    // undone while the push was in flight, then the push lands: compensation queued
    let u = id("U");
    undo(&mut s, &p, &a, "U", "changed my mind").unwrap();
    mark_pushed(&mut s, &u, "late").unwrap();
    let comp = pending_outbox(&s, 10)
        .unwrap()
        .into_iter()
        .find(|o| o.transaction_id == "U")
        .unwrap();
    assert!(comp.payload["reverts"].is_string());
    assert_eq!(comp.payload["reverts"], u.as_str());
    assert_eq!(state(&s, "U"), CaseState::InReview);
    // a lapse never cancels a pending compensation
    ts::change_transaction(&s, "U", "new").unwrap();
    lapse_changed_signoffs(&mut s, &a).unwrap();
    assert!(pending_outbox(&s, 10)
        .unwrap()
        .iter()
        .any(|o| o.decision_id == comp.decision_id));
    assert!(mark_pushed(&mut s, "no-such-decision", "x").is_err());
    assert!(verify_chain(&s).unwrap().is_ok());
}

#[test]
fn compensating_a_signed_off_adjustment_needs_a_manager() {
    let mut s = store();
    let p = policy();
    add(&s, "T", "PH", "USD", "100", "90");
    decide(&mut s, &p, &analyst("ana"), "T", Command::Approve, "").unwrap();
    signoff(
        &mut s,
        &p,
        &manager("max"),
        "T",
        SignoffCommand::Approve,
        "",
    )
    .unwrap();
    let d = pending_outbox(&s, 1).unwrap()[0].decision_id.clone();
    mark_pushed(&mut s, &d, "r").unwrap();
    assert!(matches!(
        undo(&mut s, &p, &analyst("ana"), "T", "").unwrap_err(),
        WorkflowError::NotManager
    ));
    assert_eq!(
        undo(&mut s, &p, &manager("mia"), "T", "").unwrap(),
        CaseState::AwaitingSignoff
    );
    assert!(pending_outbox(&s, 1).unwrap()[0].payload["reverts"].is_string());
}

#[test]
fn two_processes_deciding_the_same_case_cannot_both_win() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    {
        let s = Store::open(&path).unwrap();
        ts::insert_partner(&s, "P1", false).unwrap();
        for i in 0..20 {
            add(&s, &format!("T{i}"), "P1", "USD", "100", "90");
        }
    }
    let run = |user: &'static str, cmd: Command| {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut s = Store::open(&path).unwrap();
            let p = policy();
            (0..20)
                .filter(|i| {
                    decide(
                        &mut s,
                        &p,
                        &analyst(user),
                        &format!("T{i}"),
                        cmd.clone(),
                        "r",
                    )
                    .is_ok()
                })
                .count()
        })
    };
    let a = run("ana", Command::Approve);
    let b = run("bob", Command::Dismiss);
    let (na, nb) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(na + nb, 20, "each case decided exactly once ({na} + {nb})");
    let s = Store::open(&path).unwrap();
    assert_eq!(pending_outbox(&s, 100).unwrap().len(), 20);
    assert!(verify_chain(&s).unwrap().is_ok());
    let r = verify_chain(&s).unwrap();
    assert_eq!(r.entries as usize, na * 3 + nb * 2);
}

fn chain_with_entries(n: usize) -> Store {
    let mut s = store();
    let p = policy();
    for i in 0..n {
        let t = format!("T{i}");
        add(&s, &t, "P1", "USD", "100", "90");
        decide(&mut s, &p, &analyst("a"), &t, Command::Dismiss, "fp").unwrap();
    }
    assert!(verify_chain(&s).unwrap().is_ok());
    s
}

#[test]
fn tampering_with_the_audit_log_is_detected_and_named() {
    // 3 cases x 2 entries = 6 entries
    let s = chain_with_entries(3);
    assert_eq!(verify_chain(&s).unwrap().entries, 6);

    // edit
    ts::exec(
        &s,
        "UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 4",
    )
    .unwrap();
    let r = verify_chain(&s).unwrap();
    assert_eq!(r.first_bad.as_ref().map(|b| b.seq), Some(4), "{r:?}");
    assert!(r.first_bad.unwrap().why.contains("altered"));

    // edit with a recomputed hash: the next entry names the break
    let s = chain_with_entries(3);
    let mut row = None;
    s.wf()
        .for_each_audit(|r| {
            if r.seq == 2 {
                row = Some(r);
            }
            Ok(true)
        })
        .unwrap();
    let mut row = row.unwrap();
    row.actor = "mallory".into();
    let h = audit::hash_entry(&row);
    ts::exec(
        &s,
        &format!("UPDATE audit_log SET actor = 'mallory', hash = '{h}' WHERE seq = 2"),
    )
    .unwrap();
    let r = verify_chain(&s).unwrap();
    assert_eq!(r.first_bad.as_ref().map(|b| b.seq), Some(3), "{r:?}");

    // delete in the middle
    let s = chain_with_entries(3);
    ts::exec(&s, "DELETE FROM audit_log WHERE seq = 3").unwrap();
    let r = verify_chain(&s).unwrap();
    assert_eq!(r.first_bad.as_ref().map(|b| b.seq), Some(3), "{r:?}");
    assert!(r.first_bad.unwrap().why.contains("missing"));

    // delete the last entries
    let s = chain_with_entries(3);
    ts::exec(&s, "DELETE FROM audit_log WHERE seq >= 5").unwrap();
    let r = verify_chain(&s).unwrap();
    assert_eq!(r.first_bad.as_ref().map(|b| b.seq), Some(5), "{r:?}");
    assert!(r.first_bad.unwrap().why.contains("removed"));

    // delete the first
    let s = chain_with_entries(2);
    ts::exec(&s, "DELETE FROM audit_log WHERE seq = 1").unwrap();
    assert_eq!(verify_chain(&s).unwrap().first_bad.map(|b| b.seq), Some(1));

    // reorder: swap entries 2 and 3
    let s = chain_with_entries(3);
    ts::exec(&s, "UPDATE audit_log SET seq = -2 WHERE seq = 2").unwrap();
    ts::exec(&s, "UPDATE audit_log SET seq = 2 WHERE seq = 3").unwrap();
    ts::exec(&s, "UPDATE audit_log SET seq = 3 WHERE seq = -2").unwrap();
    let r = verify_chain(&s).unwrap();
    assert_eq!(r.first_bad.as_ref().map(|b| b.seq), Some(2), "{r:?}");

    // delete everything
    let s = chain_with_entries(1);
    ts::exec(&s, "DELETE FROM audit_log").unwrap();
    assert!(!verify_chain(&s).unwrap().is_ok());
}

#[test]
fn journal_balances_for_every_period() {
    let mut s = Store::open_in_memory().unwrap();
    ts::insert_program(&s, "USD", 4).unwrap(); // fiscal year starts in April
    ts::insert_partner(&s, "P1", false).unwrap();
    ts::insert_partner(&s, "P2", false).unwrap();
    let p = policy();
    let days = [
        "2026-01-10",
        "2026-04-02",
        "2026-05-30",
        "2026-08-15",
        "2026-12-31",
        "2027-03-31",
    ];
    let mut n = 0;
    for (i, d) in days.iter().enumerate() {
        for (j, (cur, prop)) in [("100.005", "33.333"), ("250", "310.10"), ("99.99", "0")]
            .iter()
            .enumerate()
        {
            let t = format!("T{i}{j}");
            let partner = if j % 2 == 0 { "P1" } else { "P2" };
            add_on(&s, &t, partner, "USD", cur, prop, d);
            decide(&mut s, &p, &analyst("a"), &t, Command::Approve, "fix").unwrap();
            n += 1;
        }
    }
    // one overridden, one dismissed (not in the journal), one awaiting (not yet)
    add_on(&s, "OV", "P1", "USD", "10", "10", "2026-08-01");
    decide(
        &mut s,
        &p,
        &analyst("a"),
        "OV",
        Command::Override { amount: dec!(12.5) },
        "rate",
    )
    .unwrap();
    add_on(&s, "DI", "P1", "USD", "10", "0", "2026-08-01");
    decide(&mut s, &p, &analyst("a"), "DI", Command::Dismiss, "fp").unwrap();
    add_on(&s, "AW", "P1", "USD", "10000", "0", "2026-08-01");
    decide(&mut s, &p, &analyst("a"), "AW", Command::Approve, "").unwrap();
    assert!(n > 0);
    // Every quarter open: each adjustment is booked in its own quarter.
    let open = crate::config::JournalConfig {
        closed_through: Some("2000-Q1".into()),
        ..Default::default()
    };
    let journal = |s: &Store, period: &str| journal_with(s, period, &open);
    let mut total_lines = 0;
    for period in ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"] {
        let lines = journal(&s, period).unwrap();
        total_lines += lines.len();
        let mut by_entry: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
        for l in &lines {
            let e = by_entry.entry(l.external_id.clone()).or_default();
            e.0 += l.debit.unwrap_or_default();
            e.1 += l.credit.unwrap_or_default();
            assert!(l.debit.is_some() != l.credit.is_some());
            assert_eq!(
                l.debit.unwrap_or_default(),
                crate::money::round_cents(l.debit.unwrap_or_default())
            );
            assert!(l.audit_reference.starts_with("audit#"));
        }
        for (id, (d, c)) in by_entry {
            assert_eq!(d, c, "{period} entry {id} unbalanced");
        }
        let mut buf = Vec::new();
        journal::write_csv(&lines, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.starts_with(
            "External ID,Date,Currency,Account,Debit,Credit,Name,Memo,Line Memo,Audit Reference"
        ));
    }
    // 2026-Q2 (fiscal, April start) = Jul..Sep: T3x (3 lines pairs) + OV
    let q = journal(&s, "2026-Q2").unwrap();
    assert_eq!(q.len(), (3 + 1) * 2);
    assert!(q.iter().all(|l| l.date == "2026-09-30"));
    let ov: Vec<&JournalLine> = q.iter().filter(|l| l.line_memo.starts_with("OV")).collect();
    assert_eq!(ov[0].account, "Commission Expense");
    assert_eq!(ov[0].debit, Some(dec!(2.5)));
    assert_eq!(total_lines, (6 * 3 + 1) * 2);
    assert!(matches!(
        journal(&s, "2026-Q5").unwrap_err(),
        WorkflowError::InvalidPeriod(_)
    ));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Act {
        Decide(usize, usize, u8),
        Signoff(usize, usize, bool),
        Undo(usize, usize),
        Push,
        Conflict,
        Refuse,
        Batch(usize, u8),
        Change(usize),
        Lapse,
    }

    fn act() -> impl Strategy<Value = Act> {
        prop_oneof![
            4 => (0..3usize, 0..4usize, 0..6u8).prop_map(|(t, a, c)| Act::Decide(t, a, c)),
            3 => (0..3usize, 0..4usize, any::<bool>()).prop_map(|(t, a, b)| Act::Signoff(t, a, b)),
            2 => (0..3usize, 0..4usize).prop_map(|(t, a)| Act::Undo(t, a)),
            2 => Just(Act::Push),
            1 => Just(Act::Conflict),
            1 => Just(Act::Refuse),
            1 => (0..4usize, 0..2u8).prop_map(|(a, c)| Act::Batch(a, c)),
            1 => (0..3usize).prop_map(Act::Change),
            1 => Just(Act::Lapse),
        ]
    }

    const TXS: [&str; 3] = ["A", "B", "C"];

    fn actors() -> [Actor; 4] {
        [
            analyst("ana"),
            analyst("al"),
            manager("max"),
            manager("mia"),
        ]
    }

    fn check_invariants(s: &Store, p: &Policy) {
        let r = verify_chain(s).unwrap();
        assert!(r.is_ok(), "{r:?}");
        let db = s.wf();
        for (o, _status) in outbox_entries(s).unwrap() {
            let d = db
                .get_decision(&o.decision_id)
                .unwrap()
                .expect("outbox entry has its decision");
            assert_eq!(d.transaction_id, o.transaction_id);
            assert_eq!(o.idempotency_key, o.decision_id);
            if o.payload["prm_write"] == "adjust" {
                let m = |k: &str| Decimal::from_str_exact(o.payload[k].as_str().unwrap()).unwrap();
                let delta = m("amount") - m("current_amount");
                let cur = o.payload["currency"].as_str().unwrap();
                let tx = db.get_transaction(&o.transaction_id).unwrap().unwrap();
                let hv = db.partner_high_value(&tx.partner_id).unwrap();
                if p.needs_signoff(delta, cur, &tx.partner_id, hv) && d.action == "compensate" {
                    // Taking back a pushed write restores what four eyes approved before
                    // it; undoing a pushed sign-off is a manager's decision.
                    let reverted = o.payload["reverts"].as_str().expect("reverts");
                    let orig = db
                        .get_decision(reverted)
                        .unwrap()
                        .expect("reverted decision");
                    if orig.action == "sign_off" {
                        assert_eq!(d.role, "manager", "{o:?}");
                    }
                } else if p.needs_signoff(delta, cur, &tx.partner_id, hv) {
                    assert_eq!(d.action, "sign_off", "{o:?}");
                    assert_eq!(d.role, "manager");
                    let by = o.payload["signed_off_by"].as_str().expect("signed off");
                    let proposer = o.payload["proposer"].as_str().unwrap();
                    assert_ne!(by, proposer, "four eyes");
                }
            }
        }
        let pending = pending_outbox(s, 1000).unwrap();
        for t in TXS {
            if let Some(c) = db.get_case(t).unwrap() {
                assert_eq!(db.get_flag(t).unwrap().unwrap().status, c.state);
                if c.state == "queued_for_push" {
                    // what is queued is in the outbox, bound to its decision
                    let o = pending
                        .iter()
                        .rfind(|o| o.transaction_id == t && o.payload["reverts"].is_null())
                        .expect("a queued case has a pending outbox entry");
                    assert_eq!(o.payload["amount"].as_str(), c.decided_amount.as_deref());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
        #[test]
        fn random_sequences_keep_the_invariants(acts in proptest::collection::vec(act(), 1..24)) {
            let mut s = store();
            let p = policy();
            add(&s, "A", "P1", "USD", "1000", "100");   // big: needs sign-off
            add(&s, "B", "P1", "USD", "100", "90");     // small
            add(&s, "C", "PH", "USD", "100", "90");     // high-value partner
            let people = actors();
            let mut version = 0;
            for a in acts {
                let before = counts(&s);
                let res: Result<(), WorkflowError> = match a {
                    Act::Decide(t, who, c) => {
                        let cmd = match c {
                            0 => Command::StartReview,
                            1 => Command::Approve,
                            2 => Command::Override { amount: dec!(700) },
                            3 => Command::Dismiss,
                            4 => Command::Escalate,
                            _ => Command::RequestDocuments,
                        };
                        decide(&mut s, &p, &people[who], TXS[t], cmd, "r").map(|_| ())
                    }
                    Act::Signoff(t, who, ok) => {
                        let c = if ok { SignoffCommand::Approve } else { SignoffCommand::Reject };
                        signoff(&mut s, &p, &people[who], TXS[t], c, "r").map(|_| ())
                    }
                    Act::Undo(t, who) => undo(&mut s, &p, &people[who], TXS[t], "").map(|_| ()),
                    Act::Push => match pending_outbox(&s, 1).unwrap().first() {
                        Some(o) => mark_pushed(&mut s, &o.decision_id, "ref"),
                        None => Ok(()),
                    },
                    Act::Conflict => match pending_outbox(&s, 1).unwrap().first() {
                        Some(o) => mark_conflict(&mut s, &o.decision_id, serde_json::json!({}), "stale"),
                        None => Ok(()),
                    },
                    Act::Refuse => match pending_outbox(&s, 1).unwrap().first() {
                        Some(o) => mark_refused(&mut s, &o.decision_id, "refused"),
                        None => Ok(()),
                    },
                    Act::Batch(who, c) => {
                        let ids: Vec<String> = TXS.iter().map(|t| t.to_string()).collect();
                        let cmd = if c == 0 { Command::Approve } else { Command::Dismiss };
                        decide_batch(&mut s, &p, &people[who], &ids, cmd, "bulk").map(|_| ())
                    }
                    Act::Change(t) => {
                        version += 1;
                        ts::change_transaction(&s, TXS[t], &format!("v{version}")).unwrap();
                        Ok(())
                    }
                    Act::Lapse => lapse_changed_signoffs(&mut s, &people[0]).map(|_| ()),
                };
                if res.is_err() {
                    prop_assert_eq!(counts(&s), before, "a refused action wrote something");
                }
                check_invariants(&s, &p);
            }
        }
    }
}

#[test]
fn previews_apply_nothing() {
    let mut s = store();
    let p = policy();
    add(&s, "T", "PH", "USD", "100", "90");
    let a = analyst("ana");
    assert_eq!(
        preview_decide(&mut s, &p, &a, "T", Command::Approve, "").unwrap(),
        CaseState::AwaitingSignoff
    );
    assert!(matches!(
        preview_decide(&mut s, &p, &a, "T", Command::Dismiss, "").unwrap_err(),
        WorkflowError::ReasonRequired
    ));
    assert_eq!(counts(&s), (0, 0, 0));
    assert_eq!(state(&s, "T"), CaseState::Flagged);
    decide(&mut s, &p, &a, "T", Command::Approve, "").unwrap();
    let before = counts(&s);
    assert!(matches!(
        check_signoff(&mut s, &manager("ana"), "T").unwrap_err(),
        WorkflowError::FourEyes { .. }
    ));
    assert!(matches!(
        check_signoff(&mut s, &analyst("bob"), "T").unwrap_err(),
        WorkflowError::NotManager
    ));
    check_signoff(&mut s, &manager("max"), "T").unwrap();
    assert_eq!(counts(&s), before);
    let q = signoff_queue(&s).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].period, "2026-Q3");
    assert_eq!(q[0].delta, dec!(-10));
    assert_eq!(q[0].proposer.as_deref(), Some("ana"));
    assert_eq!(state(&s, "T"), CaseState::AwaitingSignoff);
}

/// Every outbox entry the workflow writes maps to the PRM write the sync sends.
#[test]
fn the_sync_understands_every_outbox_payload() {
    let mut s = store();
    let p = policy();
    let a = analyst("ana");
    add(&s, "AP", "P1", "USD", "100", "90");
    add(&s, "OV", "P1", "USD", "100", "100");
    add(&s, "SO", "PH", "USD", "100", "90");
    add(&s, "DI", "P1", "USD", "100", "90");
    add(&s, "RD", "P1", "USD", "100", "90");
    decide(&mut s, &p, &a, "AP", Command::Approve, "").unwrap();
    decide(
        &mut s,
        &p,
        &a,
        "OV",
        Command::Override { amount: dec!(120) },
        "rate",
    )
    .unwrap();
    decide(&mut s, &p, &a, "SO", Command::Approve, "").unwrap();
    signoff(
        &mut s,
        &p,
        &manager("max"),
        "SO",
        SignoffCommand::Approve,
        "",
    )
    .unwrap();
    decide(&mut s, &p, &a, "DI", Command::Dismiss, "fp").unwrap();
    decide(&mut s, &p, &a, "RD", Command::RequestDocuments, "po").unwrap();
    for o in pending_outbox(&s, 100).unwrap() {
        mark_pushed(&mut s, &o.decision_id, "r").unwrap();
    }
    for t in ["AP", "OV", "SO", "DI", "RD"] {
        undo(&mut s, &p, &manager("mia"), t, "take back").unwrap();
    }
    let mut got = Vec::new();
    for (o, _status) in outbox_entries(&s).unwrap() {
        let req = crate::sync::push_request_item(&o, None)
            .unwrap_or_else(|e| panic!("{e}: {}", o.payload));
        assert_eq!(req.idempotency_key, o.decision_id);
        got.push((
            o.transaction_id,
            req.action,
            req.amount.map(|a| a.to_string()),
            req.approver,
        ));
    }
    let s_ = |x: &str| x.to_string();
    assert_eq!(
        got,
        vec![
            (s_("AP"), s_("adjust"), Some(s_("90")), None),
            (s_("OV"), s_("adjust"), Some(s_("120")), None),
            (s_("SO"), s_("adjust"), Some(s_("90")), Some(s_("max"))),
            (s_("DI"), s_("release"), None, None),
            (s_("RD"), s_("hold"), None, None),
            // compensations, in order
            (s_("AP"), s_("adjust"), Some(s_("100")), None),
            (s_("OV"), s_("adjust"), Some(s_("100")), None),
            (s_("SO"), s_("adjust"), Some(s_("100")), None),
            (s_("DI"), s_("hold"), None, None),
            (s_("RD"), s_("release"), None, None),
        ]
    );
}

#[test]
fn flag_status_follows_the_case_whoever_writes_it() {
    let mut s = store();
    add(&s, "T", "P1", "USD", "100", "90");
    decide(&mut s, &policy(), &analyst("a"), "T", Command::Approve, "").unwrap();
    ts::exec(
        &s,
        "UPDATE cases SET state = 'pushed' WHERE transaction_id = 'T'",
    )
    .unwrap();
    assert_eq!(flag_status(&s, "T"), "pushed");
    // a rescore re-inserting the flag keeps the workflow's status
    ts::exec(&s, "DELETE FROM flags WHERE transaction_id = 'T'").unwrap();
    ts::insert_flag(&s, "T", "P1", 0.7, &["duplicate"], "h-T").unwrap();
    assert_eq!(flag_status(&s, "T"), "pushed");
}

/// What `bench workflow` decides on: queued proposals nobody has acted on yet.
#[test]
fn undecided_proposals_are_those_without_a_case() {
    let mut s = store();
    for t in ["T1", "T2", "T3"] {
        add(&s, t, "P1", "USD", "100", "90");
    }
    assert_eq!(s.undecided_proposal_ids(10).unwrap(), ["T1", "T2", "T3"]);
    decide(&mut s, &policy(), &analyst("a"), "T2", Command::Approve, "").unwrap();
    assert_eq!(s.undecided_proposal_ids(10).unwrap(), ["T1", "T3"]);
    assert_eq!(s.undecided_proposal_ids(1).unwrap(), ["T1"]);
}
