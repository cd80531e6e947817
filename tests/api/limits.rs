//! The HTTP surface: limits on queries, GET and batches, GraphiQL and health checks.
use serde_json::{Value, json};

use crate::helpers::{TestApp, data_of, error_code};

async fn get_graphql(app: &TestApp, key: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app.client.get(app.url("/graphql")).query(params);
    if !key.is_empty() {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn post_operation(app: &TestApp, key: &str, query: &str, operation: &str) -> Value {
    let body = json!({ "query": query, "operationName": operation, "variables": {} });
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap()
}

/// `levels` times `leads(first: 1) { nodes { account {`, then `name`: 3 × levels + 1 deep.
fn nested(levels: usize) -> String {
    let open = "leads(first: 1) { nodes { account { ".repeat(levels);
    let close = "} } } ".repeat(levels);
    format!("{open}name {close}")
}

async fn deep_queries_are_refused(app: TestApp) {
    let resp = app.gql(&app.keys.admin, &format!("{{ {} }}", nested(5)), json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "16 levels: {resp}");
    assert!(resp.get("data").is_none_or(Value::is_null), "not executed: {resp}");

    let data = app.data(&app.keys.admin, &format!("{{ {} }}", nested(3)), json!({})).await;
    assert_eq!(data["leads"]["nodes"], json!([]), "10 levels are fine");

    // Depth through fragments counts too.
    let q = format!(
        "query {{ leads(first: 1) {{ ...L }} }} fragment L on LeadConnection {{ nodes {{ account {{ {} }} }} }}",
        nested(4)
    );
    let resp = app.gql(&app.keys.admin, &q, json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
}
both!(deep_queries_are_refused);

async fn costly_queries_are_refused(app: TestApp) {
    // A page of 100 leads with 100 touchpoints each, with their campaigns: 100 × 100 items.
    let costly = "{ leads(first: 100) { nodes { email touchpoints(first: 100) { nodes { type campaign { name touchpointCount } } } } } }";
    let resp = app.gql(&app.keys.analyst, costly, json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
    assert!(resp.get("data").is_none_or(Value::is_null), "not executed: {resp}");
    // `last` counts like `first`, and so do page sizes above the clamp.
    let costly = "{ leads(last: 1000) { nodes { email touchpoints(first: 100) { nodes { type campaign { name touchpointCount } } } } } }";
    let resp = app.gql(&app.keys.analyst, costly, json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");

    // The same shape with smaller pages is fine.
    app.lead("ada@example.com").await;
    let modest = "{ leads(first: 20) { nodes { email touchpoints(first: 20) { nodes { type campaign { name touchpointCount } } } } } }";
    let data = app.data(&app.keys.analyst, modest, json!({})).await;
    assert_eq!(
        data["leads"]["nodes"],
        json!([{ "email": "ada@example.com", "touchpoints": { "nodes": [] } }])
    );
}
both!(costly_queries_are_refused);

async fn too_many_aliases_or_root_fields_are_refused(app: TestApp) {
    let aliases: String = (0..31).map(|i| format!("a{i}: role ")).collect();
    let resp = app
        .gql(&app.keys.analyst, &format!("{{ viewer {{ {aliases} }} }}"), json!({}))
        .await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
    assert!(resp["errors"][0]["message"].as_str().unwrap().contains("alias"), "{resp}");

    let thirty: String = (0..30).map(|i| format!("a{i}: role ")).collect();
    let data = app
        .data(&app.keys.analyst, &format!("{{ viewer {{ {thirty} }} }}"), json!({}))
        .await;
    assert_eq!(data["viewer"]["a29"], "ANALYST");

    // Aliases hidden in fragments count as well.
    let in_fragment: String = (0..31).map(|i| format!("f{i}: role ")).collect();
    let q = format!("{{ viewer {{ ...V }} }} fragment V on Viewer {{ {in_fragment} }}");
    let resp = app.gql(&app.keys.analyst, &q, json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");

    let roots: String = (0..21).map(|_| "viewer { role } ").collect();
    let resp = app.gql(&app.keys.analyst, &format!("{{ {roots} }}"), json!({})).await;
    assert_eq!(error_code(&resp), "QUERY_TOO_COMPLEX", "{resp}");
}
both!(too_many_aliases_or_root_fields_are_refused);

/// The server parses a query text once and runs a copy of that document for later requests
/// with the same text: each still runs with its own variables, directives and operation, and is
/// still validated against its own variables.
async fn a_query_text_sent_again_runs_with_its_own_variables(app: TestApp) {
    app.lead("ada@example.com").await;
    let q = "query($withEmail: Boolean!, $skipRole: Boolean!) { \
             viewer { __typename role @skip(if: $skipRole) } \
             leads(first: 5) { nodes { __typename email @include(if: $withEmail) } } }";
    let all = json!({
        "viewer": { "__typename": "Viewer", "role": "ANALYST" },
        "leads": { "nodes": [{ "__typename": "Lead", "email": "ada@example.com" }] }
    });
    let vars = |with_email: bool, skip_role: bool| json!({ "withEmail": with_email, "skipRole": skip_role });
    assert_eq!(app.data(&app.keys.analyst, q, vars(true, false)).await, all);
    let none = app.data(&app.keys.analyst, q, vars(false, true)).await;
    let bare = json!({ "viewer": { "__typename": "Viewer" }, "leads": { "nodes": [{ "__typename": "Lead" }] } });
    assert_eq!(none, bare);
    assert_eq!(app.data(&app.keys.analyst, q, vars(true, false)).await, all);

    let two = "query Role { viewer { role } } query Count { leads(first: 1) { totalCount } }";
    for _ in 0..2 {
        let resp = post_operation(&app, &app.keys.analyst, two, "Role").await;
        assert_eq!(data_of(resp), json!({ "viewer": { "role": "ANALYST" } }));
        let resp = post_operation(&app, &app.keys.analyst, two, "Count").await;
        assert_eq!(data_of(resp), json!({ "leads": { "totalCount": 1 } }));
    }

    let page = "query($n: Int!) { leads(first: $n) { nodes { email } } }";
    let data = app.data(&app.keys.analyst, page, json!({ "n": 1 })).await;
    assert_eq!(data["leads"]["nodes"][0]["email"], "ada@example.com");
    let resp = app.gql(&app.keys.analyst, page, json!({ "n": "one" })).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT", "{resp}");
    assert!(resp.get("data").is_none_or(Value::is_null), "not executed: {resp}");
}
both!(a_query_text_sent_again_runs_with_its_own_variables);

async fn get_runs_queries_but_not_mutations(app: TestApp) {
    let (status, body) = get_graphql(&app, &app.keys.analyst, &[("query", "{ viewer { role } }")]).await;
    assert_eq!(status, 200);
    assert_eq!(data_of(body)["viewer"]["role"], "ANALYST");

    let (status, body) = get_graphql(
        &app,
        &app.keys.analyst,
        &[
            ("query", "query Q($e: String!) { leadByEmail(email: $e) { id } }"),
            ("operationName", "Q"),
            ("variables", "{\"e\": \"nobody@example.com\"}"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(data_of(body)["leadByEmail"], Value::Null);

    let mutation = "mutation { upsertLead(input: { email: \"get@example.com\" }) { created } }";
    let (_, body) = get_graphql(&app, &app.keys.admin, &[("query", mutation)]).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    let data = app.data(&app.keys.admin, "{ leads(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(data["leads"]["totalCount"], 0, "the mutation did not run");

    // A document with a query and a mutation is refused over GET even when the query is chosen.
    let mixed = format!("query Q {{ viewer {{ role }} }} {mutation}");
    let (_, body) = get_graphql(&app, &app.keys.admin, &[("query", mixed.as_str()), ("operationName", "Q")]).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    let (status, body) = get_graphql(
        &app,
        &app.keys.analyst,
        &[("query", "{ viewer { role } }"), ("variables", "{not json")],
    )
    .await;
    assert_eq!((status, error_code(&body).as_str()), (400, "BAD_USER_INPUT"));
    let (status, body) = get_graphql(&app, "clk_nope", &[("query", "{ viewer { role } }")]).await;
    assert_eq!((status, error_code(&body).as_str()), (401, "UNAUTHENTICATED"));
}
both!(get_runs_queries_but_not_mutations);

async fn batches_and_malformed_bodies_are_refused(app: TestApp) {
    let post = |body: String| {
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(&app.keys.admin)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let batch = json!([{ "query": "{ viewer { role } }" }, { "query": "{ viewer { role } }" }]).to_string();
    let resp = post(batch).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let resp = post(format!("  \n {}", json!([{ "query": "{ viewer { role } }" }]))).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400, "leading whitespace does not hide a batch");

    for body in ["not json", "{\"query\": 42}", ""] {
        let resp = post(body.to_owned()).await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{body:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
    }

    // Syntax and validation errors come back with a code too (HTTP 200, as GraphQL does).
    let resp = post("{\"variables\": {}}".to_owned()).await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "no query: {body}");
    let resp = app.gql(&app.keys.admin, "{ viewer { role ", json!({})).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");
    let resp = app.gql(&app.keys.admin, "{ viewer { nosuchfield } }", json!({})).await;
    assert_eq!(error_code(&resp), "BAD_USER_INPUT");

    // The answer to a POST is not cached.
    let resp = post(json!({ "query": "{ viewer { role } }" }).to_string()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
}
both!(batches_and_malformed_bodies_are_refused);

async fn graphiql_and_health_checks(app: TestApp) {
    let resp = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("<title>closedloop GraphiQL</title>"), "GraphiQL page expected");

    // Every file the page loads is served by the server itself (tests/api/browser.rs renders it).
    let files: Vec<&str> = html.split(['"', '\'']).filter(|s| s.starts_with("graphiql/")).collect();
    assert_eq!(files.len(), 5, "{html}");
    for file in files {
        let url = app.url(&format!("/{file}"));
        let plain = app.client.get(&url).send().await.unwrap();
        assert_eq!(plain.status().as_u16(), 200, "{file}");
        assert!(plain.headers().get("content-encoding").is_none(), "{file}");
        let content_type = plain.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = if file.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(content_type.starts_with(expected), "{file}: {content_type}");
        let body = plain.bytes().await.unwrap();
        assert!(body.len() > 1000, "{file}");
        if file.contains(".min.") {
            // The vendored files go gzipped to a browser, and may be kept for good.
            let zipped = app.client.get(&url).header("accept-encoding", "gzip, br").send().await.unwrap();
            assert_eq!(zipped.headers()["content-encoding"], "gzip", "{file}");
            assert!(zipped.headers()["cache-control"].to_str().unwrap().contains("immutable"));
            assert!(zipped.bytes().await.unwrap().len() < body.len(), "{file}");
        } else {
            assert!(
                String::from_utf8_lossy(&body).contains("/ws"),
                "the page knows the WebSocket endpoint"
            );
        }
    }
    let resp = app.client.get(app.url("/graphiql/nope.js")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // --no-graphiql: neither the page nor its files.
    let without = app.serve_with(|c| c.graphiql = false).await;
    for path in ["/graphql", "/graphiql/graphiql-4.1.2.min.js", "/graphiql/closedloop.js"] {
        let resp = app.client.get(format!("http://{without}{path}")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }

    for (path, body) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_eq!(resp.text().await.unwrap(), body, "{path}");
    }
    let resp = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}
both!(graphiql_and_health_checks);

async fn oversized_bodies_are_refused(app: TestApp) {
    // 9 MiB of padding in an otherwise valid request; the limit is 8 MiB.
    let padding = " ".repeat(9 * 1024 * 1024);
    let body = format!("{{\"query\": \"{{ viewer {{ role }} }}\"{padding}}}");
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.keys.analyst)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
}
both!(oversized_bodies_are_refused);
