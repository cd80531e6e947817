//! The bulk export (docs/export.md): every table of the demo downloaded as Parquet and CSV over
//! HTTP and read back by DuckDB (installed from PyPI into a virtual environment under the target
//! directory, once per test run), whose sums equal the GraphQL answers; erased leads without
//! their personal data; formula cells escaped; other workspaces' rows never exported; the CLI.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::OnceLock;

use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{TestApp, decode_id, error_code, id_of, scratch_dir, sqlite_file_url};

const TABLES: [&str; 10] = [
    "accounts",
    "campaigns",
    "cost_lines",
    "leads",
    "touchpoints",
    "stage_history",
    "opportunities",
    "contacts",
    "scores",
    "attribution_credits",
];

/// A Python with DuckDB: a virtual environment under the target directory, made (and DuckDB
/// installed into it from PyPI) by the first test that asks, reused by every later run.
fn duckdb_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("duckdb-venv");
        let python = venv.join("bin").join("python");
        let works = |p: &Path| {
            Command::new(p)
                .args(["-c", "import duckdb"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !works(&python) {
            let run = |cmd: &mut Command| {
                let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
                assert!(out.status.success(), "{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
            };
            run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
            run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "duckdb"]));
            assert!(works(&python), "duckdb does not import after its installation");
        }
        python
    })
}

/// Runs each of `queries` with DuckDB in `dir` (where the files are): the rows of each, as JSON
/// (decimals and times as their text).
async fn duckdb(dir: &Path, queries: &[String]) -> Vec<Vec<Vec<Value>>> {
    const SCRIPT: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
out = []
for q in sys.argv[1:]:
    out.append([[v if v is None or isinstance(v, (bool, int, str)) else str(v) for v in row] for row in con.execute(q).fetchall()])
print(json.dumps(out))
"#;
    let (dir, queries) = (dir.to_owned(), queries.to_vec());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(duckdb_python())
            .arg("-c")
            .arg(SCRIPT)
            .args(&queries)
            .current_dir(&dir)
            .output()
            .expect("run python");
        assert!(out.status.success(), "duckdb failed:\n{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON from the script")
    })
    .await
    .unwrap()
}

/// One query's rows.
async fn duck(dir: &Path, query: &str) -> Vec<Vec<Value>> {
    duckdb(dir, &[query.to_owned()]).await.remove(0)
}

/// GET `path` with `key` (none when empty): status and body.
async fn get(app: &TestApp, key: &str, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = app.client.get(app.url(path));
    if !key.is_empty() {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

/// Downloads every table in both formats with `key` into a new directory.
async fn download_all(app: &TestApp, key: &str, prefix: &str) -> PathBuf {
    let dir = scratch_dir(prefix);
    std::fs::create_dir_all(&dir).unwrap();
    for table in TABLES {
        for ext in ["parquet", "csv"] {
            let (status, headers, body) = get(app, key, &format!("/export/tables/{table}.{ext}")).await;
            assert_eq!(status, 200, "{table}.{ext}: {}", String::from_utf8_lossy(&body));
            let content_type = headers[reqwest::header::CONTENT_TYPE].to_str().unwrap();
            assert!(content_type.starts_with(if ext == "csv" {
                "text/csv"
            } else {
                "application/vnd.apache.parquet"
            }));
            std::fs::write(dir.join(format!("{table}.{ext}")), body).unwrap();
        }
    }
    dir
}

/// The CSV file's rows as cells, the header first.
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.is_empty() || bytes.ends_with(b"\r\n"), "{} ends with CRLF", path.display());
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("a decimal string, got {v}"))).unwrap()
}

/// Every page of `campaigns` with their total cost.
async fn total_costs(app: &TestApp, key: &str) -> BTreeMap<String, Decimal> {
    let q = "query($after: String) { campaigns(first: 100, after: $after) { nodes { id totalCost { amount } } pageInfo { hasNextPage endCursor } } }";
    let mut costs = BTreeMap::new();
    let mut after = Value::Null;
    loop {
        let page = app.data(key, q, json!({ "after": after })).await["campaigns"].clone();
        for n in page["nodes"].as_array().unwrap() {
            costs.insert(id_of(n), dec(&n["totalCost"]["amount"]));
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return costs;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// The demo downloaded with an ANALYST key: DuckDB reads every Parquet file, finds the column
/// types of docs/export.md, and sums to what GraphQL answers; each CSV has the same columns and
/// rows. Another workspace's key downloads the same tables empty.
async fn duckdb_reads_the_demo_and_its_sums_are_the_apis(app: TestApp) {
    app.demo().await;
    let (analyst, _) = closedloop::service::workspace::create_key(
        &app.db,
        closedloop::cli::demo::WORKSPACE,
        closedloop::domain::vocab::Role::Analyst,
        "export",
        None,
    )
    .await
    .unwrap();
    let dir = download_all(&app, &analyst, "export-demo").await;

    // Types as DuckDB reads them.
    let types: BTreeMap<String, String> = duck(
        &dir,
        "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM 'attribution_credits.parquet')",
    )
    .await
    .into_iter()
    .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_str().unwrap().to_owned()))
    .collect();
    assert_eq!(types["credit"], "DECIMAL(18,2)");
    assert_eq!(types["conversions"], "DECIMAL(18,6)");
    assert_eq!(types["closed_at"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(types["touches"], "BIGINT");
    assert_eq!(types["model_is_current"], "BOOLEAN");
    assert_eq!(types["opportunity_id"], "VARCHAR");
    let costs = duck(
        &dir,
        "SELECT column_type FROM (DESCRIBE SELECT amount, incurred_on, created_at FROM 'cost_lines.parquet')",
    )
    .await;
    assert_eq!(
        costs,
        [[json!("DECIMAL(18,2)")], [json!("DATE")], [json!("TIMESTAMP WITH TIME ZONE")]]
    );

    // Leads: the API lists those not erased.
    let q = "{ leads(first: 1) { totalCount } }";
    let total = app.data(&analyst, q, json!({})).await["leads"]["totalCount"].as_i64().unwrap();
    let counted = duck(&dir, "SELECT count(*) FROM 'leads.parquet' WHERE erased_at IS NULL").await;
    assert_eq!(counted, [[json!(total)]]);
    assert!(total > 100, "the demo has leads: {total}");

    // Cost lines per campaign: `Campaign.totalCost` (campaigns without a line cost 0).
    let api = total_costs(&app, &analyst).await;
    let summed: BTreeMap<String, Decimal> = duck(
        &dir,
        "SELECT campaign_id, CAST(SUM(amount) AS VARCHAR) FROM 'cost_lines.parquet' GROUP BY 1",
    )
    .await
    .into_iter()
    .map(|r| (r[0].as_str().unwrap().to_owned(), dec(&r[1])))
    .collect();
    assert!(!summed.is_empty(), "the demo has cost lines");
    for (campaign, cost) in &api {
        assert_eq!(summed.get(campaign).copied().unwrap_or_default(), *cost, "{campaign}");
    }
    assert!(summed.keys().all(|c| api.contains_key(c)));

    // Attribution credits per campaign of the current LINEAR version over the demo's range:
    // the ledger's report, row for row (UNATTRIBUTED: no lead; NO_CAMPAIGN: a lead, no campaign).
    let q = "query($range: DateTimeRangeInput!) { attribution(model: { kind: LINEAR }, range: $range, groupBy: CAMPAIGN, source: LEDGER) {
        modelVersion currency rows { key revenue { amount } } totals { revenue { amount } } } }";
    let range = json!({ "from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z" });
    let report = app.data(&analyst, q, json!({ "range": range })).await["attribution"].clone();
    let api: BTreeMap<String, Decimal> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().unwrap().to_owned(), dec(&r["revenue"]["amount"])))
        .collect();
    let sql = format!(
        "SELECT coalesce(campaign_id, CASE WHEN lead_id IS NULL THEN 'UNATTRIBUTED' ELSE 'NO_CAMPAIGN' END), CAST(SUM(credit) AS VARCHAR)
         FROM 'attribution_credits.parquet'
         WHERE model = 'LINEAR' AND model_version = {} AND currency = '{}'
           AND closed_at >= TIMESTAMPTZ '2024-01-01 00:00:00+00' AND closed_at < TIMESTAMPTZ '2026-01-01 00:00:00+00'
         GROUP BY 1",
        report["modelVersion"].as_i64().unwrap(),
        report["currency"].as_str().unwrap()
    );
    let summed: BTreeMap<String, Decimal> = duck(&dir, &sql)
        .await
        .into_iter()
        .map(|r| (r[0].as_str().unwrap().to_owned(), dec(&r[1])))
        .collect();
    assert!(api.len() > 3, "{api:?}");
    assert_eq!(summed, api);
    assert_eq!(summed.values().sum::<Decimal>(), dec(&report["totals"]["revenue"]["amount"]));

    // Each CSV: the Parquet file's columns and rows; its money cells as DuckDB prints them.
    let mut queries = Vec::new();
    for table in TABLES {
        queries.push(format!("SELECT column_name FROM (DESCRIBE SELECT * FROM '{table}.parquet')"));
        queries.push(format!("SELECT count(*) FROM '{table}.parquet'"));
    }
    let answers = duckdb(&dir, &queries).await;
    for (i, table) in TABLES.iter().enumerate() {
        let columns: Vec<String> = answers[2 * i].iter().map(|r| r[0].as_str().unwrap().to_owned()).collect();
        let rows = csv_rows(&dir.join(format!("{table}.csv")));
        assert_eq!(rows[0], columns, "{table}");
        assert_eq!(json!(rows.len() - 1), answers[2 * i + 1][0][0], "{table}");
        assert!(rows.len() > 1, "the demo has {table}");
    }
    let amounts: BTreeMap<String, String> = duck(&dir, "SELECT id, CAST(amount AS VARCHAR) FROM 'cost_lines.parquet'")
        .await
        .into_iter()
        .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_str().unwrap().to_owned()))
        .collect();
    let rows = csv_rows(&dir.join("cost_lines.csv"));
    let amount = rows[0].iter().position(|h| h == "amount").unwrap();
    let from_csv: BTreeMap<String, String> = rows[1..].iter().map(|r| (r[0].clone(), r[amount].clone())).collect();
    assert_eq!(from_csv, amounts);

    // Another workspace's key: the same files, without a row.
    let other = download_all(&app, &app.other.analyst, "export-other").await;
    let queries: Vec<String> = TABLES.iter().map(|t| format!("SELECT count(*) FROM '{t}.parquet'")).collect();
    for (table, answer) in TABLES.iter().zip(duckdb(&other, &queries).await) {
        assert_eq!(answer, [[json!(0)]], "{table} of Globex");
        assert_eq!(csv_rows(&other.join(format!("{table}.csv"))).len(), 1, "{table}.csv of Globex");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}
both!(duckdb_reads_the_demo_and_its_sums_are_the_apis);

/// An erased lead's personal fields are exported as NULL, even where the row still holds some;
/// a cell that begins like a formula is quoted in the CSV; money is "1234.50"; the workspace is
/// the key's; an unknown table is 404 and a missing or wrong key 401.
async fn erased_leads_formulas_and_refusals(app: TestApp) {
    let ada = id_of(
        &app.upsert_lead(
            json!({ "email": "ada@example.com", "firstName": "=cmd|' /C calc'!A0", "lastName": "+1+1", "phone": "+49 30 1234" }),
        )
        .await,
    );
    let bob = app.lead("bob@example.com").await;
    let erase = "mutation($id: ID!) { eraseLead(input: { id: $id }) { lead { id } userErrors { code } } }";
    app.mutate(&app.keys.admin, "eraseLead", erase, json!({ "id": bob })).await;
    // As if a later write had put personal data back into the erased row.
    entity::lead::Entity::update_many()
        .col_expr(entity::lead::Column::Email, Expr::value("ghost@example.com"))
        .col_expr(entity::lead::Column::City, Expr::value("Berlin"))
        .filter(entity::lead::Column::Id.eq(decode_id(&bob)))
        .exec(&app.db.conn)
        .await
        .unwrap();
    let campaign = app.simple_campaign("@SUM(1+1)").await;
    let q = "mutation($input: AddCampaignCostInput!) { addCampaignCost(input: $input) { userErrors { field message code } } }";
    let cost = json!({ "campaignId": campaign, "amount": "1234.5", "category": "MEDIA", "incurredOn": "2026-03-01" });
    app.mutate(&app.keys.marketing, "addCampaignCost", q, json!({ "input": cost }))
        .await;
    // A lead of Globex, which Acme's export must not show.
    let q = "mutation($input: UpsertLeadInput!) { upsertLead(input: $input) { lead { id } userErrors { code } } }";
    let globex = app
        .data(&app.other.admin, q, json!({ "input": { "email": "eve@globex.example" } }))
        .await;
    let globex = id_of(&globex["upsertLead"]["lead"]);

    let (status, _, body) = get(&app, &app.keys.analyst, "/export/tables/leads.csv").await;
    assert_eq!(status, 200);
    let rows = csv_rows_of(&body);
    let col = |name: &str| {
        rows[0]
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", rows[0]))
    };
    let row = |id: &str| rows.iter().find(|r| r[0] == id).unwrap_or_else(|| panic!("{id} in {rows:?}"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(!rows.iter().any(|r| r[0] == globex));
    assert_eq!(row(&ada)[col("first_name")], "'=cmd|' /C calc'!A0");
    assert_eq!(row(&ada)[col("last_name")], "'+1+1");
    assert_eq!(row(&ada)[col("phone")], "'+49 30 1234");
    assert_eq!(row(&ada)[col("email")], "ada@example.com");
    for personal in ["email", "city", "first_name", "external_id", "consents", "custom_fields"] {
        assert_eq!(row(&bob)[col(personal)], "", "{personal} of the erased lead");
    }
    assert_ne!(row(&bob)[col("erased_at")], "");
    assert_eq!(row(&bob)[col("stage")], row(&ada)[col("stage")]);

    let (_, _, body) = get(&app, &app.keys.sales, "/export/tables/campaigns.csv").await;
    let rows = csv_rows_of(&body);
    assert_eq!(rows[1][rows[0].iter().position(|h| h == "name").unwrap()], "'@SUM(1+1)");
    let (_, _, body) = get(&app, &app.keys.marketing, "/export/tables/cost_lines.csv").await;
    let rows = csv_rows_of(&body);
    assert_eq!(rows[1][rows[0].iter().position(|h| h == "amount").unwrap()], "1234.50");

    // The Parquet file of the leads, read by DuckDB.
    let dir = scratch_dir("export-erased");
    std::fs::create_dir_all(&dir).unwrap();
    let (status, headers, body) = get(&app, &app.keys.analyst, "/export/tables/leads.parquet").await;
    assert_eq!(status, 200);
    assert_eq!(
        headers[reqwest::header::CONTENT_DISPOSITION],
        "attachment; filename=\"leads.parquet\""
    );
    std::fs::write(dir.join("leads.parquet"), body).unwrap();
    let q = format!("SELECT email, city, first_name, erased_at IS NOT NULL FROM 'leads.parquet' WHERE id = '{bob}'");
    assert_eq!(duck(&dir, &q).await, [[Value::Null, Value::Null, Value::Null, json!(true)]]);
    let q = format!("SELECT email, first_name FROM 'leads.parquet' WHERE id = '{ada}'");
    assert_eq!(duck(&dir, &q).await, [[json!("ada@example.com"), json!("=cmd|' /C calc'!A0")]]);
    std::fs::remove_dir_all(&dir).unwrap();

    // Refusals, as JSON errors with a code.
    for path in ["/export/tables/users.parquet", "/export/tables/leads.xlsx", "/export/tables/leads"] {
        let (status, _, body) = get(&app, &app.keys.analyst, path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(error_code(&serde_json::from_slice(&body).unwrap()), "NOT_FOUND", "{path}");
    }
    let (status, _, body) = get(&app, "", "/export/tables/leads.parquet").await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&serde_json::from_slice(&body).unwrap()), "UNAUTHENTICATED");
    let (status, _, _) = get(&app, "not-a-key", "/export/tables/leads.csv").await;
    assert_eq!(status, 401);
    // The scoring cells' export keeps its own route.
    let (status, _, body) = get(&app, &app.keys.analyst, "/export/leads.csv").await;
    assert_ne!(status, 404, "{}", String::from_utf8_lossy(&body));
}
both!(erased_leads_formulas_and_refusals);

/// An export with `since` holds the rows that changed after the cursor an earlier one ended at,
/// and ends at a later cursor; a warehouse that loads it on top of the earlier one has the
/// workspace as it is now.
async fn an_incremental_export_has_what_changed_since_the_cursor(app: TestApp) {
    let ada = app.lead("ada@x.test").await;
    let bob = app.lead("bob@x.test").await;
    let campaign = app.simple_campaign("Fair").await;
    app.record(json!([{ "leadId": bob, "campaignId": campaign, "type": "EMAIL_OPEN", "occurredAt": "2026-03-01T10:00:00Z" }]))
        .await;
    let (status, headers, body) = get(&app, &app.keys.analyst, "/export/tables/leads.csv").await;
    assert_eq!(status, 200);
    assert_eq!(csv_rows_of(&body).len(), 1 + 2);
    let first = headers["x-change-cursor"].to_str().unwrap().to_owned();

    // Since then: Ada changed, Cy is new, a touchpoint of Bob was recorded.
    let q = "mutation($i: UpdateLeadInput!) { updateLead(input: $i) { userErrors { code } } }";
    app.mutate(&app.keys.admin, "updateLead", q, json!({ "i": { "id": ada, "firstName": "Ada" } }))
        .await;
    app.lead("cy@x.test").await;
    app.record(json!([{ "leadId": bob, "campaignId": campaign, "type": "EMAIL_CLICK", "occurredAt": "2026-03-02T10:00:00Z" }]))
        .await;
    let since = |table: &str, cursor: &str| format!("/export/tables/{table}.csv?since={cursor}");
    let (status, headers, body) = get(&app, &app.keys.analyst, &since("leads", &first)).await;
    assert_eq!(status, 200);
    let rows = csv_rows_of(&body);
    let email = rows[0].iter().position(|c| c == "email").unwrap();
    let emails: Vec<&str> = rows[1..].iter().map(|r| r[email].as_str()).collect();
    assert_eq!(emails, ["ada@x.test", "cy@x.test"], "{rows:?}");
    let version = rows[0].iter().position(|c| c == "version").unwrap();
    assert_eq!(rows[1][version], "2", "Ada's version: {rows:?}");
    let second = headers["x-change-cursor"].to_str().unwrap().to_owned();
    assert_ne!(second, first);
    let (_, _, body) = get(&app, &app.keys.analyst, &since("touchpoints", &first)).await;
    let rows = csv_rows_of(&body);
    assert_eq!(rows.len(), 1 + 1, "{rows:?}");
    assert!(rows[1].contains(&"EMAIL_CLICK".to_owned()), "{rows:?}");
    // A table the feed does not follow comes whole; nothing changed after the second cursor.
    let (status, _, _) = get(&app, &app.keys.analyst, &since("scores", &second)).await;
    assert_eq!(status, 200);
    let (_, headers, body) = get(&app, &app.keys.analyst, &since("leads", &second)).await;
    assert_eq!(csv_rows_of(&body).len(), 1, "the header only");
    assert_eq!(headers["x-change-cursor"].to_str().unwrap(), second);
    // A malformed cursor, or one ahead of the workspace's feed (another workspace's).
    let (status, _, body) = get(&app, &app.keys.analyst, &since("leads", "nonsense")).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = get(&app, &app.other.analyst, &since("leads", &second)).await;
    assert_eq!(status, 400);
}
both!(an_incremental_export_has_what_changed_since_the_cursor);

fn csv_rows_of(body: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// `closedloop export DIR` on a SQLite file: one file per table (the `--tables` asked for), the
/// same rows as over HTTP, progress on stderr, and `export leads` still there beside it.
#[tokio::test]
async fn the_cli_writes_one_file_per_table() {
    let dir = scratch_dir("export-tables-cli");
    let app = TestApp::spawn_sqlite_file(&dir).await;
    for email in ["ada@example.com", "bob@example.com", "cy@example.com"] {
        app.lead(email).await;
    }
    app.simple_campaign("Newsletter").await;
    let url = sqlite_file_url(&dir.join("closedloop.db"));
    let out_dir = dir.join("out");
    let run = |args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_closedloop"))
                .args(&args)
                .args(["--database-url", &url])
                .env_remove("DATABASE_URL")
                .env_remove("LOG_FORMAT")
                .env_remove("RUST_LOG")
                .output()
                .expect("run closedloop")
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let out_arg = out_dir.to_str().unwrap();
    let out = run(args(&[
        "export",
        out_arg,
        "--workspace",
        "Acme",
        "--tables",
        "leads,campaigns,scores",
    ]))
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("export: leads 3 rows in ")), "{stderr}");
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["campaigns.parquet", "export.json", "leads.parquet", "scores.parquet"]);
    // The manifest names the change cursor the export ends at.
    let manifest: Value = serde_json::from_slice(&std::fs::read(out_dir.join("export.json")).unwrap()).unwrap();
    assert!(manifest["cursor"].is_string(), "{manifest}");
    assert_eq!(manifest["tables"].as_array().unwrap().len(), 3, "{manifest}");
    let counts = duckdb(
        &out_dir,
        &[
            "SELECT count(*) FROM 'leads.parquet'".into(),
            "SELECT count(*) FROM 'campaigns.parquet'".into(),
            "SELECT count(*) FROM 'scores.parquet'".into(),
        ],
    )
    .await;
    assert_eq!(counts, [[[json!(3)]], [[json!(1)]], [[json!(0)]]]);
    let (_, _, http) = get(&app, &app.keys.admin, "/export/tables/leads.csv").await;

    let out = run(args(&[
        "export",
        out_arg,
        "--workspace",
        "Acme",
        "--format",
        "csv",
        "--tables",
        "leads",
    ]))
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(out_dir.join("leads.csv")).unwrap(), http);

    let out = run(args(&["export", out_arg, "--workspace", "Acme", "--tables", "users"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"users\" is not an exported table"));
    let out = run(args(&["export", "leads", "--workspace", "Acme", "--query", "cell=Z9"]))
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a cell"),
        "export leads is a subcommand still"
    );
    drop(app);
    std::fs::remove_dir_all(&dir).unwrap();
}
