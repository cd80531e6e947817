//! Reach, e-mail statistics, the campaign performance extras (costs by category, leads touched,
//! SQLs, opportunities influenced, open pipeline, deals won, expected leads) and time buckets,
//! on a small workspace worked out by hand (docs/kpis.md).
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, id_of, user_errors};

const Q1: &str = r#"{ "from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z" }"#;

fn q1() -> Value {
    serde_json::from_str(Q1).unwrap()
}

struct Fixture {
    a: String,
    b: String,
    c: String,
    news: String,
}

/// Four leads created 1 Dec 2025:
/// - A: e-mail and phone, consents EMAIL and PHONE;
/// - B: e-mail with consent, bounced on the newsletter 5 Jan;
/// - C: e-mail, LinkedIn and a postal address, consents EMAIL, LINKEDIN and POSTAL, and a phone
///   without consent;
/// - D: e-mail with consent, unsubscribed 1 Feb 10:00.
///
/// Newsletter (EMAIL): sent to all four 2 Jan; A and C open, A clicks; B "opens" too, but its
/// e-mail bounced. Costs: MEDIA 100.00 (10 Jan), CONTENT 50.00 (1 Feb), MEDIA 25.00 (1 Mar);
/// expected leads 5. Deals: Rollout (1,000.00, A, won 1 Mar), Pilot (400.00, C, open),
/// Legacy (300.00, D, won 1 Jan, before D's first touch).
async fn fixture(app: &TestApp) -> Fixture {
    let account = app.account(json!({ "name": "Initech" })).await;
    let created = "2025-12-01T00:00:00Z";
    let lead = |input: Value| {
        let mut input = input;
        input["accountId"] = json!(account);
        input["createdAt"] = json!(created);
        input
    };
    let a = id_of(
        &app.upsert_lead(lead(
            json!({ "email": "a@initech.test", "phone": "+49 30 1", "consents": { "EMAIL": true, "PHONE": true } }),
        ))
        .await,
    );
    let b = id_of(
        &app.upsert_lead(lead(json!({ "email": "b@initech.test", "consents": { "EMAIL": true } })))
            .await,
    );
    let c = id_of(
        &app.upsert_lead(lead(json!({
            "email": "c@initech.test", "phone": "+49 30 3", "linkedinUrl": "https://www.linkedin.com/in/c",
            "street": "Hauptstraße 1", "postalCode": "10115", "city": "Berlin",
            "consents": { "EMAIL": true, "LINKEDIN": true, "POSTAL": true, "PHONE": false } })))
            .await,
    );
    let d = id_of(
        &app.upsert_lead(lead(json!({ "email": "d@initech.test", "consents": { "EMAIL": true } })))
            .await,
    );
    let news = app
        .campaign(json!({ "name": "Newsletter", "channel": "EMAIL", "kind": "ACQUISITION", "expectedLeads": 5 }))
        .await;
    let webinar = app
        .campaign(json!({ "name": "Webinar", "channel": "WEBINAR", "kind": "ACQUISITION" }))
        .await;
    let t = |lead: &str, kind: &str, at: &str| json!({ "leadId": lead, "campaignId": news, "type": kind, "occurredAt": at });
    let recorded = app
        .record(json!([
            t(&a, "EMAIL_SENT", "2026-01-02T08:00:00Z"),
            t(&b, "EMAIL_SENT", "2026-01-02T08:00:00Z"),
            t(&c, "EMAIL_SENT", "2026-01-02T08:00:00Z"),
            t(&d, "EMAIL_SENT", "2026-01-02T08:00:00Z"),
            t(&b, "EMAIL_BOUNCED", "2026-01-05T08:00:00Z"),
            t(&a, "EMAIL_OPEN", "2026-01-02T09:00:00Z"),
            t(&a, "EMAIL_OPEN", "2026-01-03T09:00:00Z"),
            t(&c, "EMAIL_OPEN", "2026-01-02T10:00:00Z"),
            t(&a, "EMAIL_CLICK", "2026-01-02T09:05:00Z"),
            t(&b, "EMAIL_OPEN", "2026-01-06T10:00:00Z"),
            t(&d, "UNSUBSCRIBED", "2026-02-01T10:00:00Z"),
            // Another campaign's touch, and one outside the range: neither counts for the newsletter.
            { "leadId": a, "campaignId": webinar, "type": "WEBINAR_ATTEND", "occurredAt": "2026-02-10T10:00:00Z" },
            t(&c, "EMAIL_OPEN", "2026-04-02T10:00:00Z"),
        ]))
        .await;
    assert_eq!(recorded["recordedCount"], 13, "{recorded}");
    let q = "mutation($input: AddCampaignCostInput!) { addCampaignCost(input: $input) { userErrors { field code } } }";
    for (category, amount, on) in [
        ("MEDIA", "100", "2026-01-10"),
        ("CONTENT", "50", "2026-02-01"),
        ("MEDIA", "25", "2026-03-01"),
    ] {
        let input = json!({ "campaignId": news, "category": category, "amount": amount, "incurredOn": on });
        app.mutate(&app.keys.marketing, "addCampaignCost", q, json!({ "input": input }))
            .await;
    }
    let set = "mutation($input: SetBuyingCenterInput!) { setBuyingCenter(input: $input) { userErrors { field code } } }";
    let close = "mutation($input: CloseOpportunityInput!) { closeOpportunity(input: $input) { userErrors { field code } } }";
    for (name, amount, contact, won_at) in [
        ("Rollout", "1000", &a, Some("2026-03-01T00:00:00Z")),
        ("Pilot", "400", &c, None),
        ("Legacy", "300", &d, Some("2026-01-01T00:00:00Z")),
    ] {
        let deal = app
            .opportunity(json!({ "accountId": account, "name": name, "amount": amount, "createdAt": "2025-12-15T00:00:00Z" }))
            .await;
        let contacts = json!([{ "leadId": contact, "role": "Decision maker", "isPrimary": true }]);
        let input = json!({ "input": { "opportunityId": deal, "contacts": contacts } });
        app.mutate(&app.keys.sales, "setBuyingCenter", set, input).await;
        if let Some(at) = won_at {
            let input = json!({ "input": { "id": deal, "outcome": "WON", "closedAt": at } });
            app.mutate(&app.keys.sales, "closeOpportunity", close, input).await;
        }
    }
    Fixture { a, b, c, news }
}

const REACH: &str = "query($to: DateTime) { reach(to: $to) { leads channels { channel reachable share } } }";

fn reachable(r: &Value, channel: &str) -> (i64, Value) {
    let row = r["channels"].as_array().unwrap().iter().find(|x| x["channel"] == channel).unwrap();
    (row["reachable"].as_i64().unwrap(), row["share"].clone())
}

async fn reach_per_channel_by_hand(app: TestApp) {
    let f = fixture(&app).await;
    // Now: EMAIL A and C (B bounced, D unsubscribed); PHONE A (C has no consent); LINKEDIN and
    // POSTAL C; nobody on TWITTER or FACEBOOK.
    let r = app.data(&app.keys.analyst, REACH, json!({})).await["reach"].clone();
    assert_eq!(r["leads"], 4);
    assert_eq!(
        r["channels"],
        json!([
            { "channel": "EMAIL", "reachable": 2, "share": "0.5000" },
            { "channel": "PHONE", "reachable": 1, "share": "0.2500" },
            { "channel": "LINKEDIN", "reachable": 1, "share": "0.2500" },
            { "channel": "TWITTER", "reachable": 0, "share": "0.0000" },
            { "channel": "FACEBOOK", "reachable": 0, "share": "0.0000" },
            { "channel": "POSTAL", "reachable": 1, "share": "0.2500" },
        ])
    );
    // Just before 1 Feb 10:00 D had not unsubscribed yet; before 5 Jan B had not bounced; before
    // the leads existed there is nobody (share null, not a division by zero).
    for (to, email) in [("2026-02-01T10:00:00Z", 3), ("2026-01-05T08:00:00Z", 4)] {
        let r = app.data(&app.keys.analyst, REACH, json!({ "to": to })).await["reach"].clone();
        assert_eq!(reachable(&r, "EMAIL").0, email, "at {to}");
    }
    let r = app.data(&app.keys.analyst, REACH, json!({ "to": "2025-01-01T00:00:00Z" })).await["reach"].clone();
    assert_eq!((r["leads"].clone(), reachable(&r, "EMAIL")), (json!(0), (0, Value::Null)));

    let q = "query($id: ID!) { lead(id: $id) { reachableChannels linkedinUrl street postalCode city } }";
    let c = app.data(&app.keys.analyst, q, json!({ "id": f.c })).await["lead"].clone();
    assert_eq!(
        c,
        json!({ "reachableChannels": ["EMAIL", "LINKEDIN", "POSTAL"], "linkedinUrl": "https://www.linkedin.com/in/c",
                "street": "Hauptstraße 1", "postalCode": "10115", "city": "Berlin" })
    );

    // A new address clears B's bounce; withdrawing A's e-mail consent removes A: still 2, and
    // the cached report does not outlive the writes.
    let update = "mutation($input: UpdateLeadInput!) { updateLead(input: $input) { lead { emailBouncedAt reachableChannels } userErrors { field code } } }";
    let b = app
        .mutate(
            &app.keys.marketing,
            "updateLead",
            update,
            json!({ "input": { "id": f.b, "email": "b.new@initech.test" } }),
        )
        .await;
    assert_eq!(b["lead"], json!({ "emailBouncedAt": null, "reachableChannels": ["EMAIL"] }));
    app.mutate(
        &app.keys.marketing,
        "updateLead",
        update,
        json!({ "input": { "id": f.a, "consents": { "EMAIL": false } } }),
    )
    .await;
    let r = app.data(&app.keys.analyst, REACH, json!({})).await["reach"].clone();
    assert_eq!(reachable(&r, "EMAIL"), (2, json!("0.5000")));

    // Erasure removes the contact data: C reaches nobody any more.
    let erase = "mutation($input: EraseLeadInput!) { eraseLead(input: $input) { lead { linkedinUrl street city reachableChannels } userErrors { code } } }";
    let erased = app
        .mutate(&app.keys.admin, "eraseLead", erase, json!({ "input": { "id": f.c } }))
        .await;
    assert_eq!(
        erased["lead"],
        json!({ "linkedinUrl": null, "street": null, "city": null, "reachableChannels": [] })
    );
    let r = app.data(&app.keys.analyst, REACH, json!({})).await["reach"].clone();
    assert_eq!((reachable(&r, "LINKEDIN").0, reachable(&r, "POSTAL").0), (0, 0));
}
both!(reach_per_channel_by_hand);

const PERFORMANCE: &str = "query($range: DateTimeRangeInput!) { campaigns(first: 10) { nodes { name performance(range: $range) {
  figures { revenue { amount } costs { amount } roi } costsByCategory { category amount { amount } }
  leadsSourced mqls sqls leadsTouched opportunitiesInfluenced openOpportunities openPipeline { amount } dealsWon conversions
  email { sent delivered uniqueOpens uniqueClicks openRate clickRate clickToOpenRate }
  expectedLeads leadsDifference leadsRatio } } } }";

async fn campaign_extras_and_email_statistics_by_hand(app: TestApp) {
    let f = fixture(&app).await;
    // A handed off (MQL), and sales accepts (SQL).
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { id } userErrors { field code } } }";
    let handoff = app
        .mutate(&app.keys.marketing, "handOffLead", q, json!({ "input": { "leadId": f.a } }))
        .await;
    let accept = "mutation($input: AcceptHandoffInput!) { acceptHandoff(input: $input) { handoff { lead { stage { key } } } userErrors { field code } } }";
    let accepted = app
        .mutate(
            &app.keys.sales,
            "acceptHandoff",
            accept,
            json!({ "input": { "id": id_of(&handoff["handoff"]) } }),
        )
        .await;
    assert_eq!(accepted["handoff"]["lead"]["stage"]["key"], "SQL");

    let page = app.data(&app.keys.analyst, PERFORMANCE, json!({ "range": q1() })).await;
    let nodes = page["campaigns"]["nodes"].as_array().unwrap();
    let news = nodes.iter().find(|n| n["name"] == "Newsletter").unwrap()["performance"].clone();
    // LINEAR: Rollout's path is A's four newsletter touches before 1 Mar and the webinar touch
    // of 10 Feb: 1000 x 4/5 = 800.00 to the newsletter; Legacy (1 Jan) has no touch before its
    // close and stays unattributed. Costs 175.00: ROI (800 - 175) / 175 = 3.5714.
    // Sourced: all four leads' first touch is the 2 Jan send; A handed off and in SQL.
    // Touched: four leads. Influenced: Rollout (A touched before 1 Mar) and Pilot (open, C);
    // not Legacy (D's touches came after it closed). E-mail: sent 4, delivered 3 (B bounced),
    // opened A and C (B's open does not count), clicked A: 2/3, 1/3, 1/2. Expected leads 5:
    // -1, 0.8.
    assert_eq!(
        news,
        json!({
            "figures": { "revenue": { "amount": "800.00" }, "costs": { "amount": "175.00" }, "roi": "3.5714" },
            "costsByCategory": [
                { "category": "CONTENT", "amount": { "amount": "50.00" } },
                { "category": "MEDIA", "amount": { "amount": "125.00" } },
            ],
            "leadsSourced": 4, "mqls": 1, "sqls": 1, "leadsTouched": 4,
            "opportunitiesInfluenced": 2, "openOpportunities": 1, "openPipeline": { "amount": "400.00" },
            "dealsWon": 1, "conversions": "0.800000",
            "email": { "sent": 4, "delivered": 3, "uniqueOpens": 2, "uniqueClicks": 1,
                       "openRate": "0.6667", "clickRate": "0.3333", "clickToOpenRate": "0.5000" },
            "expectedLeads": 5, "leadsDifference": -1, "leadsRatio": "0.8000",
        })
    );
    // The webinar is not an e-mail campaign: no e-mail statistics; no forecast of leads.
    let webinar = nodes.iter().find(|n| n["name"] == "Webinar").unwrap()["performance"].clone();
    assert_eq!(
        (
            &webinar["email"],
            &webinar["leadsTouched"],
            &webinar["opportunitiesInfluenced"],
            &webinar["leadsRatio"]
        ),
        (&Value::Null, &json!(1), &json!(1), &Value::Null)
    );

    // With an owner filter only the owner's leads count: A, once Sam owns it.
    let sam = app.user("Sam Sales", "sam@initech.test").await;
    let q = "query($range: DateTimeRangeInput!, $owner: ID) { campaignRoi(range: $range, filter: { ownerId: $owner }) {
        campaigns { campaign { name } leadsTouched opportunitiesInfluenced email { sent uniqueOpens } } } }";
    let owned = |report: &Value| {
        report["campaignRoi"]["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["campaign"]["name"] == "Newsletter")
            .unwrap()
            .clone()
    };
    let before = app.data(&app.keys.analyst, q, json!({ "range": q1(), "owner": sam })).await;
    assert_eq!(
        owned(&before),
        json!({ "campaign": { "name": "Newsletter" }, "leadsTouched": 0, "opportunitiesInfluenced": 0, "email": { "sent": 0, "uniqueOpens": 0 } })
    );
    let update = "mutation($input: UpdateLeadInput!) { updateLead(input: $input) { userErrors { field code } } }";
    app.mutate(
        &app.keys.marketing,
        "updateLead",
        update,
        json!({ "input": { "id": f.a, "ownerId": sam } }),
    )
    .await;
    let after = app.data(&app.keys.analyst, q, json!({ "range": q1(), "owner": sam })).await;
    assert_eq!(
        owned(&after),
        json!({ "campaign": { "name": "Newsletter" }, "leadsTouched": 1, "opportunitiesInfluenced": 1, "email": { "sent": 1, "uniqueOpens": 1 } })
    );

    // expectedLeads is validated and can be cleared.
    let q =
        "mutation($input: UpdateCampaignInput!) { updateCampaign(input: $input) { campaign { expectedLeads } userErrors { field code } } }";
    let bad = app
        .data(&app.keys.marketing, q, json!({ "input": { "id": f.news, "expectedLeads": -1 } }))
        .await["updateCampaign"]
        .clone();
    assert_eq!(user_errors(&bad), vec![("input.expectedLeads".to_owned(), "INVALID".to_owned())]);
    let cleared = app
        .mutate(
            &app.keys.marketing,
            "updateCampaign",
            q,
            json!({ "input": { "id": f.news, "expectedLeads": null } }),
        )
        .await;
    assert_eq!(cleared["campaign"]["expectedLeads"], Value::Null);
}
both!(campaign_extras_and_email_statistics_by_hand);

async fn monthly_periods_by_hand(app: TestApp) {
    fixture(&app).await;
    let q = "query($range: DateTimeRangeInput!, $bucket: KpiBucket) { rpm(range: $range, bucket: $bucket) { from to
      periods { from to roi { total { revenue { amount } costs { amount } } } reach { channels { channel reachable } } } } }";
    let r = app.data(&app.keys.analyst, q, json!({ "range": q1(), "bucket": "MONTH" })).await["rpm"].clone();
    let periods = r["periods"].as_array().unwrap();
    // January: 100.00 of costs and no revenue (Legacy is unattributed); February: 50.00; March:
    // Rollout's 1,000.00 in all and 25.00. E-mail reach at each month's end: A, C, D (B bounced
    // 5 Jan); A, C (D unsubscribed 1 Feb); A, C.
    let got: Vec<(String, String, String, String, i64)> = periods
        .iter()
        .map(|p| {
            (
                p["from"].as_str().unwrap()[..10].to_owned(),
                p["to"].as_str().unwrap()[..10].to_owned(),
                p["roi"]["total"]["revenue"]["amount"].as_str().unwrap().to_owned(),
                p["roi"]["total"]["costs"]["amount"].as_str().unwrap().to_owned(),
                p["reach"]["channels"][0]["reachable"].as_i64().unwrap(),
            )
        })
        .collect();
    let row = |f: &str, t: &str, rev: &str, cost: &str, email: i64| (f.to_owned(), t.to_owned(), rev.to_owned(), cost.to_owned(), email);
    assert_eq!(
        got,
        vec![
            row("2026-01-01", "2026-02-01", "0.00", "100.00", 3),
            row("2026-02-01", "2026-03-01", "0.00", "50.00", 2),
            row("2026-03-01", "2026-04-01", "1000.00", "25.00", 2),
        ]
    );
    // Without a bucket: the whole range, once.
    let whole = app.data(&app.keys.analyst, q, json!({ "range": q1() })).await["rpm"]["periods"].clone();
    assert_eq!(whole.as_array().unwrap().len(), 1);
    assert_eq!(whole[0]["roi"]["total"]["costs"]["amount"], "175.00");
    // Years of weeks are too many periods.
    let long = json!({ "from": "2000-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z" });
    let resp = app.gql(&app.keys.analyst, q, json!({ "range": long, "bucket": "WEEK" })).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
}
both!(monthly_periods_by_hand);
