//! `GET /export/leads.csv` writes no cell a spreadsheet would run as a formula.
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::helpers::{TestApp, decode_id, id_of};

/// The export's rows as parsed CSV cells, the header first.
async fn export_rows(app: &TestApp) -> Vec<Vec<String>> {
    let resp = app
        .client
        .get(app.url("/export/leads.csv"))
        .bearer_auth(&app.keys.analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await.unwrap();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

async fn cells_that_begin_like_formulas_are_exported_with_a_quote_first(app: TestApp) {
    let q = "mutation($input: ScoringModelInput!) { createScoringModel(input: $input) { userErrors { field message code } } }";
    let model = json!({ "name": "Default", "profileRules": [
        { "attribute": "jobTitle", "operator": "CONTAINS", "values": ["student"], "points": -50 },
    ] });
    app.mutate(&app.keys.marketing, "createScoringModel", q, json!({ "input": model }))
        .await;
    let account = app.account(json!({ "name": "@SUM(1+1)*cmd|' /C calc'!A0" })).await;
    let lead = app
        .upsert_lead(json!({
            "email": "formula@example.com",
            "firstName": "=cmd|' /C calc'!A0",
            "lastName": "+1+1",
            "jobTitle": "-2+3 student",
            "accountId": account,
        }))
        .await;
    // The API trims names, so leading tabs and carriage returns are written to the table.
    let (tab, cr) = (app.lead("tab@example.com").await, app.lead("cr@example.com").await);
    for (id, name) in [(&tab, "\t=1+1"), (&cr, "\r=1+1")] {
        entity::lead::Entity::update_many()
            .col_expr(entity::lead::Column::FirstName, Expr::value(name))
            .filter(entity::lead::Column::Id.eq(decode_id(id)))
            .exec(&app.db.conn)
            .await
            .unwrap();
    }

    let rows = export_rows(&app).await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let row = |id: &str| rows.iter().find(|r| r[0] == id).unwrap_or_else(|| panic!("{id} in {rows:?}"));
    let formula = row(&id_of(&lead));
    assert_eq!(formula[col("firstName")], "'=cmd|' /C calc'!A0");
    assert_eq!(formula[col("lastName")], "'+1+1");
    assert_eq!(formula[col("jobTitle")], "'-2+3 student");
    assert_eq!(formula[col("account")], "'@SUM(1+1)*cmd|' /C calc'!A0");
    assert_eq!(formula[col("email")], "formula@example.com");
    // A negative score is a plain number: kept as a number, not turned into text.
    assert_eq!(formula[col("profileScore")], "-50");
    assert_eq!(row(&tab)[col("firstName")], "'\t=1+1");
    assert_eq!(row(&cr)[col("firstName")], "'\r=1+1");
}
both!(cells_that_begin_like_formulas_are_exported_with_a_quote_first);
