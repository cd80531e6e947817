//! First-party capture: tracking links and pixels, site events, identification and stitching,
//! privacy and abuse limits, all through the public endpoints and the processor.
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, data_of, error_code, global_id, scalar, user_errors};

pub(crate) const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
pub(crate) const VISITOR: &str = "v1_0123456789abcdef0123456789ab";

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Waits until every acknowledged hit of the key's workspace is processed and at least
/// `at_least` were acknowledged; the status then.
pub(crate) async fn processed(app: &TestApp, key: &str, at_least: i64) -> Value {
    let q = "{ ingestStatus { acknowledged processed rejected lagSeconds unknownCampaignCodes { code hits } } }";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = app.data(key, q, json!({})).await["ingestStatus"].clone();
        if s["acknowledged"].as_i64().unwrap() >= at_least && s["processed"] == s["acknowledged"] {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "hits not processed in time: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A GET as a person's browser or mail client sends it (a user agent, `Accept-Language`).
pub(crate) async fn as_person(web: &reqwest::Client, url: &str) -> reqwest::Response {
    web.get(url)
        .header("User-Agent", BROWSER)
        .header("Accept-Language", "de")
        .send()
        .await
        .unwrap()
}

pub(crate) async fn site_key(app: &TestApp, key: &str) -> String {
    let d = app.data(key, "{ trackingSettings { siteKey snippet scriptUrl } }", json!({})).await;
    let s = &d["trackingSettings"];
    assert!(s["snippet"].as_str().unwrap().contains(s["siteKey"].as_str().unwrap()));
    s["siteKey"].as_str().unwrap().to_owned()
}

pub(crate) async fn post(app: &TestApp, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut r = app.client.post(app.url(path)).header("User-Agent", BROWSER).body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn touchpoints_of(app: &TestApp, lead: &str) -> Vec<(String, Option<String>)> {
    let q = "query($id: ID!) { node(id: $id) { ... on Lead { touchpoints(first: 100) { nodes { type campaign { name } } } } } }";
    let d = app.data(&app.keys.analyst, q, json!({ "id": lead })).await;
    let mut out: Vec<(String, Option<String>)> = d["node"]["touchpoints"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["type"].as_str().unwrap().to_owned(),
                t["campaign"]["name"].as_str().map(str::to_owned),
            )
        })
        .collect();
    out.sort();
    out
}

pub(crate) async fn create_link(app: &TestApp, campaign: &str, destination: &str) -> Value {
    let m = "mutation($i: CreateTrackingLinkInput!) { createTrackingLink(input: $i) { trackingLink { id url destination touchType campaign { id } } userErrors { field code } } }";
    let input = json!({ "campaignId": campaign, "destination": destination, "utmSource": "hydronews", "utmMedium": "email" });
    let p = app
        .mutate(&app.keys.marketing, "createTrackingLink", m, json!({ "i": input }))
        .await;
    assert_eq!(p["userErrors"], json!([]), "{p}");
    p["trackingLink"].clone()
}

pub(crate) async fn personal(app: &TestApp, link: &str, lead: &str, sent_minutes_ago: i64) -> (String, String) {
    let q = "query($l: ID!, $leads: [ID!]!, $at: DateTime) { node(id: $l) { ... on TrackingLink { personal(leadIds: $leads, sentAt: $at) { leadId url pixelUrl } } } }";
    let at = (chrono::Utc::now() - chrono::Duration::minutes(sent_minutes_ago)).to_rfc3339();
    let d = app
        .data(
            &app.keys.marketing,
            q,
            json!({ "l": link, "leads": [lead, "TGVhZDo5OTk5OQ=="], "at": at }),
        )
        .await;
    let p = d["node"]["personal"].as_array().unwrap();
    assert_eq!(p.len(), 1, "an ID that is no lead of the workspace is left out");
    (
        p[0]["url"].as_str().unwrap().to_owned(),
        p[0]["pixelUrl"].as_str().unwrap().to_owned(),
    )
}

async fn links_redirect_only_to_their_destination_and_count_once(app: TestApp) {
    let campaign = app
        .campaign(json!({ "name": "HydroNews 2026", "channel": "EMAIL", "kind": "NURTURE", "trackingCode": "news-26" }))
        .await;
    let ada = app.lead("ada@example.com").await;
    let link = create_link(&app, &campaign, "https://example.com/offer?x=1").await;
    assert_eq!(link["touchType"], "EMAIL_CLICK", "the default of an EMAIL campaign");
    assert_eq!(
        link["destination"],
        "https://example.com/offer?x=1&utm_source=hydronews&utm_medium=email"
    );
    let link_id = link["id"].as_str().unwrap();
    let (url, pixel) = personal(&app, link_id, &ada, 60).await;
    let web = no_redirects();

    // A person clicks twice: both hits are kept, one EMAIL_CLICK touchpoint.
    for _ in 0..2 {
        let r = as_person(&web, &url).await;
        assert_eq!(r.status(), 302);
        let to = r.headers()["location"].to_str().unwrap();
        assert!(
            to.starts_with("https://example.com/offer?x=1&utm_source=hydronews&utm_medium=email&cl_t="),
            "{to}"
        );
    }
    // A tampered token, a token of a link that does not exist, junk: 404, never a redirect.
    let token = url.rsplit('/').next().unwrap();
    let mut forged = token.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [forged.as_str(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "..%2F..%2Fetc", "x"] {
        let r = web.get(app.url(&format!("/t/c/{bad}"))).send().await.unwrap();
        assert_eq!(r.status(), 404, "{bad}");
        assert!(r.headers().get("location").is_none());
    }
    // The pixel: a person's open, and Apple's privacy proxy (a machine open, kept apart).
    let r = as_person(&web, &pixel).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/gif");
    assert_eq!(r.bytes().await.unwrap().len(), 43);
    let r = web.get(&pixel).header("User-Agent", "Mozilla/5.0").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The anonymous link: a click that counts for the campaign, no one's touchpoint.
    let r = web
        .get(link["url"].as_str().unwrap())
        .header("User-Agent", BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        !r.headers()["location"].to_str().unwrap().contains("cl_t="),
        "an anonymous link names no lead"
    );

    let s = processed(&app, &app.keys.analyst, 5).await;
    assert_eq!((s["acknowledged"].as_i64(), s["rejected"].as_i64()), (Some(5), Some(0)), "{s}");
    assert_eq!(
        touchpoints_of(&app, &ada).await,
        vec![
            ("EMAIL_CLICK".to_owned(), Some("HydroNews 2026".to_owned())),
            ("EMAIL_OPEN".to_owned(), Some("HydroNews 2026".to_owned())),
        ]
    );
    // A personal link clicked within a minute of its send is a scanner's: no touchpoint.
    let bob = app.lead("bob@example.com").await;
    let (fresh, _) = personal(&app, link_id, &bob, 0).await;
    let r = as_person(&web, &fresh).await;
    assert_eq!(r.status(), 302);
    assert!(
        !r.headers()["location"].to_str().unwrap().contains("cl_t="),
        "a machine is not identified"
    );
    processed(&app, &app.keys.analyst, 6).await;
    assert_eq!(touchpoints_of(&app, &bob).await, vec![]);

    // E-mail statistics show the machines beside the leads: Apple's proxy opened, a scanner
    // clicked; neither counts as an open or click of a lead.
    let sent_at = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let sends = json!([{ "leadId": ada, "campaignId": campaign, "type": "EMAIL_SENT", "occurredAt": sent_at },
                       { "leadId": bob, "campaignId": campaign, "type": "EMAIL_SENT", "occurredAt": sent_at }]);
    assert_eq!(app.record(sends).await["recordedCount"], 2);
    // Two days: the sends an hour ago fall on yesterday between 00:00 and 01:00 UTC.
    let q = "query($c: ID!) { campaign(id: $c) { performance(range: { lastDays: 2 }) { email { sent uniqueOpens uniqueClicks machineOpens machineClicks } } } }";
    let stats = app.data(&app.keys.analyst, q, json!({ "c": campaign })).await;
    assert_eq!(
        stats["campaign"]["performance"]["email"],
        json!({ "sent": 2, "uniqueOpens": 1, "uniqueClicks": 1, "machineOpens": 1, "machineClicks": 1 })
    );

    // An ad's link is clicked by its whole audience: 60 clicks at once are all kept (a personal
    // link, one person's, is limited to a few a second).
    let anyone = link["url"].as_str().unwrap();
    for _ in 0..60 {
        let r = web.get(anyone).header("User-Agent", BROWSER).send().await.unwrap();
        assert_eq!(r.status(), 302);
    }
    let s = processed(&app, &app.keys.analyst, 66).await;
    assert_eq!(s["acknowledged"], 66, "none dropped: {s}");

    // Another workspace's key cannot see or use the link.
    let other = app
        .data(
            &app.other.admin,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": link_id }),
        )
        .await;
    assert_eq!(other["node"], Value::Null);
    let list = "query($c: ID) { trackingLinks(campaignId: $c, first: 10) { totalCount nodes { id } } }";
    let mine = app.data(&app.keys.analyst, list, json!({ "c": campaign })).await;
    assert_eq!(mine["trackingLinks"], json!({ "totalCount": 1, "nodes": [{ "id": link_id }] }));
    let theirs = app.data(&app.other.analyst, list, json!({ "c": Value::Null })).await;
    assert_eq!(theirs["trackingLinks"]["totalCount"], 0);
    // ANALYST keys make no links.
    let m = "mutation($i: CreateTrackingLinkInput!) { createTrackingLink(input: $i) { trackingLink { id } } }";
    let r = app
        .gql(
            &app.keys.analyst,
            m,
            json!({ "i": { "campaignId": campaign, "destination": "https://example.com/" } }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    // Bad input writes nothing: a destination that is not http(s), an unknown campaign.
    let m = "mutation($i: CreateTrackingLinkInput!) { createTrackingLink(input: $i) { trackingLink { id } userErrors { field code } } }";
    for (input, field, code) in [
        (
            json!({ "campaignId": campaign, "destination": "javascript:alert(1)" }),
            "destination",
            "INVALID",
        ),
        (
            json!({ "campaignId": global_id("Campaign", 99_999), "destination": "https://example.com/" }),
            "campaignId",
            "NOT_FOUND",
        ),
        (
            json!({ "campaignId": campaign, "destination": "https://example.com/", "touchType": "NOPE" }),
            "touchType",
            "INVALID",
        ),
    ] {
        let p = data_of(app.gql(&app.keys.marketing, m, json!({ "i": input })).await)["createTrackingLink"].clone();
        assert_eq!(p["trackingLink"], Value::Null);
        let errors = user_errors(&p);
        assert_eq!(errors, vec![(format!("input.{field}"), code.to_owned())], "{p}");
    }
}
both!(links_redirect_only_to_their_destination_and_count_once, jetstream);

async fn a_visitor_is_stitched_to_its_lead_with_its_earlier_touches(app: TestApp) {
    let campaign = app
        .campaign(json!({ "name": "Whitepaper hydraulics", "channel": "CONTENT", "kind": "ACQUISITION", "trackingCode": "WP-Hydraulics" }))
        .await;
    let key = site_key(&app, &app.keys.analyst).await;
    let q = "mutation { createScoringModel(input: { name: \"Default\" }) { userErrors { code } } }";
    app.mutate(&app.keys.marketing, "createScoringModel", q, json!({})).await;
    let landing = "https://www.example.com/hydraulics?utm_campaign=wp-hydraulics&utm_source=linkedin&li_fat_id=abc";
    let batch = json!({
        "k": key, "v": VISITOR, "l": landing, "r": "https://www.linkedin.com/feed/",
        "e": [
            { "n": "page_view", "id": "e1", "u": landing },
            { "n": "download", "id": "e2", "u": "https://www.example.com/wp.pdf" },
            { "n": "newsletter_signup_view", "id": "e3", "u": "https://www.example.com/news" },
        ]
    });
    let (status, body) = post(&app, "/t/e", batch.clone(), &[]).await;
    assert_eq!((status, &body["accepted"]), (202, &json!(3)), "{body}");
    // The same batch again (the script retried): counts once.
    assert_eq!(post(&app, "/t/e", batch.clone(), &[]).await.0, 202);
    processed(&app, &app.keys.analyst, 6).await;
    let stored = scalar(&app.db, "SELECT COUNT(*) FROM tracked_hits").await;
    assert_eq!(stored, 3, "a resend in the same batch or the next counts once");
    // And once more after they were processed: the stored hits already have those IDs.
    assert_eq!(post(&app, "/t/e", batch, &[]).await.0, 202);
    processed(&app, &app.keys.analyst, 9).await;
    assert_eq!(scalar(&app.db, "SELECT COUNT(*) FROM tracked_hits").await, 3);
    // A page view under a code no campaign has: kept and reported.
    let other = json!({ "k": key, "v": VISITOR, "l": "https://www.example.com/?utm_campaign=spring-fair", "e": [{ "n": "page_view", "id": "e4" }] });
    assert_eq!(post(&app, "/t/e", other, &[]).await.0, 202);
    let s = processed(&app, &app.keys.analyst, 10).await;
    assert_eq!(s["unknownCampaignCodes"], json!([{ "code": "spring-fair", "hits": 1 }]));
    assert_eq!(s["rejected"], 0);
    let none = app
        .data(
            &app.keys.analyst,
            "{ leads(first: 5, filter: { search: \"nina\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(none["leads"]["totalCount"], 0, "an anonymous visitor is no lead");

    // The form: the lead is made, and the visitor's history is its own.
    let form = json!({
        "k": key, "v": VISITOR, "email": "Nina.Neu@Example.org", "l": landing,
        "fields": { "firstName": "Nina", "lastName": "Neu", "jobTitle": "Head of Production", "password": "ignored" },
        "u": "https://www.example.com/contact"
    });
    let (status, body) = post(&app, "/t/identify", form, &[]).await;
    assert_eq!((status, &body["accepted"]), (202, &json!(1)), "{body}");
    processed(&app, &app.keys.analyst, 11).await;
    let q = "{ leads(first: 5, filter: { search: \"nina\" }) { nodes { id email firstName jobTitle score { activityScore } } } }";
    let leads = app.data(&app.keys.analyst, q, json!({})).await;
    let nina = &leads["leads"]["nodes"][0];
    assert_eq!(
        (&nina["email"], &nina["firstName"]),
        (&json!("nina.neu@example.org"), &json!("Nina"))
    );
    assert_eq!(nina["jobTitle"], "Head of Production");
    assert!(nina["score"]["activityScore"].as_f64().unwrap() > 0.0, "re-scored: {nina}");
    let wp = Some("Whitepaper hydraulics".to_owned());
    assert_eq!(
        touchpoints_of(&app, nina["id"].as_str().unwrap()).await,
        vec![
            ("FORM_SUBMIT".to_owned(), wp.clone()),
            ("PAGE_VIEW".to_owned(), None),
            ("PAGE_VIEW".to_owned(), wp.clone()),
            ("WHITEPAPER_DOWNLOAD".to_owned(), wp.clone()),
        ],
        "newsletter_signup_view is no touchpoint type: kept as a hit only"
    );
    let counts = app
        .data(
            &app.keys.analyst,
            "query($c: ID!) { campaign(id: $c) { touchpointCount } }",
            json!({ "c": campaign }),
        )
        .await;
    assert_eq!(counts["campaign"]["touchpointCount"], 3);

    // Later hits of the identified visitor are the lead's at once.
    let later = json!({ "k": key, "v": VISITOR, "e": [{ "n": "page_view", "id": "e9", "u": "https://www.example.com/pricing" }] });
    assert_eq!(post(&app, "/t/e", later, &[]).await.0, 202);
    processed(&app, &app.keys.analyst, 12).await;
    assert_eq!(touchpoints_of(&app, nina["id"].as_str().unwrap()).await.len(), 5);

    // A backend identifies a second device of the same lead.
    let m =
        "mutation($i: IdentifyVisitorInput!) { identifyVisitor(input: $i) { lead { id } stitchedTouchpoints userErrors { field code } } }";
    let second = "v1_second-device-0000000000";
    let hit = json!({ "k": key, "v": second, "l": landing, "e": [{ "n": "page_view", "id": "p1" }] });
    assert_eq!(post(&app, "/t/e", hit, &[]).await.0, 202);
    processed(&app, &app.keys.analyst, 13).await;
    let p = app
        .mutate(
            &app.keys.marketing,
            "identifyVisitor",
            m,
            json!({ "i": { "visitorId": second, "leadId": nina["id"] } }),
        )
        .await;
    assert_eq!((&p["lead"]["id"], &p["stitchedTouchpoints"]), (&nina["id"], &json!(1)), "{p}");
    assert_eq!(touchpoints_of(&app, nina["id"].as_str().unwrap()).await.len(), 6);
    let bad = data_of(
        app.gql(
            &app.keys.marketing,
            m,
            json!({ "i": { "visitorId": "short", "email": "not-an-email" } }),
        )
        .await,
    )["identifyVisitor"]
        .clone();
    let mut fields: Vec<String> = user_errors(&bad).into_iter().map(|(f, _)| f).collect();
    fields.sort();
    assert_eq!(fields, vec!["input.email", "input.visitorId"]);
    let r = app
        .gql(&app.keys.analyst, m, json!({ "i": { "visitorId": second, "leadId": nina["id"] } }))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");

    // Erasure takes the lead's visitors and their hits along.
    let count = |sql: &'static str| crate::helpers::scalar(&app.db, sql);
    assert_eq!(count("SELECT COUNT(*) FROM visitors").await, 2);
    let erase = "mutation($id: ID!) { eraseLead(input: { id: $id }) { lead { id } userErrors { code } } }";
    app.mutate(&app.keys.admin, "eraseLead", erase, json!({ "id": nina["id"] })).await;
    assert_eq!(count("SELECT COUNT(*) FROM visitors").await, 0);
    let left = count("SELECT COUNT(*) FROM tracked_hits WHERE visitor_id IS NOT NULL OR lead_id IS NOT NULL").await;
    assert_eq!(left, 0, "no hit of hers is left");
}
both!(a_visitor_is_stitched_to_its_lead_with_its_earlier_touches, jetstream);

async fn privacy_signals_bots_and_abuse_are_honoured(app: TestApp) {
    let key = site_key(&app, &app.keys.analyst).await;
    app.campaign(json!({ "name": "Fair", "channel": "TRADE_FAIR", "kind": "ACQUISITION", "trackingCode": "fair" }))
        .await;
    let landing = "https://www.example.com/?utm_campaign=fair&email=someone@example.com";
    // Do Not Track (header) and Global Privacy Control (the script's flag): nothing personal.
    let dnt = json!({ "k": key, "v": VISITOR, "l": landing, "e": [{ "n": "page_view", "id": "d1", "u": landing }] });
    let (status, body) = post(&app, "/t/e", dnt, &[("DNT", "1")]).await;
    assert_eq!((status, &body["optedOut"]), (202, &json!(true)));
    let gpc = json!({ "k": key, "v": VISITOR, "email": "ada@example.com", "dnt": true });
    let (status, body) = post(&app, "/t/identify", gpc, &[]).await;
    assert_eq!((status, &body["accepted"], &body["optedOut"]), (202, &json!(0), &json!(true)));
    let (status, _) = post(
        &app,
        "/t/identify",
        json!({ "k": key, "v": VISITOR, "email": "ada@example.com" }),
        &[("Sec-GPC", "1")],
    )
    .await;
    assert_eq!(status, 202);
    processed(&app, &app.keys.analyst, 1).await;
    let leads = app.data(&app.keys.analyst, "{ leads(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(leads["leads"]["totalCount"], 0, "an opted-out form makes no lead");

    // A bot's page view is flagged, and its form refused.
    let bot = app
        .client
        .post(app.url("/t/e"))
        .header("User-Agent", "Googlebot/2.1 (+http://www.google.com/bot.html)")
        .body(json!({ "k": key, "v": "v1_bot-visitor-000000000", "e": [{ "n": "page_view" }] }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bot.status(), 202);
    let bot_form = app
        .client
        .post(app.url("/t/identify"))
        .header("User-Agent", "curl/8.5.0")
        .body(json!({ "k": key, "v": "v1_bot-visitor-000000000", "email": "spam@example.com" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bot_form.status(), 202);
    // An event naming another workspace's campaign is refused by the processor.
    let foreign = app
        .mutate(
            &app.other.marketing,
            "createCampaign",
            "mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { campaign { id } userErrors { code } } }",
            json!({ "i": { "name": "Globex fair", "channel": "TRADE_FAIR", "kind": "ACQUISITION" } }),
        )
        .await["campaign"]["id"]
        .clone();
    let cross = json!({ "k": key, "v": VISITOR, "e": [{ "n": "page_view", "c": foreign }] });
    assert_eq!(post(&app, "/t/e", cross, &[]).await.0, 202);
    let s = processed(&app, &app.keys.analyst, 4).await;
    assert_eq!(s["rejected"], 2, "the bot's form and the foreign campaign: {s}");
    let leads = app.data(&app.keys.analyst, "{ leads(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(leads["leads"]["totalCount"], 0);

    // An inbox row that is no hit (written by hand, say) is dropped and counted as rejected;
    // the hits after it are processed.
    use sea_orm::ConnectionTrait;
    app.db
        .conn
        .execute_unprepared(
            "INSERT INTO ingest_inbox (workspace_id, received_at, body) \
             SELECT id, '2026-12-07T10:00:00Z', 'not a hit' FROM workspaces WHERE name = 'Acme'",
        )
        .await
        .unwrap();
    let after = json!({ "k": key, "e": [{ "n": "page_view" }] });
    assert_eq!(post(&app, "/t/e", after, &[]).await.0, 202);
    let s = processed(&app, &app.keys.analyst, 6).await;
    assert_eq!((&s["acknowledged"], &s["rejected"]), (&json!(6), &json!(3)), "{s}");

    // Refusals, each with a code: an unknown site key, a body too large, too many events, a
    // malformed visitor ID; and a flood from one visitor is limited.
    let (status, body) = post(&app, "/t/e", json!({ "k": "cls_nope", "e": [{ "n": "x" }] }), &[]).await;
    assert_eq!((status, error_code(&body)), (401, "UNAUTHENTICATED".to_owned()));
    let big = json!({ "k": key, "e": [{ "n": "page_view", "u": "x".repeat(70_000) }] });
    assert_eq!(post(&app, "/t/e", big, &[]).await.0, 413);
    let many: Vec<Value> = (0..51).map(|_| json!({ "n": "page_view" })).collect();
    let (status, body) = post(&app, "/t/e", json!({ "k": key, "e": many }), &[]).await;
    assert_eq!((status, error_code(&body)), (400, "BAD_USER_INPUT".to_owned()));
    let (status, _) = post(&app, "/t/e", json!({ "k": key, "v": "bad id", "e": [{ "n": "x" }] }), &[]).await;
    assert_eq!(status, 400);
    let mut limited = 0;
    for i in 0..60 {
        let hit = json!({ "k": key, "v": "v1_flooding-visitor-00000", "e": [{ "n": "page_view", "id": format!("f{i}") }] });
        if post(&app, "/t/e", hit, &[]).await.0 == 429 {
            limited += 1;
        }
    }
    assert!(limited > 0, "a visitor sending 60 hits at once is limited");

    // A rotated site key stops working; the new one works.
    let rotated = app
        .data(
            &app.keys.admin,
            "mutation { rotateSiteKey { trackingSettings { siteKey } } }",
            json!({}),
        )
        .await["rotateSiteKey"]["trackingSettings"]["siteKey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, key);
    let (status, _) = post(&app, "/t/e", json!({ "k": key, "e": [{ "n": "page_view" }] }), &[]).await;
    assert_eq!(status, 401);
    let (status, _) = post(&app, "/t/e", json!({ "k": rotated, "e": [{ "n": "page_view" }] }), &[]).await;
    assert_eq!(status, 202);
    // /metrics counts the hits by outcome, and those processed.
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    assert!(value("closedloop_tracking_hits_total{outcome=\"acknowledged\"}") >= 6.0);
    assert!(value("closedloop_tracking_hits_total{outcome=\"dropped\"}") >= 1.0, "the flood");
    assert!(
        value("closedloop_tracking_hits_total{outcome=\"refused\"}") >= 4.0,
        "site key, size, count, visitor ID"
    );
    assert!(value("closedloop_tracking_hits_processed_total") >= 6.0);

    // The script is served, small and self-contained.
    let js = app.client.get(app.url("/t/closedloop.js")).send().await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    let text = js.text().await.unwrap();
    assert!(text.len() < 5 * 1024, "{} bytes", text.len());
    assert!(!text.contains("http://") && !text.contains("https://cdn"), "no external dependency");
}
both!(privacy_signals_bots_and_abuse_are_honoured);

/// docs/kpis.md, Site visitors: the example computed by hand.
async fn visitors_and_sessions_are_counted_by_hand(app: TestApp) {
    use entity::{tracked_hit, visitor};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let campaign = app
        .campaign(json!({ "name": "Fair", "channel": "TRADE_FAIR", "kind": "ACQUISITION", "trackingCode": "fair" }))
        .await;
    let campaign_id = crate::helpers::decode_id(&campaign);
    let ada = crate::helpers::decode_id(&app.lead("ada@example.com").await);
    let ws = crate::helpers::scalar(&app.db, "SELECT id FROM workspaces WHERE name = 'Acme'").await;
    let at = |h: u32, m: u32| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 1, h, m, 0).unwrap();
    let mut ids = Vec::new();
    for (uid, lead) in [("v1_visitor-a-000000000000", None), ("v1_visitor-b-000000000000", Some(ada))] {
        let v = visitor::ActiveModel {
            workspace_id: Set(ws),
            uid: Set(uid.into()),
            lead_id: Set(lead),
            bot: Set(false),
            first_seen_at: Set(at(10, 0)),
            last_seen_at: Set(at(11, 0)),
            identified_at: Set(lead.map(|_| at(12, 0))),
            ..Default::default()
        }
        .insert(&app.db.conn)
        .await
        .unwrap();
        ids.push(v.id);
    }
    // A at 10:00, 10:20, 11:00; B at 10:05; a bot's hit and another campaign's do not count.
    for (visitor, time, bot, on_campaign) in [
        (ids[0], at(10, 0), false, true),
        (ids[0], at(10, 20), false, true),
        (ids[0], at(11, 0), false, true),
        (ids[1], at(10, 5), false, true),
        (ids[1], at(10, 6), true, true),
        (ids[1], at(10, 7), false, false),
    ] {
        tracked_hit::ActiveModel {
            workspace_id: Set(ws),
            visitor_id: Set(Some(visitor)),
            lead_id: Set(None),
            campaign_id: Set(on_campaign.then_some(campaign_id)),
            link_id: Set(None),
            touch_type: Set("PAGE_VIEW".into()),
            event_id: Set(None),
            campaign_code: Set(None),
            machine: Set(false),
            bot: Set(bot),
            url: Set(None),
            referrer: Set(None),
            params: Set(None),
            occurred_at: Set(time),
            received_at: Set(time),
            created_at: Set(time),
            ..Default::default()
        }
        .insert(&app.db.conn)
        .await
        .unwrap();
    }
    let q = "query($c: ID!) { campaign(id: $c) { performance(range: { from: \"2026-03-01T00:00:00Z\", to: \"2026-03-02T00:00:00Z\" }) { visitors anonymousVisitors sessions } } }";
    let d = app.data(&app.keys.analyst, q, json!({ "c": campaign })).await;
    assert_eq!(
        d["campaign"]["performance"],
        json!({ "visitors": 2, "anonymousVisitors": 1, "sessions": 3 })
    );
}
both!(visitors_and_sessions_are_counted_by_hand, jetstream);
