//! The planned read path (`src/graphql/plan`): for any selection the same bytes as the generic
//! resolvers (a second server over the same database with `--no-planned-reads`), one statement
//! per level, and every object's fields in query order on both paths.
use std::net::SocketAddr;

use closedloop::graphql::plan::Reads;
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of};

/// The response body, byte for byte.
async fn body(app: &TestApp, addr: SocketAddr, key: &str, query: &str, variables: &Value) -> String {
    app.client
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("POST /graphql")
        .text()
        .await
        .expect("a body")
}

struct Seeded {
    leads: Vec<String>,
    erased: String,
    /// A lead merged into `leads[1]`.
    merged: String,
    foreign: String,
}

/// 14 leads: most at an account (some share one), in three stages, with 0 to 7 touchpoints,
/// some without a campaign, two created at the same moment; one erased; one merged into
/// another; one lead in the other workspace. Three campaigns (one with a budget, dates and cost lines, one negative), and a
/// deal per account, two of them with a buying center whose primary contact was added last.
/// Two users (one inactive) who own some of the leads, and two personas, one of which the
/// production heads match.
async fn seed(app: &TestApp) -> Seeded {
    let user = "mutation($input: UpsertUserInput!) { upsertUser(input: $input) { user { id } userErrors { code } } }";
    let mut users = Vec::new();
    for input in [
        json!({ "name": "Petra Vertrieb", "email": "petra@example.com", "team": "Sales DACH" }),
        json!({ "name": "Olaf Alt", "externalId": "u-2", "active": false }),
    ] {
        let data = app.data(&app.keys.admin, user, json!({ "input": input })).await;
        users.push(id_of(&data["upsertUser"]["user"]));
    }
    let persona = "mutation($input: CreatePersonaInput!) { createPersona(input: $input) { userErrors { code } } }";
    for input in [
        json!({ "name": "Produktion", "description": "Heads of production", "matchThreshold": 60,
            "criteria": [{ "attribute": "jobTitle", "operator": "CONTAINS", "values": ["production"], "weight": 60 },
                         { "attribute": "country", "operator": "IN", "values": ["AT"], "weight": 40 }] }),
        json!({ "name": "Nobody", "matchThreshold": 100,
            "criteria": [{ "attribute": "industry", "operator": "EQUALS", "values": ["Shipping"], "weight": 1 }] }),
    ] {
        let data = app.data(&app.keys.marketing, persona, json!({ "input": input })).await;
        assert_eq!(data["createPersona"]["userErrors"], json!([]));
    }
    let campaigns = [
        app.simple_campaign("Newsletter").await,
        app.campaign(
            json!({ "name": "Fair", "channel": "TRADE_FAIR", "kind": "ACQUISITION", "trackingCode": "fair-26",
            "startDate": "2026-03-01", "endDate": "2026-03-03", "budget": "12000.50", "expectedRevenue": "90000", "expectedLeads": 40 }),
        )
        .await,
        app.simple_campaign("Webinar").await,
    ];
    let cost = "mutation($id: ID!, $amount: Decimal!) { addCampaignCost(input: { campaignId: $id, category: MEDIA, amount: $amount, incurredOn: \"2026-01-01\" }) { userErrors { code } } }";
    for (c, amount) in [(0, "100.10"), (1, "2500"), (1, "-0.10")] {
        let data = app
            .data(&app.keys.admin, cost, json!({ "id": campaigns[c], "amount": amount }))
            .await;
        assert_eq!(data["addCampaignCost"]["userErrors"], json!([]));
    }
    let accounts = [
        app.account(json!({ "name": "Nordwind", "industry": "Machine building", "employeeCount": 120, "country": "DE" }))
            .await,
        app.account(json!({ "name": "Südhang", "domain": "suedhang.example" })).await,
        app.account(json!({ "name": "Ostsee" })).await,
    ];
    let stages = ["LEAD", "MQL", "SQL"];
    let mut leads = Vec::new();
    let mut touches = Vec::new();
    for i in 0..14usize {
        let mut input = json!({
            "externalId": format!("crm-{i}"),
            "email": format!("lead{i:02}@example.com"),
            "stage": stages[i % 3],
            // Two leads share a creation time: ties are broken by ID.
            "createdAt": format!("2026-01-{:02}T09:00:00Z", 1 + i.min(12)),
        });
        if i % 4 != 3 {
            input["accountId"] = json!(accounts[i % 3]);
        }
        if i % 2 == 0 {
            input["firstName"] = json!(format!("Ana{i}"));
            input["jobTitle"] = json!("Head of production");
            input["country"] = json!("AT");
        }
        if i % 3 == 0 {
            input["lastName"] = json!("Berg");
        }
        if i % 5 != 4 {
            input["ownerId"] = json!(users[i % 2]);
        }
        let lead = id_of(&app.upsert_lead(input).await);
        for t in 0..(i % 8) {
            let mut item = json!({
                "leadId": lead, "type": if t % 2 == 0 { "EMAIL_OPEN" } else { "WEBINAR_ATTEND" },
                // Touchpoints of one lead share times now and then: ties are broken by ID.
                "occurredAt": format!("2026-02-{:02}T10:00:00Z", 1 + (t * 7 + i) % 5),
            });
            if t % 3 != 2 {
                item["campaignId"] = json!(campaigns[(i + t) % 3]);
            }
            touches.push(item);
        }
        leads.push(lead);
    }
    let n = touches.len();
    let recorded = app.record(json!(touches)).await;
    assert_eq!(recorded["recordedCount"], n, "{recorded}");
    let set = "mutation($o: ID!, $c: [BuyingCenterContactInput!]!) { setBuyingCenter(input: { opportunityId: $o, contacts: $c }) { userErrors { code } } }";
    for (i, account) in accounts.iter().enumerate() {
        let deal = app
            .opportunity(
                json!({ "accountId": account, "name": format!("Deal {i}"), "amount": "1000.25", "expectedCloseDate": "2026-06-30" }),
            )
            .await;
        // The primary contact last, so that the list's order (primary first) is not the order added.
        let contacts = json!([
            { "leadId": leads[i], "role": "Champion" },
            { "leadId": leads[i + 3], "role": "Economic buyer", "isPrimary": true },
        ]);
        let data = app
            .data(
                &app.keys.sales,
                set,
                json!({ "o": deal, "c": if i == 2 { json!([]) } else { contacts } }),
            )
            .await;
        assert_eq!(data["setBuyingCenter"]["userErrors"], json!([]));
    }
    let erased = leads.remove(5);
    let q = "mutation($id: ID!) { eraseLead(input: { id: $id }) { userErrors { code } } }";
    app.data(&app.keys.admin, q, json!({ "id": erased })).await;
    let merged = app.lead("twin@example.com").await;
    let q = "mutation($l: ID!, $d: ID!) { mergeLeads(input: { leadId: $l, duplicateId: $d }) { userErrors { code } } }";
    let data = app.data(&app.keys.admin, q, json!({ "l": leads[1], "d": merged })).await;
    assert_eq!(data["mergeLeads"]["userErrors"], json!([]));
    let q = "mutation { upsertLead(input: { email: \"other@globex.test\" }) { lead { id } } }";
    let foreign = id_of(&app.data(&app.other.admin, q, json!({})).await["upsertLead"]["lead"]);
    Seeded {
        leads,
        erased,
        merged,
        foreign,
    }
}

/// `field` (with its arguments and selection set) with `directive`, which goes before the
/// selection set.
fn directive(field: &str, directive: &str) -> String {
    let mut depth = 0;
    for (i, c) in field.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '{' if depth == 0 => return format!("{} {directive} {}", &field[..i], &field[i..]),
            _ => {}
        }
    }
    format!("{field} {directive}")
}

/// A small deterministic random source (xorshift64*), so that a failing query can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Builds random selections: aliases, inline fragments, named fragments, `@skip`/`@include`,
/// fields selected twice, `__typename`, and now and then a field the planner does not know.
struct Gen {
    rng: Rng,
    fragments: Vec<String>,
    aliases: usize,
}

const LEAD_SCALARS: &[&str] = &[
    "id",
    "externalId",
    "email",
    "firstName",
    "lastName",
    "name",
    "jobTitle",
    "decisionRole",
    "industry",
    "companySize",
    "country",
    "phone",
    "linkedinUrl",
    "twitterHandle",
    "facebookUrl",
    "street",
    "postalCode",
    "city",
    "status",
    "convertedAt",
    "firstTouchAt",
    "emailBouncedAt",
    "unsubscribedAt",
    "erasedAt",
    "createdAt",
    "updatedAt",
    "__typename",
];
const ACCOUNT_SCALARS: &[&str] = &[
    "id",
    "externalId",
    "name",
    "domain",
    "industry",
    "employeeCount",
    "country",
    "customerStatus",
    "createdAt",
    "updatedAt",
    "__typename",
];
const STAGE_SCALARS: &[&str] = &["id", "key", "name", "kind", "position", "slaHours", "__typename"];
const CAMPAIGN_SCALARS: &[&str] = &[
    "id",
    "externalId",
    "name",
    "channel",
    "kind",
    "status",
    "trackingCode",
    "startDate",
    "endDate",
    "expectedLeads",
    "touchpointCount",
    "createdAt",
    "updatedAt",
    "__typename",
];
const OPPORTUNITY_SCALARS: &[&str] = &[
    "id",
    "externalId",
    "name",
    "status",
    "expectedCloseDate",
    "closedAt",
    "createdAt",
    "updatedAt",
    "__typename",
];
const MONEY: &[&str] = &["amount", "currency", "__typename"];
const TOUCHPOINT_SCALARS: &[&str] = &[
    "id",
    "externalId",
    "idempotencyKey",
    "type",
    "occurredAt",
    "createdAt",
    "__typename",
];
/// Fields that have no plan: a selection with one of them runs through the resolvers.
const LEAD_UNPLANNED: &[&str] = &["opportunities { id }", "consents", "reachableChannels", "openHandoff { id }"];
const USER_SCALARS: &[&str] = &["id", "externalId", "name", "email", "team", "active", "createdAt", "__typename"];
const PERSONA_SCALARS: &[&str] = &[
    "id",
    "name",
    "description",
    "matchThreshold",
    "createdAt",
    "updatedAt",
    "__typename",
];

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            rng: Rng(seed | 1),
            fragments: Vec::new(),
            aliases: 0,
        }
    }

    /// One selected field, dressed at random.
    fn dress(&mut self, on: &str, field: String) -> String {
        let field = if self.rng.chance(15) && !field.starts_with("__") {
            self.aliases += 1;
            format!("a{}: {field}", self.aliases)
        } else {
            field
        };
        match self.rng.below(12) {
            0 => format!("... on {on} {{ {field} }}"),
            1 => {
                let name = format!("F{}", self.fragments.len());
                self.fragments.push(format!("fragment {name} on {on} {{ {field} }}"));
                format!("...{name}")
            }
            2 => directive(&field, "@include(if: $yes)"),
            3 => directive(&field, "@skip(if: $no)"),
            // Left out by its directive.
            4 => directive(&field, "@skip(if: $yes)"),
            5 => format!("... @include(if: $no) {{ {field} }}"),
            _ => field,
        }
    }

    fn scalars(&mut self, on: &str, pool: &[&str], max: usize) -> Vec<String> {
        let n = 1 + self.rng.below(max);
        (0..n)
            .map(|_| {
                let f = self.rng.pick(pool).to_owned();
                self.dress(on, f)
            })
            .collect()
    }

    fn lead(&mut self, depth: usize) -> String {
        let mut out = self.scalars("Lead", LEAD_SCALARS, 6);
        if self.rng.chance(50) {
            let inner = self.scalars("FunnelStage", STAGE_SCALARS, 3).join(" ");
            out.push(self.dress("Lead", format!("stage {{ {inner} }}")));
        }
        // Twice now and then: the two selections merge.
        for _ in 0..self.rng.below(3) {
            let inner = self.scalars("Account", ACCOUNT_SCALARS, 4).join(" ");
            out.push(self.dress("Lead", format!("account {{ {inner} }}")));
        }
        if self.rng.chance(25) {
            let inner = self.scalars("User", USER_SCALARS, 4).join(" ");
            out.push(self.dress("Lead", format!("owner {{ {inner} }}")));
        }
        if depth == 0 && self.rng.chance(20) {
            let inner = self.lead(1);
            out.push(self.dress("Lead", format!("mergedInto {{ {inner} }}")));
        }
        if depth == 0 && self.rng.chance(60) {
            let args = self.touchpoint_args();
            let conn = self.connection("TouchpointConnection", "TouchpointEdge", false, |g| g.touchpoint());
            out.push(self.dress("Lead", format!("touchpoints{args} {{ {conn} }}")));
        }
        if self.rng.chance(8) {
            let f = self.rng.pick(LEAD_UNPLANNED).to_owned();
            out.push(f);
        }
        self.shuffle(&mut out);
        out.join(" ")
    }

    fn money(&mut self, on: &str, field: &str) -> String {
        let inner = self.scalars("Money", MONEY, 2).join(" ");
        self.dress(on, format!("{field} {{ {inner} }}"))
    }

    fn account(&mut self, depth: usize) -> String {
        let mut out = self.scalars("Account", ACCOUNT_SCALARS, 5);
        if depth == 0 {
            out.extend(self.leads("Account", &["(first: 2)", "(first: 10)", "(last: 1)", "(first: 0)"], 50));
        }
        if self.rng.chance(8) {
            out.push("annualRevenue { amount }".to_owned());
        }
        self.shuffle(&mut out);
        out.join(" ")
    }

    fn campaign(&mut self, depth: usize) -> String {
        let mut out = self.scalars("Campaign", CAMPAIGN_SCALARS, 5);
        for field in ["budget", "expectedRevenue", "totalCost"] {
            if self.rng.chance(30) {
                out.push(self.money("Campaign", field));
            }
        }
        if depth == 0 && self.rng.chance(50) {
            let args = self.touchpoint_args();
            let conn = self.connection("TouchpointConnection", "TouchpointEdge", false, |g| g.touchpoint());
            out.push(self.dress("Campaign", format!("touchpoints{args} {{ {conn} }}")));
        }
        if self.rng.chance(8) {
            out.push("costs { id }".to_owned());
        }
        self.shuffle(&mut out);
        out.join(" ")
    }

    fn opportunity(&mut self) -> String {
        let mut out = self.scalars("Opportunity", OPPORTUNITY_SCALARS, 5);
        if self.rng.chance(50) {
            out.push(self.money("Opportunity", "amount"));
        }
        if self.rng.chance(50) {
            let inner = self.account(1);
            out.push(self.dress("Opportunity", format!("account {{ {inner} }}")));
        }
        if self.rng.chance(60) {
            let mut inner = self.scalars("BuyingCenterMember", &["role", "isPrimary", "__typename"], 2);
            if self.rng.chance(60) {
                let lead = self.lead(0);
                inner.push(self.dress("BuyingCenterMember", format!("lead {{ {lead} }}")));
            }
            out.push(self.dress("Opportunity", format!("contacts {{ {} }}", inner.join(" "))));
        }
        if self.rng.chance(8) {
            out.push("owner { id }".to_owned());
        }
        self.shuffle(&mut out);
        out.join(" ")
    }

    /// In `percent` of the calls, `on`'s `leads` with one of `pages` (its arguments).
    fn leads(&mut self, on: &str, pages: &[&str], percent: usize) -> Option<String> {
        if !self.rng.chance(percent) {
            return None;
        }
        let page = self.rng.pick(pages);
        let conn = self.connection("LeadConnection", "LeadEdge", false, |g| g.lead(1));
        Some(self.dress(on, format!("leads{page} {{ {conn} }}")))
    }

    /// A persona, now and then with its leads (a page that the plan of the leads takes).
    fn persona(&mut self) -> String {
        let mut out = self.scalars("Persona", PERSONA_SCALARS, 4);
        let pages = ["(first: 3)", "(first: 20, minMatch: 0)", "(last: 2)", "(first: 5, minMatch: 100)"];
        out.extend(self.leads("Persona", &pages, 40));
        if self.rng.chance(8) {
            out.push("criteria { attribute }".to_owned());
        }
        self.shuffle(&mut out);
        out.join(" ")
    }

    fn touchpoint(&mut self) -> String {
        let mut out = self.scalars("Touchpoint", TOUCHPOINT_SCALARS, 4);
        if self.rng.chance(70) {
            let inner = self.scalars("Campaign", CAMPAIGN_SCALARS, 4).join(" ");
            out.push(self.dress("Touchpoint", format!("campaign {{ {inner} }}")));
        }
        if self.rng.chance(20) {
            let inner = self.scalars("Lead", LEAD_SCALARS, 3).join(" ");
            let account = if self.rng.chance(50) { " account { name }" } else { "" };
            out.push(self.dress("Touchpoint", format!("lead {{ {inner}{account} }}")));
        }
        self.shuffle(&mut out);
        out.join(" ")
    }

    fn touchpoint_args(&mut self) -> String {
        let order = match self.rng.below(5) {
            0 => "",
            1 => ", orderBy: { field: OCCURRED_AT }",
            2 => ", orderBy: { field: OCCURRED_AT, direction: DESC }",
            3 => ", orderBy: { field: ID, direction: DESC }",
            _ => ", orderBy: { field: ID }",
        };
        let page = match self.rng.below(9) {
            0 => "last: 3".to_owned(),
            1 => "first: 0".to_owned(),
            // Invalid: the generic path reports it.
            2 => "first: -1".to_owned(),
            n => format!("first: {}", [1, 2, 5, 5, 9, 20][n - 3]),
        };
        format!("({page}{order})")
    }

    fn connection(&mut self, name: &str, edge: &str, top: bool, node: impl Fn(&mut Self) -> String) -> String {
        let mut out = Vec::new();
        if self.rng.chance(50) {
            let info = self.scalars(
                "PageInfo",
                &["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"],
                4,
            );
            out.push(self.dress(name, format!("pageInfo {{ {} }}", info.join(" "))));
        }
        if self.rng.chance(45) {
            let mut inner = vec![format!("node {{ {} }}", node(self))];
            if self.rng.chance(50) {
                inner.push(self.dress(edge, "cursor".to_owned()));
            }
            if self.rng.chance(20) {
                inner.push(self.dress(edge, "__typename".to_owned()));
            }
            self.shuffle(&mut inner);
            out.push(self.dress(name, format!("edges {{ {} }}", inner.join(" "))));
        }
        if out.is_empty() || self.rng.chance(60) {
            let nodes = node(self);
            out.push(self.dress(name, format!("nodes {{ {nodes} }}")));
        }
        if self.rng.chance(if top { 30 } else { 20 }) {
            out.push("totalCount".to_owned());
        }
        if self.rng.chance(15) {
            out.push("__typename".to_owned());
        }
        self.shuffle(&mut out);
        out.join(" ")
    }

    fn shuffle(&mut self, items: &mut [String]) {
        for i in (1..items.len()).rev() {
            let j = self.rng.below(i + 1);
            items.swap(i, j);
        }
    }

    /// The whole document: `root` is the operation's selection, then the fragments it spreads.
    fn document(&mut self, root: String) -> String {
        // Both variables are used, whatever the random parts chose (async-graphql's validation
        // does not see variables in the directives of `__typename`).
        let mut doc = format!(
            "query Q($yes: Boolean!, $no: Boolean!) {{ {root} y: viewer @include(if: $yes) {{ role }} n: viewer @skip(if: $no) {{ role }} }}"
        );
        for f in self.fragments.drain(..) {
            doc.push(' ');
            doc.push_str(&f);
        }
        doc
    }
}

/// A response body as the differential test compares it: `data` byte for byte (keys in order),
/// the errors as a sorted list. The order of errors is not defined (GraphQL spec 7.1.2), and
/// async-graphql adds the errors of a list's items in the order the items finish, which differs
/// from one request to the next.
fn answer(body: &str) -> (String, Vec<String>) {
    let data = body.split(",\"errors\":").next().unwrap_or(body).to_owned();
    let parsed: Value = serde_json::from_str(body).expect("a JSON body");
    let mut errors: Vec<String> = parsed["errors"]
        .as_array()
        .map(|e| e.iter().map(Value::to_string).collect())
        .unwrap_or_default();
    errors.sort();
    (data, errors)
}

/// The IDs of a list's first page.
async fn ids(app: &TestApp, list: &str) -> Vec<String> {
    let q = format!("{{ {list}(first: 20) {{ nodes {{ id }} }} }}");
    let data = app.data(&app.keys.analyst, &q, json!({})).await;
    data[list]["nodes"].as_array().unwrap().iter().map(id_of).collect()
}

async fn cursors(app: &TestApp, query: &str, path: &[&str]) -> Vec<String> {
    let mut v = app.data(&app.keys.analyst, query, json!({})).await;
    for p in path {
        v = v[p].clone();
    }
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().to_owned())
        .collect()
}

async fn planned_and_generic_answer_alike(app: TestApp) {
    let seeded = seed(&app).await;
    let generic = app.serve_with(|c| c.reads = Reads::Generic).await;
    let vars = json!({ "yes": true, "no": false });
    /// Every order of a list, with cursors of its first page in that order.
    async fn orders(app: &TestApp, list: &str, fields: &[&'static str]) -> Vec<(&'static str, &'static str, Vec<String>)> {
        let mut out = Vec::new();
        for field in fields {
            for dir in ["ASC", "DESC"] {
                let q = format!("{{ {list}(first: 20, orderBy: {{ field: {field}, direction: {dir} }}) {{ edges {{ cursor }} }} }}");
                out.push((*field, dir, cursors(app, &q, &[list, "edges"]).await));
            }
        }
        out
    }
    let leads = orders(&app, "leads", &["ID", "CREATED_AT", "UPDATED_AT"]).await;
    let campaigns = orders(&app, "campaigns", &["ID", "NAME", "CREATED_AT"]).await;
    let accounts = orders(&app, "accounts", &["ID", "NAME", "UPDATED_AT"]).await;
    let opportunities = orders(&app, "opportunities", &["ID", "CREATED_AT"]).await;
    let touchpoints = orders(&app, "touchpoints", &["OCCURRED_AT", "ID"]).await;
    // Cursors of one lead's touchpoints, newest first.
    let busy = &seeded.leads[6];
    let q = format!("{{ lead(id: \"{busy}\") {{ touchpoints(first: 10) {{ edges {{ cursor }} }} }} }}");
    let touch_cursors = cursors(&app, &q, &["lead", "touchpoints", "edges"]).await;
    assert!(touch_cursors.len() >= 5, "{touch_cursors:?}");
    let account_ids = ids(&app, "accounts").await;
    let campaign_ids = ids(&app, "campaigns").await;
    let opportunity_ids = ids(&app, "opportunities").await;

    let mut g = Gen::new(0x5eed_2026);
    let mut planned_runs = 0;
    let mut took_plan = 0;
    for round in 0..520 {
        // A list's page, in a random order, after or before a random cursor (which may belong
        // to another order: BAD_USER_INPUT on both paths).
        let list = |g: &mut Gen, name: &str, orders: &[(&str, &str, Vec<String>)]| {
            let (field, dir, _) = &orders[g.rng.below(orders.len())];
            let cs = &orders[g.rng.below(orders.len())].2;
            let cursor = &cs[g.rng.below(cs.len())];
            let page = match g.rng.below(6) {
                0 => format!("first: 4, after: \"{cursor}\""),
                1 => format!("last: 3, before: \"{cursor}\""),
                2 => "last: 5".to_owned(),
                3 => "first: 30".to_owned(),
                _ => "first: 6".to_owned(),
            };
            format!("{name}({page}, orderBy: {{ field: {field}, direction: {dir} }})")
        };
        let root = match round % 13 {
            0 | 1 => {
                let head = list(&mut g, "leads", &leads);
                let conn = g.connection("LeadConnection", "LeadEdge", true, |g| g.lead(0));
                format!("{head} {{ {conn} }}")
            }
            2 => {
                let id = match g.rng.below(7) {
                    0 => seeded.erased.clone(),
                    1 => seeded.foreign.clone(),
                    2 => seeded.merged.clone(),
                    _ => seeded.leads[g.rng.below(seeded.leads.len())].clone(),
                };
                let sel = g.lead(0);
                match g.rng.below(4) {
                    0 => format!("leadByEmail(email: \" LEAD{:02}@example.com\") {{ {sel} }}", g.rng.below(15)),
                    1 => format!("leadByExternalId(externalId: \"crm-{}\") {{ {sel} }}", g.rng.below(15)),
                    _ => format!("lead(id: \"{id}\") {{ {sel} }}"),
                }
            }
            3 => {
                // One lead's touchpoints after or before a cursor, in orders the cursor may not fit.
                let cursor = &touch_cursors[g.rng.below(touch_cursors.len())];
                let (page, order) = match g.rng.below(4) {
                    0 => (format!("first: 2, after: \"{cursor}\""), ""),
                    1 => (format!("last: 2, before: \"{cursor}\""), ""),
                    2 => (format!("first: 3, after: \"{cursor}\""), ", orderBy: { field: OCCURRED_AT }"),
                    _ => (format!("first: 3, after: \"{cursor}\""), ", orderBy: { field: ID }"),
                };
                let conn = g.connection("TouchpointConnection", "TouchpointEdge", false, |g| g.touchpoint());
                format!("lead(id: \"{busy}\") {{ id touchpoints({page}{order}) {{ {conn} }} }}")
            }
            4 => {
                let head = list(&mut g, "campaigns", &campaigns);
                let conn = g.connection("CampaignConnection", "CampaignEdge", true, |g| g.campaign(0));
                format!("{head} {{ {conn} }}")
            }
            5 => {
                let head = list(&mut g, "accounts", &accounts);
                let conn = g.connection("AccountConnection", "AccountEdge", true, |g| g.account(0));
                format!("{head} {{ {conn} }}")
            }
            6 => {
                let head = list(&mut g, "touchpoints", &touchpoints);
                let conn = g.connection("TouchpointConnection", "TouchpointEdge", true, |g| g.touchpoint());
                format!("{head} {{ {conn} }}")
            }
            7 => {
                let head = list(&mut g, "opportunities", &opportunities);
                let conn = g.connection("OpportunityConnection", "OpportunityEdge", true, |g| g.opportunity());
                format!("{head} {{ {conn} }}")
            }
            10 => {
                // By global ID: leads (erased, of another workspace, unknown), now and then
                // another type or a malformed ID, which takes the generic path.
                let pick = |g: &mut Gen| match g.rng.below(10) {
                    0 => seeded.erased.clone(),
                    1 => seeded.foreign.clone(),
                    2 => "bm9wZQ==".to_owned(),
                    3 if g.rng.chance(30) => account_ids[0].clone(),
                    _ => seeded.leads[g.rng.below(seeded.leads.len())].clone(),
                };
                let lead = g.lead(0);
                let sel = format!("__typename id ... on Lead {{ {lead} }} ... on Account {{ name }}");
                if g.rng.chance(50) {
                    format!("node(id: \"{}\") {{ {sel} }}", pick(&mut g))
                } else {
                    let ids: Vec<String> = (0..1 + g.rng.below(6)).map(|_| format!("\"{}\"", pick(&mut g))).collect();
                    format!("nodes(ids: [{}]) {{ {sel} }}", ids.join(", "))
                }
            }
            11 => {
                let page = ["first: 1", "first: 5", "last: 1"][g.rng.below(3)];
                let conn = g.connection("UserConnection", "UserEdge", true, |g| {
                    let sel = g.scalars("User", USER_SCALARS, 5);
                    sel.join(" ")
                });
                format!("users({page}) {{ {conn} }}")
            }
            12 => {
                let page = ["first: 1", "first: 5", "last: 1"][g.rng.below(3)];
                let conn = g.connection("PersonaConnection", "PersonaEdge", true, |g| g.persona());
                format!("personas({page}) {{ {conn} }}")
            }
            8 => {
                let sel = g.account(0);
                match g.rng.below(3) {
                    0 => format!("accountByExternalId(externalId: \"none\") {{ {sel} }}"),
                    _ => format!("account(id: \"{}\") {{ {sel} }}", account_ids[g.rng.below(account_ids.len())]),
                }
            }
            _ => {
                if g.rng.chance(50) {
                    let sel = g.campaign(0);
                    format!("campaign(id: \"{}\") {{ {sel} }}", campaign_ids[g.rng.below(campaign_ids.len())])
                } else {
                    let sel = g.opportunity();
                    format!(
                        "opportunity(id: \"{}\") {{ {sel} }}",
                        opportunity_ids[g.rng.below(opportunity_ids.len())]
                    )
                }
            }
        };
        let doc = g.document(root);
        app.statements.clear();
        let planned = body(&app, app.addr, &app.keys.analyst, &doc, &vars).await;
        if app.statements.take().iter().any(|s| s.contains(") AS b")) {
            took_plan += 1;
        }
        let reference = body(&app, generic, &app.keys.analyst, &doc, &vars).await;
        assert_eq!(
            answer(&planned),
            answer(&reference),
            "round {round}: the planned and the generic path differ for\n{doc}\n  planned: {planned}\n  generic: {reference}"
        );
        if !planned.contains("\"errors\"") {
            planned_runs += 1;
        }
    }
    // A merged lead's stub and the lead it was merged into, in one planned statement.
    let doc = format!(
        "{{ lead(id: \"{}\") {{ id erasedAt email mergedInto {{ id name email stage {{ key }} account {{ name }} mergedInto {{ id }} }} }} }}",
        seeded.merged
    );
    app.statements.clear();
    let planned = body(&app, app.addr, &app.keys.analyst, &doc, &vars).await;
    assert!(app.statements.take().iter().any(|s| s.contains(") AS b")), "planned");
    assert!(
        planned.contains(&format!("\"mergedInto\":{{\"id\":\"{}\"", seeded.leads[1])),
        "{planned}"
    );
    assert_eq!(answer(&planned), answer(&body(&app, generic, &app.keys.analyst, &doc, &vars).await));
    // Most rounds are answers, not errors.
    assert!(planned_runs > 250, "only {planned_runs} rounds without errors");
    // And most took the plan (its statements select from the page as `b`), the others the
    // generic path (a field without a plan, a wrong argument).
    assert!(took_plan > 250, "only {took_plan} rounds took the plan");
}
both!(planned_and_generic_answer_alike);

/// Q2 of BENCHMARKS.md: a page of leads with stage, account and the 5 latest touchpoints with
/// their campaign, in two statements whatever the page size (the key lookup is cached).
async fn a_nested_page_is_one_statement_per_level(app: TestApp) {
    let seeded = seed(&app).await;
    assert_eq!(seeded.leads.len(), 13);
    let q2 = "query($n: Int!) { leads(first: $n) { pageInfo { endCursor hasNextPage } nodes { id externalId email jobTitle createdAt
      stage { key } account { id name industry } touchpoints(first: 5) { nodes { id type occurredAt campaign { id name channel } } } } } }";
    app.data(&app.keys.analyst, "{ viewer { role } }", json!({})).await;
    for n in [1, 5, 13, 50] {
        app.statements.clear();
        let data = app.data(&app.keys.analyst, q2, json!({ "n": n })).await;
        let statements = app.statements.take();
        assert_eq!(data["leads"]["nodes"].as_array().unwrap().len(), n.min(13));
        assert!(
            statements.len() <= 2,
            "page of {n}: {} statements:\n{}",
            statements.len(),
            statements.join("\n")
        );
    }
    // Q1: one lead with its stage and account, in one statement.
    let q1 = "{ leadByExternalId(externalId: \"crm-2\") { id email stage { key } account { id name industry employeeCount country } } }";
    app.statements.clear();
    let data = app.data(&app.keys.analyst, q1, json!({})).await;
    assert_eq!(data["leadByExternalId"]["account"]["name"], "Ostsee");
    assert_eq!(app.statements.take().len(), 1);
}
both!(alone: a_nested_page_is_one_statement_per_level);

/// Whether `keys` occur in `body` in this order (each looked for after the one before).
fn in_order(body: &str, keys: &[&str]) -> bool {
    let mut at = 0;
    for k in keys {
        match body[at..].find(&format!("\"{k}\":")) {
            Some(i) => at += i + k.len(),
            None => return false,
        }
    }
    true
}

/// An object's keys come in the order of the query, also where a field that waits for the
/// database (`stage`, `owner`) comes before fields that are ready at once (async-graphql 7.2
/// wrote them in the order they finished: vendor/README.md).
async fn fields_come_in_query_order(app: TestApp) {
    seed(&app).await;
    let generic = app.serve_with(|c| c.reads = Reads::Generic).await;
    let q = "{ zLast: leads(first: 2) { nodes { stage { key } email b: id account { name } a: __typename } totalCount } viewer { role } }";
    let keys = [
        "data",
        "zLast",
        "nodes",
        "stage",
        "key",
        "email",
        "b",
        "account",
        "name",
        "a",
        "stage",
        "key",
        "email",
        "b",
        "account",
        "name",
        "a",
        "totalCount",
        "viewer",
        "role",
    ];
    for addr in [app.addr, generic] {
        let text = body(&app, addr, &app.keys.analyst, q, &json!({})).await;
        assert!(in_order(&text, &keys), "{text}");
    }
    // Through the resolvers alone (a field without a plan): `owner` and `opportunities` wait for
    // their loaders, `email` and `b` are ready at once.
    let q = "{ leads(first: 2) { nodes { owner { id } opportunities { name } email b: id stage { key } } } }";
    let text = body(&app, app.addr, &app.keys.analyst, q, &json!({})).await;
    let keys = [
        "owner",
        "opportunities",
        "email",
        "b",
        "stage",
        "key",
        "owner",
        "opportunities",
        "email",
        "b",
        "stage",
    ];
    assert!(in_order(&text, &keys), "{text}");
}
both!(fields_come_in_query_order);

/// Over the WebSocket, where no response text is spliced, a planned field's JSON is parsed back
/// into the response value: the same data as over HTTP.
async fn planned_reads_answer_alike_over_the_socket(app: TestApp) {
    seed(&app).await;
    let q =
        "{ leads(first: 5, orderBy: { field: CREATED_AT, direction: DESC }) { pageInfo { endCursor } edges { cursor node { id name status
      stage { kind } account { customerStatus leads(first: 2) { totalCount nodes { email } } }
      touchpoints(first: 2) { totalCount nodes { occurredAt campaign { budget { amount currency } totalCost { amount } startDate } } } } } }
      opportunities(first: 2) { nodes { amount { amount } contacts { isPrimary lead { email } } } } }";
    let http = app.data(&app.keys.analyst, q, json!({})).await;
    let mut socket = crate::websocket::connect(&app).await;
    crate::websocket::init(&mut socket, &app.keys.analyst).await;
    crate::websocket::send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": q } })).await;
    let reply = crate::websocket::next(&mut socket).await.unwrap();
    assert_eq!(reply["payload"]["data"], http, "{reply}");
    assert_eq!(http["leads"]["edges"].as_array().unwrap().len(), 5);
}
both!(planned_reads_answer_alike_over_the_socket);
