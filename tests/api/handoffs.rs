//! The funnel and the handoff loop: stage history, the state machine, routing, concurrency,
//! roles and workspaces.
use serde_json::{Value, json};

use crate::helpers::{TestApp, data_of, error_code, id_of, user_errors};

const HANDOFF_FIELDS: &str = "handoff { id status owner { name } note reasonCode feedback lead { id stage { key } owner { name } } timeToFirstResponseSeconds } event { cursor seq kind fromStageKey toStageKey reasonCode feedback } userErrors { field message code }";

async fn hand_off(app: &TestApp, key: &str, lead: &str) -> Value {
    let q = format!("mutation($input: HandOffLeadInput!) {{ handOffLead(input: $input) {{ {HANDOFF_FIELDS} }} }}");
    app.data(key, &q, json!({ "input": { "leadId": lead, "note": "asked for a quote" } }))
        .await["handOffLead"]
        .clone()
}

async fn answer(app: &TestApp, key: &str, field: &str, input: Value) -> Value {
    let input_type = format!("{}{}Input", field[..1].to_uppercase(), &field[1..]);
    let q = format!("mutation($input: {input_type}!) {{ {field}(input: $input) {{ {HANDOFF_FIELDS} }} }}");
    app.data(key, &q, json!({ "input": input })).await[field].clone()
}

async fn default_owner(app: &TestApp, user: &str) {
    let q = "mutation($input: SetRoutingRulesInput!) { setRoutingRules(input: $input) { routing { defaultOwner { name } } userErrors { field message code } } }";
    app.mutate(
        &app.keys.admin,
        "setRoutingRules",
        q,
        json!({ "input": { "rules": [], "defaultOwnerId": user } }),
    )
    .await;
}

async fn history(app: &TestApp, lead: &str) -> Vec<(Option<String>, String, String)> {
    let q = "query($id: ID!) { node(id: $id) { ... on Lead { stageHistory(first: 50) { totalCount nodes { fromStage { key } toStage { key } actor reason } } } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": lead })).await;
    data["node"]["stageHistory"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["fromStage"]["key"].as_str().map(str::to_owned),
                n["toStage"]["key"].as_str().unwrap().to_owned(),
                n["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn stages(h: &[(Option<String>, String, String)]) -> Vec<String> {
    h.iter().map(|(_, to, _)| to.clone()).collect()
}

async fn the_whole_loop_writes_history_and_events(app: TestApp) {
    let sam = app.user("Sam Sales", "sam@acme.test").await;
    default_owner(&app, &sam).await;

    // Accepted: LEAD -> MQL -> SQL, and Sam owns the lead.
    let ada = app.lead("ada@example.com").await;
    let created = hand_off(&app, &app.keys.marketing, &ada).await;
    assert_eq!(user_errors(&created), vec![]);
    assert_eq!(created["handoff"]["status"], "PENDING");
    assert_eq!(created["handoff"]["owner"]["name"], "Sam Sales");
    assert_eq!(created["handoff"]["lead"]["stage"]["key"], "MQL");
    assert_eq!(created["handoff"]["timeToFirstResponseSeconds"], Value::Null);
    assert_eq!(
        created["event"],
        json!({ "cursor": created["event"]["cursor"], "seq": 1, "kind": "CREATED", "fromStageKey": "LEAD", "toStageKey": "MQL", "reasonCode": null, "feedback": null })
    );
    let handoff = id_of(&created["handoff"]);
    let accepted = answer(&app, &app.keys.sales, "acceptHandoff", json!({ "id": handoff })).await;
    assert_eq!(user_errors(&accepted), vec![]);
    assert_eq!(accepted["handoff"]["status"], "ACCEPTED");
    assert_eq!(accepted["handoff"]["lead"]["stage"]["key"], "SQL");
    assert_eq!(accepted["handoff"]["lead"]["owner"]["name"], "Sam Sales");
    assert!(accepted["handoff"]["timeToFirstResponseSeconds"].as_i64().unwrap() >= 0);
    assert_eq!(accepted["event"]["seq"], 2);
    assert_eq!(accepted["event"]["kind"], "ACCEPTED");
    assert_eq!(stages(&history(&app, &ada).await), ["LEAD", "MQL", "SQL"]);

    // A second answer is refused and changes nothing.
    let again = answer(
        &app,
        &app.keys.sales,
        "rejectHandoff",
        json!({ "id": handoff, "reasonCode": "NO_NEED" }),
    )
    .await;
    assert_eq!(user_errors(&again), vec![("input.id".into(), "NOT_PENDING".into())]);
    assert_eq!(stages(&history(&app, &ada).await), ["LEAD", "MQL", "SQL"]);

    // Rejected: a reason code of the workspace is required.
    let bob = app.lead("bob@example.com").await;
    let h = id_of(&hand_off(&app, &app.keys.marketing, &bob).await["handoff"]);
    let bad = answer(
        &app,
        &app.keys.sales,
        "rejectHandoff",
        json!({ "id": h, "reasonCode": "TOO_SMALL" }),
    )
    .await;
    assert_eq!(user_errors(&bad), vec![("input.reasonCode".into(), "INVALID".into())]);
    let rejected = answer(
        &app,
        &app.keys.sales,
        "rejectHandoff",
        json!({ "id": h, "reasonCode": "no budget", "comment": "budget frozen until Q3" }),
    )
    .await;
    assert_eq!(user_errors(&rejected), vec![]);
    assert_eq!(rejected["handoff"]["reasonCode"], "NO_BUDGET");
    assert_eq!(rejected["handoff"]["feedback"], "budget frozen until Q3");
    assert_eq!(rejected["event"]["reasonCode"], "NO_BUDGET");
    let bob_history = history(&app, &bob).await;
    assert_eq!(stages(&bob_history), ["LEAD", "MQL", "DISQUALIFIED"]);
    assert_eq!(bob_history[2].2, "handoff rejected: NO_BUDGET");

    // Recycled: feedback is required; the lead goes back to Nurture and can be handed off again.
    let cy = app.lead("cy@example.com").await;
    let h = id_of(&hand_off(&app, &app.keys.marketing, &cy).await["handoff"]);
    let bad = answer(&app, &app.keys.sales, "recycleHandoff", json!({ "id": h, "feedback": "  " })).await;
    assert_eq!(user_errors(&bad), vec![("input.feedback".into(), "REQUIRED".into())]);
    let recycled = answer(
        &app,
        &app.keys.sales,
        "recycleHandoff",
        json!({ "id": h, "feedback": "not before the trade fair", "nurtureUntil": "2099-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(user_errors(&recycled), vec![]);
    assert_eq!(recycled["handoff"]["lead"]["stage"]["key"], "NURTURE");
    assert_eq!(recycled["event"]["kind"], "RECYCLED");
    let again = hand_off(&app, &app.keys.marketing, &cy).await;
    assert_eq!(user_errors(&again), vec![]);
    assert_eq!(again["event"]["fromStageKey"], "NURTURE");
    assert_eq!(stages(&history(&app, &cy).await), ["LEAD", "MQL", "NURTURE", "MQL"]);

    // Sequence numbers run 1..n without gaps over the whole workspace.
    let log = app
        .data(&app.keys.analyst, "{ handoffEventLog(first: 50) { seq kind } }", json!({}))
        .await;
    let seqs: Vec<i64> = log["handoffEventLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());

    // The stats of the range count each outcome.
    let q = "query($r: DateTimeRangeInput!) { handoffStats(range: $r) { total pending accepted rejected recycled rejectedByReason { code count } medianTimeToAcceptSeconds withSla slaBreaches } }";
    let stats = app
        .data(
            &app.keys.analyst,
            q,
            json!({ "r": { "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z" } }),
        )
        .await;
    let s = &stats["handoffStats"];
    assert_eq!(
        (s["total"].as_i64(), s["pending"].as_i64(), s["accepted"].as_i64()),
        (Some(4), Some(1), Some(1))
    );
    assert_eq!((s["rejected"].as_i64(), s["recycled"].as_i64()), (Some(1), Some(1)));
    assert_eq!(s["rejectedByReason"], json!([{ "code": "NO_BUDGET", "count": 1 }]));
    assert!(s["medianTimeToAcceptSeconds"].as_i64().is_some());
    assert_eq!(s["withSla"], 0);
}
both!(the_whole_loop_writes_history_and_events);

async fn only_the_right_roles_take_each_step(app: TestApp) {
    let lead = app.lead("roles@example.com").await;
    let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { id } } }";
    for key in [&app.keys.sales, &app.keys.analyst] {
        let resp = app.gql(key, q, json!({ "input": { "leadId": lead } })).await;
        assert_eq!(error_code(&resp), "FORBIDDEN");
    }
    let h = id_of(&hand_off(&app, &app.keys.marketing, &lead).await["handoff"]);
    let accept = "mutation($input: AcceptHandoffInput!) { acceptHandoff(input: $input) { handoff { id } } }";
    for key in [&app.keys.marketing, &app.keys.analyst] {
        let resp = app.gql(key, accept, json!({ "input": { "id": h } })).await;
        assert_eq!(error_code(&resp), "FORBIDDEN");
    }
    // Another workspace's keys find nothing: not the handoff, not the lead.
    let resp = app.gql(&app.other.sales, accept, json!({ "input": { "id": h } })).await;
    assert_eq!(error_code(&resp), "NOT_FOUND");
    let resp = app.gql(&app.other.admin, q, json!({ "input": { "leadId": lead } })).await;
    assert_eq!(error_code(&resp), "NOT_FOUND");
    let seen = app
        .data(
            &app.other.admin,
            "query($id: ID!) { node(id: $id) { id } handoffs(first: 10) { totalCount } }",
            json!({ "id": h }),
        )
        .await;
    assert_eq!(seen, json!({ "node": null, "handoffs": { "totalCount": 0 } }));
    // Unchanged: still pending in Acme.
    let mine = app
        .data(
            &app.keys.analyst,
            "query($id: ID!) { handoff(id: $id) { status } }",
            json!({ "id": h }),
        )
        .await;
    assert_eq!(mine["handoff"]["status"], "PENDING");
}
both!(only_the_right_roles_take_each_step);

async fn a_sales_key_made_for_a_user_answers_only_that_users_handoffs(app: TestApp) {
    let ann = app.user("Ann", "ann@acme.test").await;
    app.user("Ben", "ben@acme.test").await;
    default_owner(&app, &ann).await;
    let (ben_key, _) = closedloop::service::workspace::create_key(
        &app.db,
        "Acme",
        closedloop::domain::vocab::Role::Sales,
        "ben's key",
        Some("ben@acme.test"),
    )
    .await
    .unwrap();
    let lead = app.lead("owned@example.com").await;
    let h = id_of(&hand_off(&app, &app.keys.marketing, &lead).await["handoff"]);
    let accept = "mutation($input: AcceptHandoffInput!) { acceptHandoff(input: $input) { handoff { id } } }";
    // Ann's handoff does not exist for Ben's key (as another workspace's does not).
    let resp = app.gql(&ben_key, accept, json!({ "input": { "id": h } })).await;
    assert_eq!(error_code(&resp), "NOT_FOUND");
    // Ann reassigns it to Ben; now Ben's key may answer.
    let ben = app
        .data(&app.keys.admin, "{ users(first: 10) { nodes { id name } } }", json!({}))
        .await["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Ben")
        .map(id_of)
        .unwrap();
    let moved = answer(&app, &app.keys.sales, "reassignHandoff", json!({ "id": h, "ownerId": ben })).await;
    assert_eq!(user_errors(&moved), vec![]);
    assert_eq!(moved["handoff"]["owner"]["name"], "Ben");
    assert_eq!(moved["event"]["kind"], "REASSIGNED");
    let resp = app.gql(&ben_key, accept, json!({ "input": { "id": h } })).await;
    assert_eq!(data_of(resp)["acceptHandoff"]["handoff"]["id"], h);
}
both!(a_sales_key_made_for_a_user_answers_only_that_users_handoffs);

async fn concurrent_handoffs_of_one_lead_give_one_handoff_and_one_conflict(app: TestApp) {
    for round in 0..5 {
        let lead = app.lead(&format!("race{round}@example.com")).await;
        let (a, b) = tokio::join!(
            hand_off(&app, &app.keys.marketing, &lead),
            hand_off(&app, &app.keys.marketing, &lead)
        );
        let made: Vec<&Value> = [&a, &b].into_iter().filter(|p| !p["handoff"].is_null()).collect();
        let refused: Vec<Vec<(String, String)>> = [&a, &b].into_iter().filter(|p| p["handoff"].is_null()).map(user_errors).collect();
        assert_eq!(made.len(), 1, "{a:#} {b:#}");
        assert_eq!(refused, vec![vec![("input.leadId".to_owned(), "CONFLICT".to_owned())]]);
        let q = "query($lead: ID!) { handoffs(first: 10, filter: { leadId: $lead }) { totalCount } node(id: $lead) { ... on Lead { stageHistory(first: 10) { totalCount } } } }";
        let seen = app.data(&app.keys.analyst, q, json!({ "lead": lead })).await;
        assert_eq!(seen["handoffs"]["totalCount"], 1);
        // Created in LEAD, then one move to MQL.
        assert_eq!(seen["node"]["stageHistory"]["totalCount"], 2);
    }
}
both!(concurrent_handoffs_of_one_lead_give_one_handoff_and_one_conflict);

async fn routing_rules_pick_the_owner_first_match_wins(app: TestApp) {
    let claire = app.user("Claire", "claire@acme.test").await;
    let dora = app.user("Dora", "dora@acme.test").await;
    let emil = app.user("Emil", "emil@acme.test").await;
    let q = "mutation($input: SetRoutingRulesInput!) { setRoutingRules(input: $input) { routing { rules { name countries owners { name } } defaultOwner { name } } userErrors { field message code } } }";
    let bad = app
        .data(
            &app.keys.admin,
            q,
            json!({ "input": { "rules": [{ "name": "France", "countries": ["FRA"], "userIds": [] }] } }),
        )
        .await["setRoutingRules"]
        .clone();
    assert_eq!(
        user_errors(&bad),
        vec![
            ("input.rules.0.countries".into(), "INVALID".into()),
            ("input.rules.0.userIds".into(), "REQUIRED".into())
        ]
    );
    let input = json!({ "rules": [
        { "name": "France", "countries": ["fr"], "userIds": [claire] },
        { "name": "DACH round-robin", "countries": ["DE", "AT", "CH"], "userIds": [dora, emil] },
    ], "defaultOwnerId": claire });
    let set = app.mutate(&app.keys.admin, "setRoutingRules", q, json!({ "input": input })).await;
    assert_eq!(set["routing"]["rules"][0]["countries"], json!(["FR"]));
    assert_eq!(
        set["routing"]["rules"][1]["owners"],
        json!([{ "name": "Dora" }, { "name": "Emil" }])
    );
    let resp = app.gql(&app.keys.marketing, q, json!({ "input": input })).await;
    assert_eq!(error_code(&resp), "FORBIDDEN");

    let mut owners = Vec::new();
    for (i, country) in ["FR", "DE", "AT", "DE", "US"].iter().enumerate() {
        let lead = id_of(
            &app.upsert_lead(json!({ "email": format!("r{i}@example.com"), "country": country }))
                .await,
        );
        let made = hand_off(&app, &app.keys.marketing, &lead).await;
        owners.push(made["handoff"]["owner"]["name"].as_str().unwrap().to_owned());
    }
    assert_eq!(owners, ["Claire", "Dora", "Emil", "Dora", "Claire"]);
}
both!(routing_rules_pick_the_owner_first_match_wins);

async fn manual_moves_are_validated_and_logged(app: TestApp) {
    let lead = app.lead("move@example.com").await;
    let funnel = app
        .data(&app.keys.analyst, "{ funnelStages(first: 20) { nodes { id key } } }", json!({}))
        .await;
    let stage = |key: &str| {
        funnel["funnelStages"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .map(id_of)
            .unwrap()
    };
    let other = app
        .data(&app.other.analyst, "{ funnelStages(first: 20) { nodes { id key } } }", json!({}))
        .await["funnelStages"]["nodes"][1]
        .clone();
    let q = "mutation($input: MoveLeadToStageInput!) { moveLeadToStage(input: $input) { lead { stage { key } } userErrors { field message code } } }";
    let mv = |stage_id: String, reason: &'static str| {
        let lead = lead.clone();
        let app = &app;
        async move {
            app.data(
                &app.keys.sales,
                q,
                json!({ "input": { "leadId": lead, "stageId": stage_id, "reason": reason } }),
            )
            .await["moveLeadToStage"]
                .clone()
        }
    };
    assert_eq!(
        user_errors(&mv(stage("LEAD"), "x").await),
        vec![("input.stageId".into(), "NO_CHANGE".into())]
    );
    assert_eq!(
        user_errors(&mv(id_of(&other), "x").await),
        vec![("input.stageId".into(), "NOT_FOUND".into())]
    );
    assert_eq!(mv(stage("SQL"), "met at the fair").await["lead"]["stage"]["key"], "SQL");
    // Backward moves are allowed and logged.
    assert_eq!(mv(stage("NURTURE"), "not ready").await["lead"]["stage"]["key"], "NURTURE");
    let h = history(&app, &lead).await;
    assert_eq!(stages(&h), ["LEAD", "SQL", "NURTURE"]);
    assert_eq!(h[1], (Some("LEAD".into()), "SQL".into(), "met at the fair".into()));
    // With a pending handoff the lead moves through the handoff.
    hand_off(&app, &app.keys.marketing, &lead).await;
    assert_eq!(
        user_errors(&mv(stage("LEAD"), "x").await),
        vec![("input.leadId".into(), "HANDOFF_OPEN".into())]
    );
    let resp = app
        .gql(
            &app.keys.analyst,
            q,
            json!({ "input": { "leadId": lead, "stageId": stage("LEAD") } }),
        )
        .await;
    assert_eq!(error_code(&resp), "FORBIDDEN");
}
both!(manual_moves_are_validated_and_logged);

async fn stage_at_answers_for_any_past_moment(app: TestApp) {
    let lead = app.lead("past@example.com").await;
    let before = app
        .data(
            &app.keys.analyst,
            "query($id: ID!) { node(id: $id) { ... on Lead { createdAt } } }",
            json!({ "id": lead }),
        )
        .await["node"]["createdAt"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    hand_off(&app, &app.keys.marketing, &lead).await;
    let q = "query($id: ID!, $t: DateTime!) { node(id: $id) { ... on Lead { now: stageAt(at: \"2100-01-01T00:00:00Z\") { key } then: stageAt(at: $t) { key } never: stageAt(at: \"2000-01-01T00:00:00Z\") { key } } } }";
    let seen = app.data(&app.keys.analyst, q, json!({ "id": lead, "t": before })).await;
    assert_eq!(
        seen["node"],
        json!({ "now": { "key": "MQL" }, "then": { "key": "LEAD" }, "never": null })
    );
}
both!(stage_at_answers_for_any_past_moment);

async fn admins_edit_the_funnel_but_not_what_is_in_use(app: TestApp) {
    let create = "mutation($input: CreateFunnelStageInput!) { createFunnelStage(input: $input) { stage { id key position slaHours kind } userErrors { field message code } } }";
    let made = app
        .mutate(
            &app.keys.admin,
            "createFunnelStage",
            create,
            json!({ "input": { "key": "demo booked", "name": "Demo booked", "kind": "SUCCESS", "position": 3, "slaHours": 24 } }),
        )
        .await;
    assert_eq!(made["stage"]["key"], "DEMO_BOOKED");
    assert_eq!(made["stage"]["position"], 3);
    let demo = id_of(&made["stage"]);
    let dup = app
        .data(
            &app.keys.admin,
            create,
            json!({ "input": { "key": "MQL", "name": "Again", "kind": "SIDE" } }),
        )
        .await;
    assert_eq!(user_errors(&dup["createFunnelStage"]), vec![("input.key".into(), "TAKEN".into())]);
    let resp = app
        .gql(
            &app.keys.marketing,
            create,
            json!({ "input": { "key": "X", "name": "X", "kind": "SIDE" } }),
        )
        .await;
    assert_eq!(error_code(&resp), "FORBIDDEN");

    let keys = |v: &Value| -> Vec<String> {
        v["funnelStages"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let funnel = app
        .data(&app.keys.analyst, "{ funnelStages(first: 20) { nodes { id key } } }", json!({}))
        .await;
    assert_eq!(
        keys(&funnel),
        [
            "LEAD",
            "MQL",
            "SQL",
            "DEMO_BOOKED",
            "OPPORTUNITY",
            "CUSTOMER",
            "NURTURE",
            "DISQUALIFIED"
        ]
    );

    // Reorder: every stage once.
    let mut ids: Vec<String> = funnel["funnelStages"]["nodes"].as_array().unwrap().iter().map(id_of).collect();
    let reorder = "mutation($input: ReorderFunnelStagesInput!) { reorderFunnelStages(input: $input) { stages { key } userErrors { field message code } } }";
    let short = app
        .data(&app.keys.admin, reorder, json!({ "input": { "stageIds": ids[1..].to_vec() } }))
        .await;
    assert_eq!(
        user_errors(&short["reorderFunnelStages"]),
        vec![("input.stageIds".into(), "INVALID".into())]
    );
    ids.swap(6, 7);
    app.mutate(
        &app.keys.admin,
        "reorderFunnelStages",
        reorder,
        json!({ "input": { "stageIds": ids } }),
    )
    .await;
    let funnel = app
        .data(&app.keys.analyst, "{ funnelStages(first: 20) { nodes { id key } } }", json!({}))
        .await;
    assert_eq!(keys(&funnel)[6..], ["DISQUALIFIED", "NURTURE"]);

    // The MQL SLA sets each new handoff's deadline.
    let mql = funnel["funnelStages"]["nodes"][1]["id"].clone();
    let update = "mutation($input: UpdateFunnelStageInput!) { updateFunnelStage(input: $input) { stage { slaHours kind } userErrors { field message code } } }";
    let sla = app
        .mutate(
            &app.keys.admin,
            "updateFunnelStage",
            update,
            json!({ "input": { "id": mql, "slaHours": 48 } }),
        )
        .await;
    assert_eq!(sla["stage"]["slaHours"], 48);
    let kind = app
        .data(&app.keys.admin, update, json!({ "input": { "id": mql, "kind": "SIDE" } }))
        .await;
    assert_eq!(
        user_errors(&kind["updateFunnelStage"]),
        vec![("input.success".into(), "BUILT_IN".into())]
    );

    // Deleting: built-in and used stages stay, an unused one goes.
    let delete = "mutation($input: DeleteFunnelStageInput!) { deleteFunnelStage(input: $input) { stage { key } userErrors { field message code } } }";
    let builtin = app.data(&app.keys.admin, delete, json!({ "input": { "id": mql } })).await;
    assert_eq!(
        user_errors(&builtin["deleteFunnelStage"]),
        vec![("input.id".into(), "BUILT_IN".into())]
    );
    let lead = app.lead("demo@example.com").await;
    let mv = "mutation($input: MoveLeadToStageInput!) { moveLeadToStage(input: $input) { userErrors { field message code } } }";
    app.mutate(
        &app.keys.sales,
        "moveLeadToStage",
        mv,
        json!({ "input": { "leadId": lead, "stageId": demo } }),
    )
    .await;
    let used = app.data(&app.keys.admin, delete, json!({ "input": { "id": demo } })).await;
    assert_eq!(user_errors(&used["deleteFunnelStage"]), vec![("input.id".into(), "IN_USE".into())]);
    let spare = app
        .mutate(
            &app.keys.admin,
            "createFunnelStage",
            create,
            json!({ "input": { "key": "SPARE", "name": "Spare", "kind": "SIDE" } }),
        )
        .await;
    let gone = app
        .mutate(
            &app.keys.admin,
            "deleteFunnelStage",
            delete,
            json!({ "input": { "id": id_of(&spare["stage"]) } }),
        )
        .await;
    assert_eq!(gone["stage"]["key"], "SPARE");
}
both!(admins_edit_the_funnel_but_not_what_is_in_use);

async fn overdue_handoffs_are_found_by_their_sla(app: TestApp) {
    use sea_orm::ConnectionTrait;
    let q = "{ funnelStages(first: 2) { nodes { id } } }";
    let mql = app.data(&app.keys.analyst, q, json!({})).await["funnelStages"]["nodes"][1]["id"].clone();
    let update = "mutation($input: UpdateFunnelStageInput!) { updateFunnelStage(input: $input) { userErrors { field message code } } }";
    app.mutate(
        &app.keys.admin,
        "updateFunnelStage",
        update,
        json!({ "input": { "id": mql, "slaHours": 48 } }),
    )
    .await;
    let late = app.lead("late@example.com").await;
    let fresh = app.lead("fresh@example.com").await;
    let late_h = id_of(&hand_off(&app, &app.keys.marketing, &late).await["handoff"]);
    hand_off(&app, &app.keys.marketing, &fresh).await;
    // Make the first one three days old.
    let (_, raw) = closedloop::domain::ids::parse_global_id(&late_h).unwrap();
    let old = chrono::Utc::now() - chrono::TimeDelta::days(3);
    let stmt = sea_orm::Statement::from_sql_and_values(
        app.db.backend(),
        match app.db.backend() {
            sea_orm::DbBackend::Postgres => "UPDATE handoffs SET created_at = $1, due_at = $2 WHERE id = $3",
            _ => "UPDATE handoffs SET created_at = ?, due_at = ? WHERE id = ?",
        },
        [old.into(), (old + chrono::TimeDelta::hours(48)).into(), raw.into()],
    );
    app.db.conn.execute_raw(stmt).await.unwrap();
    let q = "{ late: handoffs(first: 10, filter: { overdue: true }) { nodes { id overdue slaBreached dueAt } } onTime: handoffs(first: 10, filter: { overdue: false }) { totalCount } stats: handoffStats(range: { from: \"2000-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\" }) { withSla slaBreaches } }";
    let seen = app.data(&app.keys.analyst, q, json!({})).await;
    assert_eq!(seen["late"]["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(seen["late"]["nodes"][0]["id"], late_h);
    assert_eq!(seen["late"]["nodes"][0]["overdue"], true);
    assert_eq!(seen["onTime"]["totalCount"], 1);
    assert_eq!(seen["stats"], json!({ "withSla": 2, "slaBreaches": 1 }));
}
both!(overdue_handoffs_are_found_by_their_sla);

/// Handoffs while a webhook is registered (its dispatcher writes delivery bookkeeping between
/// and during the requests' transactions) and other writers run: no request fails. On a SQLite
/// file, a deferred transaction that read before the dispatcher's commit could not write
/// afterwards (SQLITE_BUSY_SNAPSHOT, "code: 517"): 14 of 60 handoffs answered
/// INTERNAL_SERVER_ERROR.
async fn writes_beside_a_webhook_never_fail(app: TestApp) {
    let (receiver, url) = crate::webhooks::Receiver::start(0).await;
    crate::webhooks::create_webhook(&app, &url, json!([])).await;
    let mut leads = Vec::new();
    for i in 0..60 {
        leads.push(app.lead(&format!("busy{i}@example.com")).await);
    }
    let failures = |resp: &Value, field: &str| -> Vec<String> {
        let mut out: Vec<String> = resp["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| format!("{}: {}", e["extensions"]["code"], e["message"]))
            .collect();
        if resp["data"][field].is_object() {
            out.extend(user_errors(&resp["data"][field]).into_iter().map(|(f, c)| format!("{f}: {c}")));
        }
        out
    };
    let handoffs = async {
        let q = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { id } userErrors { field message code } } }";
        let mut failed = Vec::new();
        for lead in &leads {
            let resp = app.gql(&app.keys.marketing, q, json!({ "input": { "leadId": lead } })).await;
            failed.extend(failures(&resp, "handOffLead"));
        }
        failed
    };
    let others = async {
        let q = "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) { lead { id } userErrors { field message code } } }";
        let t = "mutation($input: RecordTouchpointsInput!) { recordTouchpoints(input: $input) { recordedCount userErrors { field message code } } }";
        let mut failed = Vec::new();
        for (i, lead) in leads.iter().enumerate().take(40) {
            let input = json!({ "input": { "email": format!("other{i}@example.com"), "jobTitle": "Buyer" } });
            failed.extend(failures(&app.gql(&app.keys.marketing, q, input).await, "upsertLead"));
            let items = json!([{ "leadId": lead, "type": "PAGE_VIEW", "occurredAt": "2026-03-01T09:00:00Z" }]);
            failed.extend(failures(
                &app.gql(&app.keys.marketing, t, json!({ "input": { "items": items } })).await,
                "recordTouchpoints",
            ));
        }
        failed
    };
    let (h, o) = tokio::join!(handoffs, others);
    assert_eq!(h, Vec::<String>::new(), "handoffs failed");
    assert_eq!(o, Vec::<String>::new(), "other writes failed");
    let delivered = receiver.wait_for(60).await;
    assert_eq!(delivered.len(), 60, "every handoff's event reached the webhook");
}
both!(writes_beside_a_webhook_never_fail);

#[tokio::test]
async fn writes_beside_a_webhook_never_fail_on_a_sqlite_file() {
    let dir = crate::helpers::scratch_dir("busy");
    let app = TestApp::spawn_sqlite_file(&dir).await;
    writes_beside_a_webhook_never_fail(app).await;
    let _ = std::fs::remove_dir_all(&dir);
}
