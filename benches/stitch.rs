//! Identity stitching: how long `identifyVisitor` takes for a visitor with 1,000 earlier page
//! views (re-score, auto-MQL check, attribution credits of the lead's won deal, all in one
//! transaction), and how fast the processor turns the inbox into hits on the way.
//!
//! ```sh
//! cargo bench --bench stitch                                   # SQLite file in a temp dir
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/stitch cargo bench --bench stitch
//! ```
//!
//! Settings (environment): `TRIALS` (20 visitors), `TOUCHES` (1000 page views each), `WON`
//! (1: the deal is won before the stitch, so that its credits are recomputed in it; 0: it stays
//! open, to see what the credits cost).
//! Each trial: a lead in the buying center of an opportunity; `TOUCHES` page views of a fresh
//! visitor posted to `/t/e` (50 a request, 8 requests at a time) and processed; the deal closed
//! WON after them; then `identifyVisitor(visitorId, leadId)` is timed from request to answer.
//! The server runs in this process, on 127.0.0.1, as `serve` runs it.
use std::time::{Duration, Instant};

use closedloop::config::Config;
use closedloop::db::{Checkpoints, Db};
use closedloop::domain::vocab::Role;
use closedloop::startup::Application;
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn gql(&self, query: &str, variables: Value) -> Result<Value, BoxError> {
        let r: Value = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?
            .json()
            .await?;
        if r.get("errors").is_some() {
            return Err(format!("{query}: {r}").into());
        }
        Ok(r["data"].clone())
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let trials = env("TRIALS", 20);
    let touches = env("TOUCHES", 1000);
    let won = env("WON", 1) == 1;
    let dir = std::env::temp_dir().join(format!("closedloop-stitch-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let db = Db::connect_with(&url, Checkpoints::Background).await?;
    db.migrate().await?;
    let name = format!("stitch-{}", std::process::id());
    closedloop::service::workspace::create(&db, &name).await?;
    let (key, _) = closedloop::service::workspace::create_key(&db, &name, Role::Admin, "bench", None).await?;
    let mut config = Config {
        database_url: url.clone(),
        bind: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    config.tracking.hits_per_visitor_per_second = 1_000_000;
    let app = Application::with_db(config, db).await?;
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped());
    let api = Api {
        client: reqwest::Client::new(),
        base,
        key,
    };

    api.gql(
        "mutation { createScoringModel(input: { name: \"Default\" }) { userErrors { code } } }",
        json!({}),
    )
    .await?;
    api.gql(
            "mutation { createCampaign(input: { name: \"Whitepaper\", channel: \"CONTENT\", kind: \"ACQUISITION\", trackingCode: \"wp\" }) { campaign { id } } }",
        json!({}),
    )
    .await?;
    let account = api
        .gql(
            "mutation { upsertAccount(input: { name: \"Hydraulik GmbH\", externalId: \"acc-1\" }) { account { id } } }",
            json!({}),
        )
        .await?["upsertAccount"]["account"]["id"]
        .clone();
    let site_key = api.gql("{ trackingSettings { siteKey } }", json!({})).await?["trackingSettings"]["siteKey"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut stitch_ms = Vec::with_capacity(trials);
    let mut processed_per_second = Vec::with_capacity(trials);
    for t in 0..trials {
        let lead = api
            .gql(
                "mutation($i: UpsertLeadInput!) { upsertLead(input: $i) { lead { id } } }",
                json!({ "i": { "email": format!("lead{t}@example.com"), "accountId": account } }),
            )
            .await?["upsertLead"]["lead"]["id"]
            .clone();
        let deal = api
            .gql(
                "mutation($i: UpsertOpportunityInput!) { upsertOpportunity(input: $i) { opportunity { id } } }",
                json!({ "i": { "accountId": account, "name": format!("Deal {t}"), "amount": "12500.00", "createdAt": "2026-01-01T00:00:00Z" } }),
            )
            .await?["upsertOpportunity"]["opportunity"]["id"]
            .clone();
        api.gql(
            "mutation($i: SetBuyingCenterInput!) { setBuyingCenter(input: $i) { userErrors { code } } }",
            json!({ "i": { "opportunityId": deal, "contacts": [{ "leadId": lead, "role": "Decision maker", "isPrimary": true }] } }),
        )
        .await?;

        let visitor = format!("v1_stitch-bench-{t:06}-{}", std::process::id());
        let before = api.gql("{ ingestStatus { acknowledged } }", json!({})).await?["ingestStatus"]["acknowledged"]
            .as_i64()
            .unwrap();
        let started = Instant::now();
        let batches: Vec<Value> = (0..touches.div_ceil(50))
            .map(|b| {
                let events: Vec<Value> = (b * 50..((b + 1) * 50).min(touches))
                    .map(|i| json!({ "n": "page_view", "id": format!("e{i}"), "u": format!("https://example.com/p/{i}") }))
                    .collect();
                json!({ "k": site_key, "v": visitor, "l": "https://example.com/?utm_campaign=wp", "e": events })
            })
            .collect();
        for chunk in batches.chunks(8) {
            let sends = chunk.iter().map(|b| {
                api.client
                    .post(format!("{}/t/e", api.base))
                    .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Firefox/120.0")
                    .body(b.to_string())
                    .send()
            });
            for r in futures_util::future::join_all(sends).await {
                let r = r?;
                if r.status() != 202 {
                    return Err(format!("/t/e answered {}", r.status()).into());
                }
            }
        }
        let want = before + touches as i64;
        loop {
            let s = api.gql("{ ingestStatus { acknowledged processed } }", json!({})).await?["ingestStatus"].clone();
            if s["processed"].as_i64() >= Some(want) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        processed_per_second.push(touches as f64 / started.elapsed().as_secs_f64());
        if won {
            api.gql(
                "mutation($i: CloseOpportunityInput!) { closeOpportunity(input: $i) { userErrors { code } } }",
                json!({ "i": { "id": deal, "outcome": "WON" } }),
            )
            .await?;
        }

        let started = Instant::now();
        let done = api
            .gql(
                "mutation($i: IdentifyVisitorInput!) { identifyVisitor(input: $i) { stitchedTouchpoints userErrors { code } } }",
                json!({ "i": { "visitorId": visitor, "leadId": lead } }),
            )
            .await?;
        stitch_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let stitched = done["identifyVisitor"]["stitchedTouchpoints"].as_i64().unwrap_or(0);
        if stitched != touches as i64 {
            return Err(format!("stitched {stitched} touchpoints, not {touches}: {done}").into());
        }
        let split = api
            .gql(
                "query($id: ID!) { opportunity(id: $id) { attribution(model: { kind: LINEAR }) { unattributed } } }",
                json!({ "id": deal }),
            )
            .await?;
        if won && split["opportunity"]["attribution"]["unattributed"] != json!(false) {
            return Err(format!("the stitched touches earned the deal no credit: {split}").into());
        }
    }
    stitch_ms.sort_by(f64::total_cmp);
    processed_per_second.sort_by(f64::total_cmp);
    let backend = if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
    println!(
        "stitch on {backend} (deal {}): {trials} visitors x {touches} page views; identifyVisitor ms: min {:.1} median {:.1} p95 {:.1} max {:.1}",
        if won { "won" } else { "open" },
        stitch_ms[0],
        percentile(&stitch_ms, 0.5),
        percentile(&stitch_ms, 0.95),
        stitch_ms[stitch_ms.len() - 1]
    );
    println!(
        "posting and processing {touches} page views (8 requests of 50 at a time): median {:.0} hits/s",
        percentile(&processed_per_second, 0.5)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
