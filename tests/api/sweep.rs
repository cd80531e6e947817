//! Every root field and every mutation of the schema, found by introspection rather than listed
//! by hand, so that a field added later is tried too: an ANALYST key may change nothing, and a
//! key of workspace A handed workspace B's IDs neither reads nor changes anything of B's.
use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::helpers::{TestApp, data_of, id_of};

const TYPE_REF: &str = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// The schema's types by name, as introspection describes them.
struct Schema {
    types: HashMap<String, Value>,
}

impl Schema {
    async fn load(app: &TestApp) -> Schema {
        let q = format!(
            "{{ __schema {{ types {{ name kind enumValues {{ name }} \
             fields {{ name args {{ name defaultValue type {{ {TYPE_REF} }} }} type {{ {TYPE_REF} }} }} \
             inputFields {{ name defaultValue type {{ {TYPE_REF} }} }} }} }} }}"
        );
        let data = app.data(&app.keys.analyst, &q, json!({})).await;
        let types = data["__schema"]["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
            .collect();
        Schema { types }
    }

    fn fields(&self, type_name: &str) -> Vec<Value> {
        self.types[type_name]["fields"].as_array().cloned().unwrap_or_default()
    }

    /// A value of `ty` for an argument or input field named `name` of root field `root`: IDs
    /// from `ids`, every required input field, and every optional one that takes an ID or ends a
    /// range.
    fn value(&self, ty: &Value, name: &str, root: &str, ids: &Ids, depth: usize) -> Value {
        match ty["kind"].as_str().unwrap() {
            "NON_NULL" => self.value(&ty["ofType"], name, root, ids, depth),
            "LIST" => json!([self.value(&ty["ofType"], name, root, ids, depth)]),
            "ENUM" => self.types[ty["name"].as_str().unwrap()]["enumValues"][0]["name"].clone(),
            "INPUT_OBJECT" => {
                let mut object = Map::new();
                let def = &self.types[ty["name"].as_str().unwrap()];
                for f in def["inputFields"].as_array().unwrap() {
                    let field = f["name"].as_str().unwrap();
                    let required = f["type"]["kind"] == "NON_NULL" && f["defaultValue"].is_null();
                    // A range's ends too, so that reports run.
                    let range_end = matches!(field, "from" | "to");
                    if depth < 4 && (required || takes_id(&f["type"]) || range_end) {
                        object.insert(field.to_owned(), self.value(&f["type"], field, root, ids, depth + 1));
                    }
                }
                Value::Object(object)
            }
            _ => match ty["name"].as_str().unwrap() {
                "ID" => json!(ids.for_field(name, root)),
                "Int" => json!(1),
                "Float" => json!(1.0),
                "Boolean" => json!(false),
                "Decimal" => json!("1.00"),
                "DateTime" if name == "to" => json!("2027-01-01T00:00:00Z"),
                "DateTime" => json!("2025-01-01T00:00:00Z"),
                "Date" if name == "to" => json!("2027-01-01"),
                "Date" => json!("2025-01-01"),
                "JSON" => json!({}),
                _ if name.to_lowercase().contains("email") => json!("sweep@acme.test"),
                _ if name.to_lowercase().contains("url") => json!("https://93.184.216.34/hook"),
                _ => json!("SWEEP"),
            },
        }
    }

    /// A selection of `ty`: its scalar fields without required arguments and, `levels` deep,
    /// its object fields too (a connection through its `nodes`).
    fn selection(&self, ty: &Value, levels: usize) -> String {
        let type_name = named(ty);
        let def = &self.types[type_name];
        match def["kind"].as_str().unwrap() {
            "OBJECT" | "INTERFACE" => {
                let mut out = vec!["__typename".to_owned()];
                for f in self.fields(type_name) {
                    let args_required = f["args"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null());
                    let name = f["name"].as_str().unwrap();
                    let is_page = f["args"].as_array().unwrap().iter().any(|a| a["name"] == "first");
                    let inner = named(&f["type"]);
                    let kind = self.types[inner]["kind"].as_str().unwrap();
                    if args_required {
                        continue;
                    }
                    match kind {
                        "SCALAR" | "ENUM" => out.push(name.to_owned()),
                        _ if levels > 0 => {
                            let sub = self.selection(&f["type"], levels - 1);
                            let args = if is_page { "(first: 5)" } else { "" };
                            out.push(format!("{name}{args} {sub}"));
                        }
                        _ => {}
                    }
                }
                format!("{{ {} }}", out.join(" "))
            }
            "UNION" => "{ __typename }".to_owned(),
            _ => String::new(),
        }
    }
}

fn named(ty: &Value) -> &str {
    match ty["name"].as_str() {
        Some(n) => n,
        None => named(&ty["ofType"]),
    }
}

fn takes_id(ty: &Value) -> bool {
    named(ty) == "ID"
}

/// A type as written in a variable definition.
fn type_text(ty: &Value) -> String {
    match ty["kind"].as_str().unwrap() {
        "NON_NULL" => format!("{}!", type_text(&ty["ofType"])),
        "LIST" => format!("[{}]", type_text(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap().to_owned(),
    }
}

/// Global IDs of one workspace's objects, by the kind of object an argument names.
struct Ids(HashMap<&'static str, String>);

impl Ids {
    /// The ID for argument `field` of root field `root`: its name says the kind (`leadId`), or,
    /// for a plain `id`, the root field's name does (`updateCampaign`).
    fn for_field(&self, field: &str, root: &str) -> String {
        let lower = field.to_lowercase();
        let subject = if lower == "id" || lower == "ids" || lower == "base" {
            root.to_lowercase()
        } else {
            lower
        };
        const KINDS: [(&str, &str); 15] = [
            ("buyingcenter", "opportunity"),
            ("opportunit", "opportunity"),
            ("cost", "cost"),
            ("campaign", "campaign"),
            ("touchpoint", "touchpoint"),
            ("handoff", "handoff"),
            ("lead", "lead"),
            ("account", "account"),
            ("owner", "user"),
            ("user", "user"),
            ("persona", "persona"),
            ("webhook", "webhook"),
            ("model", "model"),
            ("scoring", "model"),
            ("stage", "stage"),
        ];
        let kind = KINDS
            .iter()
            .find(|(word, _)| subject.contains(word))
            .map_or("lead", |(_, kind)| kind);
        self.0[kind].clone()
    }

    fn all(&self) -> impl Iterator<Item = &String> {
        self.0.values()
    }
}

/// One object of every kind in the workspace of ADMIN key `admin`, each named so that it can be
/// recognised in a response ("globex" or "Hank").
async fn seed(app: &TestApp, admin: &str) -> Ids {
    let b = |q: &'static str, vars: Value| async move { app.data(admin, q, vars).await };
    let mut ids = HashMap::new();
    let account = id_of(
        &b(
            "mutation { upsertAccount(input: { name: \"Globex\", externalId: \"gx-1\" }) { account { id } } }",
            json!({}),
        )
        .await["upsertAccount"]["account"],
    );
    let user = id_of(
        &b(
            "mutation { upsertUser(input: { name: \"Hank\", email: \"hank@globex.example\" }) { user { id } } }",
            json!({}),
        )
        .await["upsertUser"]["user"],
    );
    let lead = id_of(
        &b(
            "mutation($a: ID!, $u: ID!) { upsertLead(input: { email: \"hank@globex.example\", firstName: \"Hank\", jobTitle: \"Globex buyer\", accountId: $a, ownerId: $u }) { lead { id } } }",
            json!({ "a": account, "u": user }),
        )
        .await["upsertLead"]["lead"],
    );
    let campaign = id_of(
        &b(
            "mutation { createCampaign(input: { name: \"Globex launch\", channel: \"EMAIL\", kind: ACQUISITION }) { campaign { id } } }",
            json!({}),
        )
        .await["createCampaign"]["campaign"],
    );
    let cost = id_of(
        &b(
            "mutation($c: ID!) { addCampaignCost(input: { campaignId: $c, category: MEDIA, amount: \"500.00\", incurredOn: \"2026-01-01\", note: \"Globex media\" }) { cost { id } } }",
            json!({ "c": campaign }),
        )
        .await["addCampaignCost"]["cost"],
    );
    let touchpoint = id_of(
        &b(
            "mutation($l: ID!, $c: ID!) { recordTouchpoints(input: { items: [{ leadId: $l, campaignId: $c, type: \"EMAIL_OPEN\", occurredAt: \"2026-01-02T00:00:00Z\" }] }) { touchpoints { id } } }",
            json!({ "l": lead, "c": campaign }),
        )
        .await["recordTouchpoints"]["touchpoints"][0],
    );
    let opportunity = id_of(
        &b(
            "mutation($a: ID!) { upsertOpportunity(input: { accountId: $a, name: \"Globex deal\", amount: \"9000\" }) { opportunity { id } } }",
            json!({ "a": account }),
        )
        .await["upsertOpportunity"]["opportunity"],
    );
    let persona = id_of(
        &b(
            "mutation { createPersona(input: { name: \"Globex persona\", matchThreshold: 50, criteria: [{ attribute: \"jobTitle\", operator: CONTAINS, values: [\"Globex\"], weight: 10 }] }) { persona { id } } }",
            json!({}),
        )
        .await["createPersona"]["persona"],
    );
    let handoff = id_of(
        &b(
            "mutation($l: ID!) { handOffLead(input: { leadId: $l, note: \"Globex note\" }) { handoff { id } } }",
            json!({ "l": lead }),
        )
        .await["handOffLead"]["handoff"],
    );
    let webhook = id_of(
        &b("mutation { createWebhook(input: { url: \"https://93.184.216.34/globex\", secret: \"globex-secret-0123456789\" }) { webhook { id } } }", json!({}))
            .await["createWebhook"]["webhook"],
    );
    let model = id_of(
        &b(
            "mutation { createScoringModel(input: { name: \"Globex model\" }) { scoringModel { id } } }",
            json!({}),
        )
        .await["createScoringModel"]["scoringModel"],
    );
    let stage = id_of(&b("{ funnelStages(first: 1) { nodes { id } } }", json!({})).await["funnelStages"]["nodes"][0]);
    for (kind, id) in [
        ("account", account),
        ("user", user),
        ("lead", lead),
        ("campaign", campaign),
        ("cost", cost),
        ("touchpoint", touchpoint),
        ("opportunity", opportunity),
        ("persona", persona),
        ("handoff", handoff),
        ("webhook", webhook),
        ("model", model),
        ("stage", stage),
    ] {
        ids.insert(kind, id);
    }
    Ids(ids)
}

/// Everything of a workspace that a mutation could change, as its ADMIN sees it.
async fn state(app: &TestApp, admin: &str) -> Value {
    const STATE: &str = "{
      leads(first: 100) { totalCount nodes { id email firstName jobTitle erasedAt updatedAt stage { key } owner { id } account { id }
        openHandoff { id status } touchpoints(first: 100) { totalCount } } }
      accounts(first: 100) { totalCount nodes { id name updatedAt } }
      campaigns(first: 100) { totalCount nodes { id name status updatedAt totalCost { amount } touchpointCount } }
      opportunities(first: 100) { totalCount nodes { id name status updatedAt amount { amount } contacts { role lead { id } } } }
      touchpoints(first: 100) { totalCount }
      users(first: 100) { totalCount nodes { id name email } }
      personas(first: 100) { totalCount nodes { id name updatedAt } }
      handoffs(first: 100) { totalCount nodes { id status owner { id } } }
      funnelStages(first: 100) { totalCount nodes { id key name } }
      scoringModels { id name version }
      webhooks(first: 100) { nodes { id url active kinds updatedAt } }
      routingRules { rules { name } defaultOwner { id } }
    }";
    app.data(admin, STATE, json!({})).await
}

/// Calls root field `field` of `root_type` with arguments built from `ids`, as `key`.
async fn call(app: &TestApp, schema: &Schema, key: &str, op: &str, root_type: &str, field: &Value, ids: &Ids) -> Value {
    let name = field["name"].as_str().unwrap();
    let mut defs = Vec::new();
    let mut args = Vec::new();
    let mut vars = Map::new();
    for a in field["args"].as_array().unwrap() {
        let arg = a["name"].as_str().unwrap();
        let required = a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null();
        if !(required || takes_id(&a["type"]) || arg == "first") {
            continue;
        }
        let value = if arg == "first" {
            json!(5)
        } else {
            schema.value(&a["type"], arg, name, ids, 0)
        };
        defs.push(format!("${arg}: {}", type_text(&a["type"])));
        args.push(format!("{arg}: ${arg}"));
        vars.insert(arg.to_owned(), value);
    }
    let defs = if defs.is_empty() {
        String::new()
    } else {
        format!("({})", defs.join(", "))
    };
    let args = if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    };
    let selection = schema.selection(&field["type"], if root_type == "Mutation" { 0 } else { 2 });
    let q = format!("{op} {defs} {{ {name}{args} {selection} }}");
    let resp = app.gql(key, &q, Value::Object(vars)).await;
    // A request the schema refuses before running it (no `path`) would try nothing.
    for e in resp["errors"].as_array().into_iter().flatten() {
        let message = e["message"].as_str().unwrap_or_default();
        assert!(!e["path"].is_null(), "{name} did not run: {message}\n{q}");
    }
    if std::env::var_os("SWEEP_LOG").is_some() {
        eprintln!("{name}: {resp}");
    }
    resp
}

async fn an_analyst_changes_nothing_by_any_mutation(app: TestApp) {
    let schema = Schema::load(&app).await;
    let mine = seed(&app, &app.keys.admin).await;
    let before = state(&app, &app.keys.admin).await;
    let mutations = schema.fields("Mutation");
    assert!(mutations.len() >= 30, "introspection lists the mutations");
    for m in &mutations {
        let resp = call(&app, &schema, &app.keys.analyst, "mutation", "Mutation", m, &mine).await;
        let codes: Vec<&str> = resp["errors"]
            .as_array()
            .map(|es| es.iter().filter_map(|e| e["extensions"]["code"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(codes, ["FORBIDDEN"], "{}: {resp}", m["name"]);
    }
    assert_eq!(state(&app, &app.keys.admin).await, before, "nothing changed");
}
both!(an_analyst_changes_nothing_by_any_mutation);

async fn another_workspaces_ids_read_and_change_nothing(app: TestApp) {
    let schema = Schema::load(&app).await;
    let theirs = seed(&app, &app.other.admin).await;
    let before = state(&app, &app.other.admin).await;
    let key = &app.keys.admin;

    // Every root field, its objects two levels deep.
    for f in schema.fields("Query") {
        let resp = call(&app, &schema, key, "query", "Query", &f, &theirs).await;
        let text = resp.to_string();
        for secret in ["globex", "Globex", "Hank"] {
            assert!(!text.contains(secret), "{} shows B's data: {text}", f["name"]);
        }
        assert!(!text.contains("INTERNAL_SERVER_ERROR"), "{}: {text}", f["name"]);
    }
    // node and nodes with each of B's IDs.
    for id in theirs.all() {
        let resp = app
            .gql(
                key,
                "query($id: ID!) { node(id: $id) { id } nodes(ids: [$id]) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(data_of(resp), json!({ "node": null, "nodes": [null] }), "{id}");
    }

    // The CSV export, filtered by B's persona and scoring model.
    for (param, kind) in [("persona", "persona"), ("model", "model")] {
        let resp = app
            .client
            .get(app.url("/export/leads.csv"))
            .bearer_auth(key)
            .query(&[(param, theirs.0[kind].as_str())])
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        assert!(!text.contains("globex") && !text.contains("Hank"), "export by {param}: {text}");
    }

    // Every mutation, with every ID it takes pointing at B's objects.
    for m in schema.fields("Mutation") {
        let resp = call(&app, &schema, key, "mutation", "Mutation", &m, &theirs).await;
        assert!(!resp.to_string().contains("INTERNAL_SERVER_ERROR"), "{}: {resp}", m["name"]);
    }
    assert_eq!(state(&app, &app.other.admin).await, before, "B's data did not change");
}
both!(another_workspaces_ids_read_and_change_nothing);
