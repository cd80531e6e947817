//! Buyer personas: weighted matching, members, matches kept current, routing by persona.
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, id_of, ids, user_errors};

const CREATE: &str = "mutation($input: CreatePersonaInput!) { createPersona(input: $input) { persona { id name matchThreshold criteria { attribute operator values weight } } userErrors { field message code } } }";

fn peter() -> Value {
    json!({
        "name": "Peter Produzent",
        "matchThreshold": 70,
        "criteria": [
            { "attribute": "jobTitle", "operator": "CONTAINS", "values": ["Produktion", "Production"], "weight": 40 },
            { "attribute": "industry", "operator": "EQUALS", "values": ["Machine building"], "weight": 30 },
            { "attribute": "employeeCount", "operator": "RANGE", "values": ["50", "500"], "weight": 20 },
            { "attribute": "country", "operator": "IN", "values": ["DE"], "weight": 10 },
        ]
    })
}

async fn matches(app: &TestApp, lead: &str) -> Value {
    let q = "query($id: ID!) { node(id: $id) { ... on Lead { personaMatches { persona { name } percent matchedWeight totalWeight isMember criteria { attribute matched } } } } }";
    app.data(&app.keys.analyst, q, json!({ "id": lead })).await["node"]["personaMatches"].clone()
}

async fn members(app: &TestApp, persona: &str, min: Option<i32>) -> Vec<String> {
    let q =
        "query($id: ID!, $min: Int) { node(id: $id) { ... on Persona { leads(first: 50, minMatch: $min) { totalCount nodes { id } } } } }";
    let data = app.data(&app.keys.analyst, q, json!({ "id": persona, "min": min })).await;
    ids(&data["node"]["leads"])
}

async fn leads_are_matched_by_weight_and_kept_current(app: TestApp) {
    let small = app
        .account(json!({ "name": "Pressen Müller", "externalId": "acc-pm", "employeeCount": 120, "country": "DE" }))
        .await;
    let lead = |email: &str, title: &str, industry: Option<&str>| {
        let mut input = json!({ "email": email, "jobTitle": title, "accountId": small, "country": "DE" });
        if let Some(i) = industry {
            input["industry"] = json!(i);
        }
        input
    };
    let all = id_of(
        &app.upsert_lead(lead("all@example.com", "Leiter Produktion", Some("machine building")))
            .await,
    );
    let most = id_of(
        &app.upsert_lead(json!({ "email": "most@example.com", "jobTitle": "Head of Production", "industry": "Machine building" }))
            .await,
    );
    let some = id_of(
        &app.upsert_lead(json!({ "email": "some@example.com", "jobTitle": "Production planner" }))
            .await,
    );
    let none = id_of(
        &app.upsert_lead(json!({ "email": "none@example.com", "jobTitle": "Accountant" }))
            .await,
    );

    let made = app
        .mutate(&app.keys.marketing, "createPersona", CREATE, json!({ "input": peter() }))
        .await;
    let persona = id_of(&made["persona"]);
    assert_eq!(made["persona"]["criteria"][2]["values"], json!(["50", "500"]));

    // all: 100; most: 40 + 30 = 70 (the threshold, so a member); some: 40; none: nothing.
    assert_eq!(members(&app, &persona, None).await, [all.clone(), most.clone()]);
    assert_eq!(members(&app, &persona, Some(40)).await, [all.clone(), most.clone(), some.clone()]);
    let filtered = app
        .data(
            &app.keys.analyst,
            "query($p: ID!) { leads(first: 10, filter: { persona: $p }) { nodes { id } } }",
            json!({ "p": persona }),
        )
        .await;
    assert_eq!(ids(&filtered["leads"]), [all.clone(), most.clone()]);
    assert_eq!(
        matches(&app, &some).await,
        json!([{ "persona": { "name": "Peter Produzent" }, "percent": "40.00", "matchedWeight": 40, "totalWeight": 100, "isMember": false,
                 "criteria": [{ "attribute": "jobTitle", "matched": true }, { "attribute": "industry", "matched": false },
                              { "attribute": "employeeCount", "matched": false }, { "attribute": "country", "matched": false }] }])
    );
    assert_eq!(matches(&app, &none).await, json!([]));

    // A lead change is matched in the same request.
    let q = "mutation($input: UpdateLeadInput!) { updateLead(input: $input) { lead { id } userErrors { field message code } } }";
    app.mutate(
        &app.keys.marketing,
        "updateLead",
        q,
        json!({ "input": { "id": some, "industry": "Machine Building" } }),
    )
    .await;
    assert_eq!(matches(&app, &some).await[0]["percent"], "70.00");
    // So is an account change: 1,000 staff is out of range.
    app.account(json!({ "name": "Pressen Müller", "externalId": "acc-pm", "employeeCount": 1000 }))
        .await;
    assert_eq!(matches(&app, &all).await[0]["percent"], "80.00");

    // A stricter threshold recomputes the members.
    let update = "mutation($input: UpdatePersonaInput!) { updatePersona(input: $input) { persona { matchThreshold } userErrors { field message code } } }";
    app.mutate(
        &app.keys.admin,
        "updatePersona",
        update,
        json!({ "input": { "id": persona, "matchThreshold": 75 } }),
    )
    .await;
    assert_eq!(members(&app, &persona, None).await, std::slice::from_ref(&all));
    // New criteria too: a third of the weight reads 33.33.
    let criteria = json!([
        { "attribute": "jobTitle", "operator": "CONTAINS", "values": ["planner"], "weight": 1 },
        { "attribute": "custom.plant", "operator": "EXISTS", "weight": 2 },
    ]);
    app.mutate(
        &app.keys.admin,
        "updatePersona",
        update,
        json!({ "input": { "id": persona, "criteria": criteria } }),
    )
    .await;
    assert_eq!(matches(&app, &some).await[0]["percent"], "33.33");
    assert_eq!(matches(&app, &all).await, json!([]));
}
both!(leads_are_matched_by_weight_and_kept_current);

async fn persona_input_is_checked_and_roles_hold(app: TestApp) {
    let bad = json!({ "name": " ", "matchThreshold": 0, "criteria": [
        { "attribute": "shoeSize", "operator": "EQUALS", "values": ["44"], "weight": 10 },
        { "attribute": "employeeCount", "operator": "RANGE", "values": ["500", "50"], "weight": 10 },
        { "attribute": "industry", "operator": "IN", "values": [], "weight": 0 },
    ]});
    let resp = app.data(&app.keys.admin, CREATE, json!({ "input": bad })).await;
    assert_eq!(
        user_errors(&resp["createPersona"]),
        vec![
            ("input.name".into(), "REQUIRED".into()),
            ("input.matchThreshold".into(), "INVALID".into()),
            ("input.criteria.0.attribute".into(), "INVALID".into()),
            ("input.criteria.1.values".into(), "INVALID".into()),
            ("input.criteria.2.values".into(), "REQUIRED".into()),
            ("input.criteria.2.weight".into(), "INVALID".into()),
        ]
    );
    for key in [&app.keys.sales, &app.keys.analyst] {
        assert_eq!(error_code(&app.gql(key, CREATE, json!({ "input": peter() })).await), "FORBIDDEN");
    }
    let persona = id_of(
        &app.mutate(&app.keys.marketing, "createPersona", CREATE, json!({ "input": peter() }))
            .await["persona"],
    );
    let dup = app.data(&app.keys.marketing, CREATE, json!({ "input": peter() })).await;
    assert_eq!(user_errors(&dup["createPersona"]), vec![("input.name".into(), "TAKEN".into())]);
    // Another workspace cannot see or change it.
    let update =
        "mutation($input: UpdatePersonaInput!) { updatePersona(input: $input) { persona { id } userErrors { field message code } } }";
    let resp = app
        .gql(&app.other.admin, update, json!({ "input": { "id": persona, "name": "Mine" } }))
        .await;
    assert_eq!(error_code(&resp), "NOT_FOUND");
}
both!(persona_input_is_checked_and_roles_hold);

async fn routing_by_persona_and_personas_in_use_stay(app: TestApp) {
    let vera = app.user("Vera", "vera@acme.test").await;
    let walt = app.user("Walt", "walt@acme.test").await;
    let persona = id_of(
        &app.mutate(&app.keys.marketing, "createPersona", CREATE, json!({ "input": peter() }))
            .await["persona"],
    );
    let q = "mutation($input: SetRoutingRulesInput!) { setRoutingRules(input: $input) { routing { rules { persona { name } } } userErrors { field message code } } }";
    let input = json!({ "rules": [{ "name": "Production people", "personaId": persona, "userIds": [vera] }], "defaultOwnerId": walt });
    let set = app.mutate(&app.keys.admin, "setRoutingRules", q, json!({ "input": input })).await;
    assert_eq!(set["routing"]["rules"][0]["persona"]["name"], "Peter Produzent");

    let hand_off = "mutation($input: HandOffLeadInput!) { handOffLead(input: $input) { handoff { owner { name } } userErrors { field message code } } }";
    let peter = id_of(
        &app.upsert_lead(json!({ "email": "p@example.com", "jobTitle": "Production manager", "industry": "Machine building" }))
            .await,
    );
    let other = app.lead("o@example.com").await;
    let got = app
        .mutate(
            &app.keys.marketing,
            "handOffLead",
            hand_off,
            json!({ "input": { "leadId": peter } }),
        )
        .await;
    assert_eq!(got["handoff"]["owner"]["name"], "Vera");
    let got = app
        .mutate(
            &app.keys.marketing,
            "handOffLead",
            hand_off,
            json!({ "input": { "leadId": other } }),
        )
        .await;
    assert_eq!(got["handoff"]["owner"]["name"], "Walt");

    let delete =
        "mutation($input: DeletePersonaInput!) { deletePersona(input: $input) { persona { id } userErrors { field message code } } }";
    let used = app.data(&app.keys.marketing, delete, json!({ "input": { "id": persona } })).await;
    assert_eq!(user_errors(&used["deletePersona"]), vec![("input.id".into(), "IN_USE".into())]);
    app.mutate(&app.keys.admin, "setRoutingRules", q, json!({ "input": { "rules": [] } }))
        .await;
    app.mutate(&app.keys.marketing, "deletePersona", delete, json!({ "input": { "id": persona } }))
        .await;
    let gone = app
        .data(&app.keys.analyst, "{ personas(first: 5) { totalCount } }", json!({}))
        .await;
    assert_eq!(gone["personas"]["totalCount"], 0);
}
both!(routing_by_persona_and_personas_in_use_stay);
