//! `tierdesk plan draft` with the optional language model (`[assistant]`) against a fake
//! OpenAI-compatible server on 127.0.0.1: asked only for phrasing the parser cannot read,
//! never for what must not be guessed, never with partner data; its rule is checked
//! against the schema, the program's names and the sentence itself.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

type Bodies = Arc<Mutex<Vec<String>>>;

/// `/{mode}/v1/chat/completions` answers the rule of `mode`.
fn fake() -> (String, Bodies, tokio::runtime::Runtime) {
    let bodies: Bodies = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route(
            "/{mode}/v1/chat/completions",
            post(
                |State(bodies): State<Bodies>, UrlPath(mode): UrlPath<String>, body: String| async move {
                    bodies.lock().unwrap().push(body);
                    let rule = match mode.as_str() {
                        // What "double the seller rate on security for resellers" means.
                        "good" => json!({"rule_id": "M1", "kind": "rate_multiplier",
                            "scope": {"family": "security", "partner_kind": "reseller"},
                            "multiplier": "2"}),
                        // A region the sentence never names.
                        "region" => json!({"rule_id": "M1", "kind": "rate_multiplier",
                            "scope": {"family": "security", "region": "EMEA"},
                            "multiplier": "2"}),
                        // A number the sentence never says.
                        "number" => json!({"rule_id": "M1", "kind": "rate_multiplier",
                            "scope": {"family": "security"}, "multiplier": "2.5"}),
                        // Not a rule of the schema.
                        _ => json!({"rule_id": "M1", "kind": "bonus", "amount": 5}),
                    };
                    Json(json!({
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": rule.to_string()}}]
                    }))
                },
            ),
        )
        .with_state(bodies.clone());
    rt.spawn(async move { axum::serve(listener, app).await });
    (url, bodies, rt)
}

fn draft(dir: &Path, db: &Path, url: &str, mode: &str, sentence: &str) -> (Option<i32>, Value) {
    let cfg = dir.join(format!("{mode}.toml"));
    std::fs::write(
        &cfg,
        format!("[assistant]\nurl = \"{url}/{mode}/v1\"\nmodel = \"fake-1\"\ntimeout_secs = 5\n"),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("--db")
        .arg(db)
        .arg("--config")
        .arg(&cfg)
        .args(["plan", "draft", sentence, "--format", "json"])
        .env("HOME", dir)
        .env_remove("TIERDESK_AI_KEY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let v = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?} {o:?}"));
    (o.status.code(), v)
}

#[test]
fn the_model_drafts_only_unreadable_phrasing_and_its_rule_says_only_what_the_sentence_says() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let o = Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("--db")
        .arg(&db)
        .arg("import")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sample-program-v2"
        ))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0) | Some(3)), "{o:?}");
    let (url, bodies, _rt) = fake();
    let sent = || bodies.lock().unwrap().len();

    // The parser reads it: the model is not asked.
    let (code, v) = draft(
        dir.path(),
        &db,
        &url,
        "good",
        "resellers get 1.2x on Security",
    );
    assert_eq!(code, Some(0));
    assert_eq!(v["source"], "parser");
    assert_eq!(sent(), 0);

    // Phrasing the parser cannot read: the model's checked rule, said to be the model's.
    let s = "double the seller rate on security for resellers";
    let (code, v) = draft(dir.path(), &db, &url, "good", s);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["source"], "model");
    assert_eq!(v["rule"]["kind"], "rate_multiplier");
    assert!(
        v["paraphrase"].as_str().unwrap().contains("security"),
        "{v}"
    );
    assert_eq!(sent(), 1);
    let body: Value = serde_json::from_str(&bodies.lock().unwrap()[0]).unwrap();
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("<<DATA") && user.contains("security"),
        "{user}"
    );

    // The model's rule names a region, or a number, the sentence does not: refused.
    let (code, v) = draft(dir.path(), &db, &url, "region", s);
    assert_eq!(code, Some(2));
    assert!(
        v["refused"].as_str().unwrap().contains("does not say"),
        "{v}"
    );
    assert_eq!(v["unreadable"], "region EMEA");
    let (code, v) = draft(dir.path(), &db, &url, "number", s);
    assert_eq!(code, Some(2));
    assert!(v["refused"].as_str().unwrap().contains("number"), "{v}");
    // Not a rule of the schema: refused.
    let (code, v) = draft(dir.path(), &db, &url, "junk", s);
    assert_eq!(code, Some(2));
    assert!(v["refused"].as_str().unwrap().contains("not valid"), "{v}");
    let asked = sent();

    // What must not be guessed is never sent: a percentage without a base.
    let (code, v) = draft(dir.path(), &db, &url, "good", "a 2% bonus in EMEA");
    assert_eq!(code, Some(2));
    assert!(v["refused"].as_str().unwrap().contains("percentage"), "{v}");
    assert_eq!(sent(), asked);

    // A sentence naming a partner is not sent either (the parser's refusal stands).
    let ds = tierdesk::import::load_dataset(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample-program-v2"
    )))
    .unwrap()
    .dataset;
    let partner = &ds.partners[0].name;
    let (code, v) = draft(
        dir.path(),
        &db,
        &url,
        "good",
        &format!("double the seller rate for {partner}"),
    );
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(sent(), asked);
    // --offline never asks.
    let cfg = dir.path().join("good.toml");
    let o = Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("--db")
        .arg(&db)
        .arg("--config")
        .arg(&cfg)
        .args(["plan", "draft", s, "--format", "json", "--offline"])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(sent(), asked);
}
