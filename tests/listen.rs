//! `tierdesk listen`: a real receiver on 127.0.0.1, a real SQLite file in a tempdir,
//! events sent by the simulator's sender (`sim::webhook`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tierdesk::listen::{verify, Fetched, Ingest, Mode, Provider, Receiver, Refetch, Resource};
use tierdesk::sim::webhook::{send, send_bytes_at, SignMode};
use tierdesk::store::webhook::{WebhookEvent, WebhookState};
use tierdesk::store::Store;

const HMAC_SECRET: &[u8] = b"ps-hmac-secret-0001";
const SW_SECRET: &[u8] = b"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const PATH_SECRET: &[u8] = b"Zp4u9QmX2cK7wLr3Hs8d";

struct Rig {
    _dir: tempfile::TempDir,
    db: PathBuf,
    base: String,
    receiver: Receiver,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Rig {
    async fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let store = Store::open(&db).unwrap();
        let providers = vec![
            Provider::new(
                "partnerstack",
                Mode::Hmac {
                    header: "X-Signature".into(),
                },
                HMAC_SECRET,
            )
            .unwrap(),
            Provider::new("impartner", Mode::Standard, SW_SECRET).unwrap(),
            Provider::new("acme", Mode::Path, PATH_SECRET).unwrap(),
        ];
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let receiver = Receiver::with_output(
            store,
            providers,
            Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string())),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let r = receiver.clone();
        tokio::spawn(async move { r.serve(listener).await });
        Rig {
            _dir: dir,
            db,
            base,
            receiver,
            lines,
        }
    }

    fn url(&self, provider: &str) -> String {
        format!("{}/hooks/{provider}", self.base)
    }

    /// The rows as another connection to the file sees them (committed data only).
    fn rows(&self) -> Vec<WebhookEvent> {
        let mut v = Store::open(&self.db).unwrap().webhook_events(1000).unwrap();
        v.reverse();
        v
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

fn hmac() -> SignMode {
    SignMode::Hmac {
        header: "X-Signature".into(),
    }
}

fn ps_event(id: &str, event: &str, key: &str, updated: i64) -> Value {
    json!({"id": id, "event": event, "data": {"key": key, "updated_at": updated, "amount": 999}})
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn hmac_event_is_stored_before_the_2xx_and_once_only() {
    let rig = Rig::start().await;
    let ev = ps_event("evt_1", "partnership.updated", "prtnr_1", 1764750000000);
    let status = send(&rig.url("partnerstack"), &hmac(), HMAC_SECRET, &ev, "")
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Right after the answer, another connection sees the committed row.
    let rows = rig.rows();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.provider, "partnerstack");
    assert_eq!(r.event_id.as_deref(), Some("evt_1"));
    assert_eq!(r.event_type, "partnership.updated");
    assert_eq!(r.object_kind.as_deref(), Some("partners"));
    assert_eq!(r.object_key.as_deref(), Some("prtnr_1"));
    assert_eq!(r.object_updated_at.as_deref(), Some("1764750000000"));
    assert_eq!(r.state, WebhookState::Received);
    assert_eq!(r.raw_body, serde_json::to_string(&ev).unwrap());

    // The replay answers 200 {"duplicate":true} and stores nothing.
    let body = serde_json::to_vec(&ev).unwrap();
    let resp = reqwest::Client::new()
        .post(rig.url("partnerstack"))
        .header("X-Signature", verify::sign_hmac(HMAC_SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"duplicate": true})
    );
    assert_eq!(rig.rows().len(), 1);
    let lines = rig.lines();
    assert!(lines.contains(&"received partnership.updated prtnr_1 (partnerstack)".to_string()));
    assert!(lines.contains(&"duplicate partnership.updated prtnr_1 (partnerstack)".to_string()));
}

#[tokio::test]
async fn without_an_event_id_the_object_version_deduplicates() {
    let rig = Rig::start().await;
    let a = json!({"event": "transaction.updated", "data": {"key": "tx_9", "updated_at": 5}});
    let b = json!({"event": "transaction.created", "data": {"key": "tx_9", "updated_at": 5}});
    let c = json!({"event": "transaction.updated", "data": {"key": "tx_9", "updated_at": 6}});
    for ev in [&a, &b, &c] {
        let s = send(&rig.url("partnerstack"), &hmac(), HMAC_SECRET, ev, "")
            .await
            .unwrap();
        assert_eq!(s, 200);
    }
    let rows = rig.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].object_updated_at.as_deref(), Some("6"));
}

#[tokio::test]
async fn bad_or_missing_hmac_is_401_and_stores_nothing() {
    let rig = Rig::start().await;
    let ev = ps_event("evt_2", "transaction.created", "tx_1", 1);
    let s = send(
        &rig.url("partnerstack"),
        &hmac(),
        b"another-secret",
        &ev,
        "",
    )
    .await
    .unwrap();
    assert_eq!(s, 401);
    // Signed for one body, sent with another.
    let signed = verify::sign_hmac(HMAC_SECRET, b"{}");
    let resp = reqwest::Client::new()
        .post(rig.url("partnerstack"))
        .header("X-Signature", signed)
        .body(serde_json::to_vec(&ev).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // No signature at all.
    let resp = reqwest::Client::new()
        .post(rig.url("partnerstack"))
        .body(serde_json::to_vec(&ev).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(rig.rows().is_empty());
    let lines = rig.lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("refused: bad signature from 127.0.0.1"))
            .count(),
        3,
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("ps-hmac-secret")),
        "the secret is never printed"
    );
}

#[tokio::test]
async fn standard_webhooks_accepts_dedups_and_refuses_stale_timestamps() {
    let rig = Rig::start().await;
    let ev =
        json!({"event": "updated", "object": "Sale", "id": 123, "updated": "2026-12-03T09:00:00Z"});
    let body = serde_json::to_vec(&ev).unwrap();
    let url = rig.url("impartner");
    let s = send_bytes_at(&url, &SignMode::Standard, SW_SECRET, &body, "msg_1", now())
        .await
        .unwrap();
    assert_eq!(s, 200);
    let rows = rig.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_id.as_deref(), Some("msg_1"));
    assert_eq!(rows[0].object_kind.as_deref(), Some("transactions"));
    assert_eq!(rows[0].object_key.as_deref(), Some("123"));
    // The same message re-delivered later (fresh signature): deduplicated on webhook-id.
    let s = send_bytes_at(
        &url,
        &SignMode::Standard,
        SW_SECRET,
        &body,
        "msg_1",
        now() - 10,
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    assert_eq!(rig.rows().len(), 1);
    // Signed correctly but more than 5 minutes old, or ahead: refused.
    for ts in [now() - 301, now() + 301, now() - 3600] {
        let s = send_bytes_at(&url, &SignMode::Standard, SW_SECRET, &body, "msg_2", ts)
            .await
            .unwrap();
        assert_eq!(s, 401, "timestamp {ts}");
    }
    // Another key.
    let other = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let s = send_bytes_at(&url, &SignMode::Standard, other, &body, "msg_3", now())
        .await
        .unwrap();
    assert_eq!(s, 401);
    assert_eq!(rig.rows().len(), 1, "nothing stored for refusals");
}

#[tokio::test]
async fn path_mode_wrong_secret_is_404_like_no_route() {
    let rig = Rig::start().await;
    let ev = ps_event("evt_p", "deal.updated", "deal_1", 7);
    let s = send(&rig.url("acme"), &SignMode::Path, PATH_SECRET, &ev, "")
        .await
        .unwrap();
    assert_eq!(s, 200);
    let s = send(
        &rig.url("acme"),
        &SignMode::Path,
        b"Zp4u9QmX2cK7wLr3Hs8e",
        &ev,
        "",
    )
    .await
    .unwrap();
    assert_eq!(s, 404);
    let c = reqwest::Client::new();
    for path in [
        "/hooks/acme",
        "/hooks/nobody",
        "/hooks/partnerstack/Zp4u9QmX2cK7wLr3Hs8d",
        "/elsewhere",
    ] {
        let r = c
            .post(format!("{}{path}", rig.base))
            .body(serde_json::to_vec(&ev).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let rows = rig.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].object_kind.as_deref(), Some("deals"));
}

#[tokio::test]
async fn malformed_json_is_400_and_an_oversized_body_413() {
    let rig = Rig::start().await;
    for body in [&b"{\"event\": "[..], b"[1,2,3]", b"\xff\xfe"] {
        let s = send_bytes_at(&rig.url("partnerstack"), &hmac(), HMAC_SECRET, body, "", 0)
            .await
            .unwrap();
        assert_eq!(s, 400, "{body:?}");
    }
    let big = vec![b' '; tierdesk::listen::MAX_BODY + 1];
    let s = send_bytes_at(&rig.url("partnerstack"), &hmac(), HMAC_SECRET, &big, "", 0)
        .await
        .unwrap();
    assert_eq!(s, 413);
    assert!(rig.rows().is_empty());
}

#[tokio::test]
async fn unknown_events_are_stored_as_ignored() {
    let rig = Rig::start().await;
    let ev = json!({"id": "evt_c", "event": "customer.created", "data": {"key": "cus_1"}});
    let s = send(&rig.url("partnerstack"), &hmac(), HMAC_SECRET, &ev, "")
        .await
        .unwrap();
    assert_eq!(s, 200);
    let rows = rig.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, WebhookState::Ignored);
    assert!(rows[0].error.is_some());
}

/// A PRM that knows some objects and remembers what it was asked.
#[derive(Clone, Default)]
struct FakePrm {
    asked: Arc<Mutex<Vec<(Resource, String)>>>,
}

impl Refetch for FakePrm {
    async fn refetch(&self, kind: Resource, key: &str) -> Result<Option<Value>, String> {
        self.asked.lock().unwrap().push((kind, key.to_string()));
        match key {
            "gone" => Ok(None),
            "broken" => Err("PRM unreachable".into()),
            _ => Ok(Some(json!({"key": key, "served": "by the PRM"}))),
        }
    }
}

#[derive(Clone, Default)]
struct FakeIngest {
    got: Arc<Mutex<Vec<Fetched>>>,
}

impl Ingest for FakeIngest {
    async fn ingest(&self, fetched: &[Fetched]) -> Result<(), String> {
        self.got.lock().unwrap().extend_from_slice(fetched);
        Ok(())
    }
}

#[tokio::test]
async fn the_worker_refetches_in_order_and_marks_the_events() {
    let rig = Rig::start().await;
    let prm = FakePrm::default();
    let ingest = FakeIngest::default();
    let worker = rig.receiver.spawn_worker(prm.clone(), ingest.clone());
    let events = [
        ps_event("e1", "transaction.updated", "tx_1", 10),
        ps_event("e2", "partnership.updated", "prtnr_1", 11),
        json!({"id": "e3", "event": "customer.created", "data": {"key": "cus_1"}}),
        ps_event("e4", "reward.updated", "gone", 12),
        ps_event("e5", "deal.updated", "broken", 13),
    ];
    for ev in &events {
        let s = send(&rig.url("partnerstack"), &hmac(), HMAC_SECRET, ev, "")
            .await
            .unwrap();
        assert_eq!(s, 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let rows = rig.rows();
        if rows
            .iter()
            .all(|r| !matches!(r.state, WebhookState::Received | WebhookState::Fetched))
        {
            break rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "worker stuck: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    worker.abort();
    assert_eq!(
        *prm.asked.lock().unwrap(),
        [
            (Resource::Transactions, "tx_1".to_string()),
            (Resource::Partners, "prtnr_1".to_string()),
            (Resource::Rewards, "gone".to_string()),
            (Resource::Deals, "broken".to_string()),
        ],
        "asked for each named object, in order; never for the ignored event"
    );
    let states: Vec<_> = rows.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            WebhookState::Scored,
            WebhookState::Scored,
            WebhookState::Ignored,
            WebhookState::Failed,
            WebhookState::Failed,
        ]
    );
    assert!(rows[3]
        .error
        .as_deref()
        .unwrap()
        .contains("no rewards gone"));
    assert!(rows[4]
        .error
        .as_deref()
        .unwrap()
        .contains("PRM unreachable"));
    let got = ingest.got.lock().unwrap();
    let keys: Vec<_> = got.iter().map(|f| (f.kind, f.key.as_str())).collect();
    assert_eq!(
        keys,
        [
            (Resource::Transactions, "tx_1"),
            (Resource::Partners, "prtnr_1")
        ]
    );
    // What goes on is the PRM's record, not the body's.
    assert_eq!(got[0].record["served"], "by the PRM");
    assert_eq!(got[0].event, rows[0].id);
}

/// An ingest that fails leaves the events failed with the reason (polling catches up).
#[tokio::test]
async fn a_failed_ingest_marks_the_events_failed() {
    struct Broken;
    impl Ingest for Broken {
        async fn ingest(&self, _: &[Fetched]) -> Result<(), String> {
            Err("the cache is locked".into())
        }
    }
    let rig = Rig::start().await;
    let ev = ps_event("e1", "transaction.updated", "tx_1", 10);
    assert_eq!(
        send(&rig.url("partnerstack"), &hmac(), HMAC_SECRET, &ev, "")
            .await
            .unwrap(),
        200
    );
    let n = rig.receiver.work_once(&FakePrm::default(), &Broken).await;
    assert_eq!(n, 1);
    let rows = rig.rows();
    assert_eq!(rows[0].state, WebhookState::Failed);
    assert!(rows[0]
        .error
        .as_deref()
        .unwrap()
        .contains("the cache is locked"));
    // Nothing left to do.
    assert_eq!(
        rig.receiver.work_once(&FakePrm::default(), &Broken).await,
        0
    );
}
