//! What a webhook body names: the event type, the object (as a tierdesk resource),
//! its key and update time. The record a body carries is never used as data: the
//! worker re-fetches the object through the PRM API.
//!
//! Two shapes are understood (detected per body, whatever the provider is called):
//!
//! - **PartnerStack** (and Standard Webhooks' recommended payload): an `event` (or
//!   `type`) field such as `partnership.updated`, and a `data` object carrying the
//!   record, with `key` and `updated_at`. The text before the first `.` names the
//!   object: `partnership` → partners, `deal` → deals, `transaction` → transactions,
//!   `reward` → rewards (plural forms too). A top-level `id` or `event_id` is the
//!   event's id.
//! - **Generic** (Impartner has no public webhooks): `{"event": "...", "object":
//!   "Sale", "id": 123, "updated": "..."}`. `object` is an Impartner object name or
//!   alias (`Sale`/`Transaction` → transactions, `Partner`/`Account` → partners,
//!   `Deal`/`Opportunity` → deals, `Commission`/`Reward` → rewards); `id` is the
//!   *object's* id here, so only `event_id` is the event's id.
//!
//! Anything else (another object, such as `customer.created`, no key, no event type)
//! is stored as `ignored` with the reason, never an error. Only a body that is not a
//! JSON object is refused (400).

use serde_json::Value;

use crate::prm::Res;

/// What a body says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// `event` / `type`, or `unknown`.
    pub event_type: String,
    /// The event's own id from the body (a Standard Webhooks `webhook-id` header,
    /// when verified, takes precedence; see the receiver).
    pub event_id: Option<String>,
    /// The resource the object maps to (`None`: the event is ignored).
    pub resource: Option<Res>,
    pub key: Option<String>,
    /// The object's update time as the body gave it (epoch ms or text).
    pub updated: Option<String>,
    /// Why the event is ignored, when it is.
    pub ignored: Option<String>,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The resource a PartnerStack event prefix names.
fn ps_resource(prefix: &str) -> Option<Res> {
    match prefix.to_ascii_lowercase().as_str() {
        "partnership" | "partnerships" | "partner" | "partners" => Some(Res::Partners),
        "deal" | "deals" => Some(Res::Deals),
        "transaction" | "transactions" => Some(Res::Transactions),
        "reward" | "rewards" => Some(Res::Rewards),
        _ => None,
    }
}

/// The resource a generic body's `object` names.
/// A tenant's custom commission object (`Commission__co`, `PartnerCommission__co`)
/// counts as rewards.
fn object_resource(object: &str) -> Option<Res> {
    let lower = object.to_ascii_lowercase();
    let o = lower.trim_end_matches("__co");
    match o {
        "sale" | "sales" | "transaction" | "transactions" => Some(Res::Transactions),
        "partner" | "partners" | "account" | "partnership" => Some(Res::Partners),
        "deal" | "deals" | "opportunity" | "dealregistration" => Some(Res::Deals),
        "commission" | "commissions" | "reward" | "rewards" => Some(Res::Rewards),
        _ if lower.ends_with("__co") && o.contains("commission") => Some(Res::Rewards),
        _ => None,
    }
}

/// Reads a parsed body. `Err` only when it is not a JSON object.
pub fn parse(body: &Value) -> Result<ParsedEvent, String> {
    let obj = body
        .as_object()
        .ok_or_else(|| "the body is not a JSON object".to_string())?;
    let event_type = text(obj.get("event"))
        .or_else(|| text(obj.get("type")))
        .unwrap_or_else(|| "unknown".to_string());
    let mut p = ParsedEvent {
        event_type: event_type.clone(),
        event_id: None,
        resource: None,
        key: None,
        updated: None,
        ignored: None,
    };
    if let Some(object) = obj.get("object").and_then(Value::as_str) {
        // Generic shape: `id` names the object.
        p.event_id = text(obj.get("event_id"));
        p.resource = object_resource(object);
        p.key = text(obj.get("id")).or_else(|| text(obj.get("key")));
        p.updated = text(obj.get("updated")).or_else(|| text(obj.get("updated_at")));
        if p.resource.is_none() {
            p.ignored = Some(format!("object `{object}` is not synced by tierdesk"));
        }
    } else {
        p.event_id = text(obj.get("event_id")).or_else(|| text(obj.get("id")));
        let prefix = event_type.split('.').next().unwrap_or("");
        p.resource = ps_resource(prefix);
        if let Some(data) = obj.get("data").and_then(Value::as_object) {
            p.key = text(data.get("key")).or_else(|| text(data.get("id")));
            p.updated = text(data.get("updated_at")).or_else(|| text(data.get("updated")));
        }
        if p.resource.is_none() {
            p.ignored = Some(if event_type == "unknown" {
                "no event type".to_string()
            } else {
                format!("event `{event_type}` is not about a synced object")
            });
        }
    }
    if p.resource.is_some() && p.key.is_none() {
        p.ignored = Some("the body names no object key".to_string());
    }
    if p.ignored.is_some() {
        p.resource = None;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn partnerstack_events() {
        let p = parse(&json!({
            "id": "evt_1", "event": "partnership.updated",
            "data": {"key": "prtnr_1", "updated_at": 1764750000000_i64, "name": "x"}
        }))
        .unwrap();
        assert_eq!(p.event_type, "partnership.updated");
        assert_eq!(p.event_id.as_deref(), Some("evt_1"));
        assert_eq!(p.resource, Some(Res::Partners));
        assert_eq!(p.key.as_deref(), Some("prtnr_1"));
        assert_eq!(p.updated.as_deref(), Some("1764750000000"));
        assert_eq!(p.ignored, None);
        for (ev, res) in [
            ("transaction.created", Res::Transactions),
            ("reward.updated", Res::Rewards),
            ("deal.updated", Res::Deals),
        ] {
            let p = parse(&json!({"event": ev, "data": {"key": "k"}})).unwrap();
            assert_eq!(p.resource, Some(res), "{ev}");
            assert_eq!(p.event_id, None);
        }
        // Standard Webhooks' payload shape (`type`).
        let p = parse(&json!({"type": "deal.updated", "data": {"key": "d1"}})).unwrap();
        assert_eq!(p.resource, Some(Res::Deals));
    }

    #[test]
    fn generic_events_take_id_as_the_object() {
        let p = parse(&json!({
            "event": "updated", "object": "Sale", "id": 123,
            "updated": "2026-12-03T09:00:00Z"
        }))
        .unwrap();
        assert_eq!(p.resource, Some(Res::Transactions));
        assert_eq!(p.key.as_deref(), Some("123"));
        assert_eq!(p.event_id, None, "id is the Sale's, not the event's");
        assert_eq!(p.updated.as_deref(), Some("2026-12-03T09:00:00Z"));
        let c = parse(&json!({"event": "updated", "object": "PartnerCommission__co", "id": 7}))
            .unwrap();
        assert_eq!(c.resource, Some(Res::Rewards));
        let p = parse(&json!({"event_id": "e9", "event": "x", "object": "Account", "id": "a1"}))
            .unwrap();
        assert_eq!(p.event_id.as_deref(), Some("e9"));
        assert_eq!(p.resource, Some(Res::Partners));
    }

    #[test]
    fn unknown_events_are_ignored_not_errors() {
        for body in [
            json!({"event": "customer.created", "data": {"key": "c1"}}),
            json!({"event": "invoice.paid"}),
            json!({"hello": "world"}),
            json!({"event": "transaction.created", "data": {"amount": 5}}),
            json!({"event": "x", "object": "Invoice", "id": 1}),
        ] {
            let p = parse(&body).unwrap();
            assert_eq!(p.resource, None, "{body}");
            assert!(p.ignored.is_some(), "{body}");
        }
        assert!(parse(&json!([1, 2])).is_err());
        assert!(parse(&json!("text")).is_err());
    }
}
