//! The outbox payload, typed: what one decision asks the PRM to write ([`PrmWrite`]) and
//! the facts that travel with it ([`OutboxPayload`]).
//!
//! The workflow builds these (never ad-hoc JSON) and the sync matches [`PrmWrite`]
//! exhaustively. Rows written before the payload was typed (no `prm_write` key) are
//! still read: [`OutboxPayload::decode`] falls back to the old key vocabulary.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the payload written today (`payload_version`); old rows have none.
pub const PAYLOAD_VERSION: u32 = 2;

/// The write one decision makes on the PRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "prm_write", rename_all = "snake_case")]
pub enum PrmWrite {
    /// Set the transaction's commission total to `amount` (an approved recompute,
    /// reversal or adjustment, an override, or a compensation restoring the total
    /// before a pushed adjustment). `current_amount` is the total it replaces.
    Adjust {
        amount: Decimal,
        current_amount: Decimal,
    },
    /// Approve the commission as accrued (an approval without an amount).
    Approve,
    /// Put the commission on hold (status `hold` on the PRM); nothing is reversed.
    /// `held_amount` is the commission held.
    Hold { held_amount: Decimal },
    /// The deal stands as submitted: release any hold and approve as accrued.
    Release,
    /// Decline the commission on the PRM (no decision writes it today; rows of the old
    /// shape with `reverse`/`reject`/`decline` do).
    Decline,
}

impl PrmWrite {
    /// The name of the write (`adjust`, `approve`, `hold`, `release`).
    pub fn name(&self) -> &'static str {
        match self {
            PrmWrite::Adjust { .. } => "adjust",
            PrmWrite::Approve => "approve",
            PrmWrite::Hold { .. } => "hold",
            PrmWrite::Release => "release",
            PrmWrite::Decline => "decline",
        }
    }

    /// The write that takes this one back once it was pushed: an adjustment restores
    /// the previous total, a hold is released, an approval or release is held again
    /// (`held` is the commission that would be held then).
    pub fn inverse(&self, held: Decimal) -> PrmWrite {
        match self {
            PrmWrite::Adjust {
                amount,
                current_amount,
            } => PrmWrite::Adjust {
                amount: *current_amount,
                current_amount: *amount,
            },
            PrmWrite::Hold { .. } | PrmWrite::Decline => PrmWrite::Release,
            PrmWrite::Approve | PrmWrite::Release => PrmWrite::Hold { held_amount: held },
        }
    }
}

/// One outbox row's payload (JSON in `outbox.payload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxPayload {
    pub payload_version: u32,
    pub decision_id: String,
    pub transaction_id: String,
    /// The decision: approve | override | dismiss | request_documents | sign_off |
    /// undo | compensate (old rows: whatever they recorded).
    pub action: String,
    #[serde(flatten)]
    pub write: PrmWrite,
    pub currency: String,
    pub reason: String,
    /// Who proposed the write (the decision's author).
    pub proposer: Option<String>,
    /// The manager who signed it off, when it needed a sign-off.
    pub signed_off_by: Option<String>,
    #[serde(default)]
    pub signoff_reason: Option<String>,
    /// For a sign-off: the decision that proposed the write.
    #[serde(default)]
    pub proposal_decision_id: Option<String>,
    /// For a compensation: the decision it takes back.
    #[serde(default)]
    pub reverts: Option<String>,
    pub decided_at: String,
    /// The transaction as the reviewer saw it (row_hash, record_version, amount, …).
    #[serde(default)]
    pub seen: Value,
}

/// Why an outbox payload cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("outbox payload of decision {decision}: {why}")]
    Invalid { decision: String, why: String },
}

impl OutboxPayload {
    /// Reads a stored payload: the typed shape, or (rows written before it) the old
    /// key vocabulary. `decision` names the row in errors.
    pub fn decode(v: &Value, decision: &str) -> Result<OutboxPayload, PayloadError> {
        if v.get("prm_write").is_some() {
            return serde_json::from_value(v.clone()).map_err(|e| PayloadError::Invalid {
                decision: decision.to_string(),
                why: e.to_string(),
            });
        }
        legacy(v, decision)
    }

    pub fn to_json(&self) -> Value {
        // A struct of strings, decimals and JSON values always serialises.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The payload shape written before [`PrmWrite`]: `prm_action` or `action` in one of
/// about twenty spellings, `amount` as a decimal string (or number), `current_amount`,
/// `decided_by`/`proposer`, `approver`/`signed_off_by`, `reverted_prm_action`.
fn legacy(p: &Value, decision: &str) -> Result<OutboxPayload, PayloadError> {
    let bad = |why: String| PayloadError::Invalid {
        decision: decision.to_string(),
        why,
    };
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    let money = |k: &str| -> Result<Option<Decimal>, PayloadError> {
        match p.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(t)) => crate::money::parse_money(t)
                .map(Some)
                .ok_or_else(|| bad(format!("{k} `{t}` is not money"))),
            Some(other) => other
                .to_string()
                .parse::<Decimal>()
                .map(Some)
                .map_err(|_| bad(format!("{k} {other} is not money"))),
        }
    };
    let raw = s("prm_action")
        .or_else(|| s("action"))
        .ok_or_else(|| bad("it has no action".into()))?;
    let amount = money("amount")?;
    let current = money("current_amount")?.unwrap_or(Decimal::ZERO);
    let adjust = |amount: Option<Decimal>| -> Result<PrmWrite, PayloadError> {
        let amount = amount.ok_or_else(|| bad("an adjustment needs an amount".into()))?;
        Ok(PrmWrite::Adjust {
            amount,
            current_amount: current,
        })
    };
    let write = match raw.to_ascii_lowercase().as_str() {
        "override" | "overridden" | "adjust" | "recompute" => adjust(amount)?,
        "revert" | "compensate" => match (amount, s("reverted_prm_action").as_deref()) {
            (Some(_), _) => adjust(amount)?,
            (None, Some("hold")) => PrmWrite::Release,
            (None, _) => PrmWrite::Hold {
                held_amount: current,
            },
        },
        "approve" | "approved" | "signoff" | "sign_off" | "signed_off" | "signoff_approve" => {
            match amount {
                Some(_) => adjust(amount)?,
                None => PrmWrite::Approve,
            }
        }
        "dismiss" | "dismissed" | "release" => match amount {
            Some(_) => adjust(amount)?,
            None => PrmWrite::Release,
        },
        "hold" | "escalate" | "escalated" | "request_documents" | "documents_requested" => {
            PrmWrite::Hold {
                held_amount: current,
            }
        }
        "decline" | "reject" | "rejected" | "reverse" | "signoff_reject" => PrmWrite::Decline,
        other => return Err(bad(format!("no PRM write for action `{other}`"))),
    };
    Ok(OutboxPayload {
        payload_version: 1,
        decision_id: s("decision_id").unwrap_or_else(|| decision.to_string()),
        transaction_id: s("transaction_id").unwrap_or_default(),
        action: s("action").unwrap_or(raw),
        write,
        currency: s("currency").unwrap_or_default(),
        reason: s("reason").unwrap_or_default(),
        proposer: s("proposer").or_else(|| s("decided_by")),
        signed_off_by: s("approver").or_else(|| s("signed_off_by")),
        signoff_reason: s("signoff_reason"),
        proposal_decision_id: s("proposal_decision_id"),
        reverts: s("reverts"),
        decided_at: s("decided_at").unwrap_or_default(),
        seen: p.get("seen").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn typed(write: PrmWrite) -> OutboxPayload {
        OutboxPayload {
            payload_version: PAYLOAD_VERSION,
            decision_id: "d-1".into(),
            transaction_id: "T-1".into(),
            action: "approve".into(),
            write,
            currency: "USD".into(),
            reason: "why".into(),
            proposer: Some("ana".into()),
            signed_off_by: Some("mia".into()),
            signoff_reason: None,
            proposal_decision_id: None,
            reverts: None,
            decided_at: "2026-10-01T00:00:00Z".into(),
            seen: json!({"row_hash": "h"}),
        }
    }

    #[test]
    fn every_write_round_trips_through_json() {
        for w in [
            PrmWrite::Adjust {
                amount: dec!(12.30),
                current_amount: dec!(100),
            },
            PrmWrite::Approve,
            PrmWrite::Hold {
                held_amount: dec!(5),
            },
            PrmWrite::Release,
            PrmWrite::Decline,
        ] {
            let p = typed(w.clone());
            let text = p.to_json().to_string();
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back["prm_write"], w.name());
            assert_eq!(OutboxPayload::decode(&back, "d-1").unwrap(), p);
        }
        // Money is a decimal string on the wire, never a float.
        let v = typed(PrmWrite::Adjust {
            amount: dec!(12.30),
            current_amount: dec!(100),
        })
        .to_json();
        assert_eq!(v["amount"], json!("12.30"));
    }

    #[test]
    fn old_rows_are_read_with_the_old_vocabulary() {
        let cases = [
            (
                json!({"action": "approve", "prm_action": "adjust", "amount": "90", "current_amount": "100", "decided_by": "ana"}),
                PrmWrite::Adjust {
                    amount: dec!(90),
                    current_amount: dec!(100),
                },
            ),
            (
                json!({"action": "override", "amount": 120.5}),
                PrmWrite::Adjust {
                    amount: dec!(120.5),
                    current_amount: dec!(0),
                },
            ),
            (json!({"prm_action": "release"}), PrmWrite::Release),
            (
                json!({"action": "reverse", "actor": "ana"}),
                PrmWrite::Decline,
            ),
            (json!({"action": "signed_off"}), PrmWrite::Approve),
            (
                json!({"prm_action": "hold", "action": "request_documents"}),
                PrmWrite::Hold {
                    held_amount: dec!(0),
                },
            ),
            (
                json!({"prm_action": "revert", "reverted_prm_action": "hold"}),
                PrmWrite::Release,
            ),
            (
                json!({"prm_action": "revert", "reverted_prm_action": "adjust", "amount": "100"}),
                PrmWrite::Adjust {
                    amount: dec!(100),
                    current_amount: dec!(0),
                },
            ),
        ];
        for (v, want) in cases {
            let p = OutboxPayload::decode(&v, "old").unwrap();
            assert_eq!(p.write, want, "{v}");
            assert_eq!(p.payload_version, 1);
        }
        let p = OutboxPayload::decode(
            &json!({"action": "approve", "amount": "1", "approver": "mia", "decided_by": "ana"}),
            "old",
        )
        .unwrap();
        assert_eq!(p.signed_off_by.as_deref(), Some("mia"));
        assert_eq!(p.proposer.as_deref(), Some("ana"));
    }

    #[test]
    fn unreadable_payloads_are_named_errors() {
        for v in [
            json!({}),
            json!({"action": "teleport"}),
            json!({"action": "adjust"}),
            json!({"action": "adjust", "amount": "12,5"}),
            json!({"prm_write": "adjust", "amount": "x"}),
        ] {
            let e = OutboxPayload::decode(&v, "dX").unwrap_err();
            assert!(e.to_string().contains("dX"), "{e}");
        }
    }

    #[test]
    fn inverses_take_a_write_back() {
        let a = PrmWrite::Adjust {
            amount: dec!(90),
            current_amount: dec!(100),
        };
        assert_eq!(
            a.inverse(dec!(0)),
            PrmWrite::Adjust {
                amount: dec!(100),
                current_amount: dec!(90)
            }
        );
        assert_eq!(
            PrmWrite::Hold {
                held_amount: dec!(1)
            }
            .inverse(dec!(1)),
            PrmWrite::Release
        );
        assert_eq!(
            PrmWrite::Release.inverse(dec!(7)),
            PrmWrite::Hold {
                held_amount: dec!(7)
            }
        );
    }
}
