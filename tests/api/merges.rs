//! `mergeLeads`: two leads that are one person become one, with everything either did.
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_month_sums_match_ledger, decode_id, error_code, id_of, scalar, user_errors};
use crate::tracking::{VISITOR, as_person, create_link, no_redirects, personal, post, processed, site_key};

const MERGE: &str = "mutation($i: MergeLeadsInput!) { mergeLeads(input: $i) {
  lead { id email externalId firstName lastName phone customFields unsubscribedAt createdAt stage { key } openHandoff { id } erasedAt mergedInto { id } }
  userErrors { field code message } } }";

async fn merge(app: &TestApp, key: &str, lead: &str, duplicate: &str) -> Value {
    let r = app
        .gql(key, MERGE, json!({ "i": { "leadId": lead, "duplicateId": duplicate } }))
        .await;
    r["data"]["mergeLeads"].clone()
}

async fn count(app: &TestApp, sql: String) -> i64 {
    scalar(&app.db, &sql).await
}

async fn a_merged_lead_brings_its_history_visitors_handoff_and_deals(app: TestApp) {
    let q = "mutation { createScoringModel(input: { name: \"Default\" }) { userErrors { code } } }";
    app.mutate(&app.keys.marketing, "createScoringModel", q, json!({})).await;
    let account = app.account(json!({ "name": "Hydraulik AG" })).await;
    let webinar = app
        .campaign(json!({ "name": "Webinar", "channel": "WEBINAR", "kind": "ACQUISITION", "trackingCode": "web-1" }))
        .await;
    let news = app
        .campaign(json!({ "name": "HydroNews", "channel": "EMAIL", "kind": "NURTURE", "trackingCode": "news" }))
        .await;
    let ada = id_of(
        &app.upsert_lead(json!({
            "email": "ada@hydraulik.test", "externalId": "crm-1", "firstName": "Ada",
            "customFields": { "tier": "gold" }, "createdAt": "2026-02-01T00:00:00Z",
        }))
        .await,
    );
    let dup = id_of(
        &app.upsert_lead(json!({
            "email": "a.lovelace@home.test", "lastName": "Lovelace", "phone": "+49 30 1", "accountId": account,
            "customFields": { "tier": "silver", "source": "fair" }, "createdAt": "2026-01-15T00:00:00Z",
        }))
        .await,
    );
    let other = app.lead("bob@hydraulik.test").await;
    let recorded = app
        .record(json!([
            { "leadId": ada, "campaignId": webinar, "type": "WEBINAR_ATTEND", "occurredAt": "2026-02-10T10:00:00Z" },
            { "leadId": dup, "campaignId": news, "type": "EMAIL_OPEN", "occurredAt": "2026-01-20T10:00:00Z" },
            { "leadId": dup, "campaignId": news, "type": "UNSUBSCRIBED", "occurredAt": "2026-02-20T10:00:00Z" },
            { "leadId": other, "campaignId": news, "type": "EMAIL_OPEN", "occurredAt": "2026-01-20T10:00:00Z" },
        ]))
        .await;
    assert_eq!(recorded["recordedCount"], 4, "{recorded}");

    // The duplicate was a visitor of the site before; its personal mailing link is out.
    let key = site_key(&app, &app.keys.analyst).await;
    let form = json!({ "k": key, "v": VISITOR, "email": "a.lovelace@home.test", "l": "https://www.example.com/?utm_campaign=web-1",
        "u": "https://www.example.com/contact" });
    assert_eq!(post(&app, "/t/identify", form, &[]).await.0, 202);
    processed(&app, &app.keys.analyst, 1).await;
    let link = create_link(&app, &news, "https://example.com/offer").await;
    let (dup_url, _) = personal(&app, link["id"].as_str().unwrap(), &dup, 10).await;

    // The duplicate is waiting for sales, and is a deal's primary contact; a second deal has
    // both as contacts.
    let hand_off = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { id } userErrors { field code } } }";
    let handoff = app
        .mutate(&app.keys.marketing, "handOffLead", hand_off, json!({ "input": { "leadId": dup } }))
        .await["handoff"]["id"]
        .clone();
    let deal = app
        .opportunity(json!({ "accountId": account, "name": "Pumps", "amount": "1000", "createdAt": "2026-02-01T00:00:00Z" }))
        .await;
    let both = app
        .opportunity(json!({ "accountId": account, "name": "Valves", "amount": "300", "createdAt": "2026-02-01T00:00:00Z" }))
        .await;
    app.buying_center(&deal, json!([{ "leadId": dup, "role": "Decision maker", "isPrimary": true }]))
        .await;
    app.buying_center(
        &both,
        json!([{ "leadId": ada, "role": "User" }, { "leadId": dup, "role": "Decision maker", "isPrimary": true }]),
    )
    .await;
    for opp in [&deal, &both] {
        app.close_won(opp, "2026-03-01T00:00:00Z").await;
    }
    let (ada_n, dup_n, deal_n) = (decode_id(&ada), decode_id(&dup), decode_id(&deal));
    let webinar_credits = format!(
        "SELECT COUNT(*) FROM attribution_credits WHERE opportunity_id = {deal_n} AND campaign_id = {}",
        decode_id(&webinar)
    );
    assert_eq!(count(&app, webinar_credits.clone()).await, 0, "Ada was no contact of the deal");

    // Refused, with nothing written: a lead into itself, an analyst, an ID of no lead.
    let p = merge(&app, &app.keys.sales, &ada, &ada).await;
    assert_eq!(user_errors(&p), [("input.duplicateId".to_owned(), "INVALID".to_owned())]);
    let r = app
        .gql(&app.keys.analyst, MERGE, json!({ "i": { "leadId": ada, "duplicateId": dup } }))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let p = merge(&app, &app.keys.sales, &ada, "TGVhZDo5OTk5OQ==").await;
    assert_eq!(user_errors(&p), [("input.duplicateId".to_owned(), "NOT_FOUND".to_owned())]);

    let p = merge(&app, &app.keys.sales, &ada, &dup).await;
    assert_eq!(user_errors(&p), vec![], "{p}");
    let lead = &p["lead"];
    assert_eq!(lead["id"], ada.as_str());
    // Ada's values stay; the blanks are the duplicate's.
    assert_eq!(
        (
            &lead["email"],
            &lead["externalId"],
            &lead["firstName"],
            &lead["lastName"],
            &lead["phone"]
        ),
        (
            &json!("ada@hydraulik.test"),
            &json!("crm-1"),
            &json!("Ada"),
            &json!("Lovelace"),
            &json!("+49 30 1")
        )
    );
    assert_eq!(lead["customFields"], json!({ "tier": "gold", "source": "fair" }));
    assert_eq!(lead["unsubscribedAt"], "2026-02-20T10:00:00Z", "an unsubscribe is the person's");
    assert_eq!(lead["createdAt"], "2026-01-15T00:00:00Z", "known since the earlier of the two");
    // The duplicate's handoff came along, and with it its stage.
    assert_eq!(lead["stage"]["key"], "MQL");
    assert_eq!(lead["openHandoff"]["id"], handoff);
    assert_eq!((&lead["erasedAt"], &lead["mergedInto"]), (&Value::Null, &Value::Null));

    let q = "query($id: ID!, $ada: ID!, $h: ID!) {
      dup: lead(id: $id) { id email lastName phone externalId erasedAt mergedInto { id email } touchpoints(first: 5) { totalCount } stageHistory(first: 5) { totalCount } }
      ada: lead(id: $ada) { touchpoints(first: 10) { totalCount nodes { type campaign { name } } } stageHistory(first: 10) { nodes { toStage { key } reason } }
        opportunities { name } account { name } }
      handoff: node(id: $h) { ... on Handoff { lead { id } } }
      leads(first: 10) { totalCount }
      byEmail: leadByEmail(email: \"a.lovelace@home.test\") { id }
    }";
    let d = app.data(&app.keys.analyst, q, json!({ "id": dup, "ada": ada, "h": handoff })).await;
    let stub = &d["dup"];
    assert_eq!(stub["mergedInto"], json!({ "id": ada, "email": "ada@hydraulik.test" }));
    assert!(stub["erasedAt"].is_string());
    for field in ["email", "lastName", "phone", "externalId"] {
        assert_eq!(stub[field], Value::Null, "{field} of the stub");
    }
    assert_eq!(stub["touchpoints"]["totalCount"], 0);
    assert_eq!(stub["stageHistory"]["totalCount"], 0, "one person is counted once in the funnel");
    // Ada's own touchpoint, the duplicate's two, and the visitor's form submit.
    assert_eq!(d["ada"]["touchpoints"]["totalCount"], 4, "{}", d["ada"]);
    let moves: Vec<&Value> = d["ada"]["stageHistory"]["nodes"].as_array().unwrap().iter().collect();
    assert!(
        moves
            .iter()
            .any(|m| m["toStage"]["key"] == "MQL" && m["reason"] == format!("merged lead {dup}").as_str()),
        "{moves:?}"
    );
    let mut deals: Vec<&str> = d["ada"]["opportunities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    deals.sort_unstable();
    assert_eq!(deals, ["Pumps", "Valves"]);
    assert_eq!(d["ada"]["account"]["name"], "Hydraulik AG");
    assert_eq!(d["handoff"]["lead"]["id"], ada.as_str());
    assert_eq!(d["leads"]["totalCount"], 2, "the stub is not listed");
    assert_eq!(d["byEmail"], Value::Null);

    // The deals are credited again: Ada's webinar is on the deal's path now, no credit names the
    // stub, and every model's credits still add up to the deal.
    assert!(count(&app, webinar_credits).await > 0);
    assert_eq!(
        count(&app, format!("SELECT COUNT(*) FROM attribution_credits WHERE lead_id = {dup_n}")).await,
        0
    );
    let off = format!(
        "SELECT COUNT(*) FROM (SELECT model_id, SUM(amount_minor) AS s FROM attribution_credits \
         WHERE opportunity_id = {deal_n} GROUP BY model_id) AS per_model WHERE s <> 100000"
    );
    assert_eq!(count(&app, off).await, 0);
    assert_month_sums_match_ledger(&app.db).await;
    assert_eq!(
        count(&app, format!("SELECT COUNT(*) FROM opportunity_contacts WHERE lead_id = {ada_n}")).await,
        2,
        "the deal both were contacts of keeps one"
    );
    let primary = format!(
        "SELECT COUNT(*) FROM opportunity_contacts WHERE lead_id = {ada_n} AND opportunity_id = {} AND is_primary",
        decode_id(&both)
    );
    assert_eq!(count(&app, primary).await, 1, "the duplicate was its primary contact");
    assert_eq!(
        count(&app, format!("SELECT COUNT(*) FROM lead_scores WHERE lead_id = {dup_n}")).await,
        0
    );

    // The visitor is Ada's now, and the duplicate's personal link clicks for her.
    assert_eq!(
        count(&app, format!("SELECT COUNT(*) FROM visitors WHERE lead_id = {ada_n}")).await,
        1
    );
    let seen = scalar(&app.db, "SELECT COUNT(*) FROM tracked_hits").await;
    assert_eq!(as_person(&no_redirects(), &dup_url).await.status(), 302);
    let view = json!({ "k": key, "v": VISITOR, "e": [{ "n": "page_view", "id": "after", "u": "https://www.example.com/pricing" }] });
    assert_eq!(post(&app, "/t/e", view, &[]).await.0, 202);
    processed(&app, &app.keys.analyst, seen + 2).await;
    let d = app
        .data(
            &app.keys.analyst,
            "query($id: ID!) { lead(id: $id) { touchpoints(first: 1) { totalCount } } }",
            json!({ "id": ada }),
        )
        .await;
    assert_eq!(d["lead"]["touchpoints"]["totalCount"], 6, "the click and the page view are Ada's");

    // A stub cannot be merged again, nor merged into.
    let p = merge(&app, &app.keys.sales, &ada, &dup).await;
    assert_eq!(user_errors(&p), [("input.duplicateId".to_owned(), "NOT_FOUND".to_owned())]);
    let p = merge(&app, &app.keys.sales, &dup, &other).await;
    assert_eq!(user_errors(&p), [("input.leadId".to_owned(), "NOT_FOUND".to_owned())]);
}
both!(a_merged_lead_brings_its_history_visitors_handoff_and_deals);

async fn two_pending_handoffs_are_refused_and_nothing_is_written(app: TestApp) {
    let ada = app.lead("ada@hydraulik.test").await;
    let dup = app.lead("a.lovelace@home.test").await;
    let campaign = app.simple_campaign("News").await;
    app.record(json!([{ "leadId": dup, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": "2026-01-20T10:00:00Z" }]))
        .await;
    let hand_off = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { userErrors { field code } } }";
    for lead in [&ada, &dup] {
        app.mutate(&app.keys.marketing, "handOffLead", hand_off, json!({ "input": { "leadId": lead } }))
            .await;
    }
    let p = merge(&app, &app.keys.marketing, &ada, &dup).await;
    assert_eq!(user_errors(&p), [("input.duplicateId".to_owned(), "CONFLICT".to_owned())]);
    assert_eq!(p["lead"], Value::Null);
    let q = "query($id: ID!) { lead(id: $id) { email erasedAt touchpoints(first: 1) { totalCount } openHandoff { id } } }";
    let d = app.data(&app.keys.analyst, q, json!({ "id": dup })).await;
    assert_eq!(d["lead"]["email"], "a.lovelace@home.test");
    assert_eq!(d["lead"]["erasedAt"], Value::Null);
    assert_eq!(d["lead"]["touchpoints"]["totalCount"], 1);
    assert!(d["lead"]["openHandoff"]["id"].is_string());

    // Another workspace's lead is no lead of yours.
    let r = app
        .gql(&app.other.admin, MERGE, json!({ "i": { "leadId": ada, "duplicateId": dup } }))
        .await;
    let p = &r["data"]["mergeLeads"];
    assert_eq!(user_errors(p), [("input.leadId".to_owned(), "NOT_FOUND".to_owned())]);
}
both!(two_pending_handoffs_are_refused_and_nothing_is_written);

async fn merging_two_leads_both_ways_at_once_leaves_one(app: TestApp) {
    for round in 0..5 {
        let a = app.lead(&format!("a{round}@hydraulik.test")).await;
        let b = app.lead(&format!("b{round}@hydraulik.test")).await;
        let campaign = app.simple_campaign(&format!("News {round}")).await;
        app.record(json!([
            { "leadId": a, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": "2026-01-20T10:00:00Z" },
            { "leadId": b, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": "2026-01-21T10:00:00Z" },
        ]))
        .await;
        let (one, two) = tokio::join!(merge(&app, &app.keys.sales, &a, &b), merge(&app, &app.keys.marketing, &b, &a));
        let mut outcomes = [user_errors(&one), user_errors(&two)];
        outcomes.sort();
        assert_eq!(outcomes[0], vec![], "{one} {two}");
        assert_eq!(outcomes[1].len(), 1, "{one} {two}");
        assert_eq!(outcomes[1][0].1, "NOT_FOUND", "{one} {two}");
        let q = "query($a: ID!, $b: ID!) { a: lead(id: $a) { erasedAt touchpoints(first: 1) { totalCount } } b: lead(id: $b) { erasedAt touchpoints(first: 1) { totalCount } } }";
        let d = app.data(&app.keys.analyst, q, json!({ "a": a, "b": b })).await;
        let live: Vec<&Value> = [&d["a"], &d["b"]].into_iter().filter(|l| l["erasedAt"].is_null()).collect();
        assert_eq!(live.len(), 1, "{d}");
        assert_eq!(live[0]["touchpoints"]["totalCount"], 2, "{d}");
    }
}
both!(merging_two_leads_both_ways_at_once_leaves_one);

async fn the_survivor_takes_the_keys_it_lacks_and_the_funnel_counts_one_person(app: TestApp) {
    // A CRM contact without an e-mail, and a sign-up with one.
    let crm = id_of(&app.upsert_lead(json!({ "externalId": "crm-7", "firstName": "Grace" })).await);
    let signup = app.lead("grace@navy.test").await;
    let snapshot = "{ funnelSnapshot { stage { key } leads reached } reach { leads } }";
    let before = app.data(&app.keys.analyst, snapshot, json!({})).await;
    let lead_row = |d: &Value| {
        d["funnelSnapshot"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["stage"]["key"] == "LEAD")
            .map(|r| (r["leads"].as_i64().unwrap(), r["reached"].as_i64().unwrap()))
            .unwrap()
    };
    assert_eq!(lead_row(&before), (2, 2));
    assert_eq!(before["reach"]["leads"], 2);

    let p = merge(&app, &app.keys.sales, &crm, &signup).await;
    assert_eq!(user_errors(&p), vec![], "{p}");
    assert_eq!(
        (&p["lead"]["email"], &p["lead"]["externalId"], &p["lead"]["firstName"]),
        (&json!("grace@navy.test"), &json!("crm-7"), &json!("Grace"))
    );
    let q = "{ leadByEmail(email: \"grace@navy.test\") { id } leadByExternalId(externalId: \"crm-7\") { id } }";
    let d = app.data(&app.keys.analyst, q, json!({})).await;
    assert_eq!((&d["leadByEmail"]["id"], &d["leadByExternalId"]["id"]), (&json!(crm), &json!(crm)));
    // The same e-mail again finds the survivor: no third lead.
    assert_eq!(app.lead("grace@navy.test").await, crm);

    let after = app.data(&app.keys.analyst, snapshot, json!({})).await;
    assert_eq!(lead_row(&after), (1, 1), "one person: {after}");
    assert_eq!(after["reach"]["leads"], 1, "{after}");
}
both!(the_survivor_takes_the_keys_it_lacks_and_the_funnel_counts_one_person);
