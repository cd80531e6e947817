//! The tables read by position (`store::decode`) come out exactly as sea-orm's own decoding
//! gives them: every column, NULLs, JSON, dates and times, on both databases, whether the
//! columns come in the entity's order (`SELECT "t"."id", ...`) or the table's (`SELECT *`).
use closedloop::store::Scoped;
use entity::{account, campaign, funnel_stage, lead, touchpoint};
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, QueryOrder, Statement};
use serde_json::json;

use crate::helpers::TestApp;

async fn same_as_sea_orm<E>(app: &TestApp, table: &str, min_rows: usize)
where
    E: Scoped,
    E::Model: PartialEq + std::fmt::Debug,
{
    let db = &app.db.conn;
    let by_sea_orm = E::find().order_by_asc(E::id_col()).all(db).await.unwrap();
    assert!(by_sea_orm.len() >= min_rows, "{table}: only {} rows", by_sea_orm.len());

    let entity_order = closedloop::store::all(db, E::find().order_by_asc(E::id_col())).await.unwrap();
    assert_eq!(entity_order, by_sea_orm, "{table}, columns in the entity's order");

    let sql = format!("SELECT * FROM {table} ORDER BY id");
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    let by_position = E::models(&rows).unwrap();
    let by_name: Vec<E::Model> = rows.iter().map(|r| E::Model::from_query_result(r, "").unwrap()).collect();
    assert_eq!(by_position, by_name, "{table}, columns in the table's order");
    assert_eq!(by_position, by_sea_orm, "{table}");
}

async fn models_decode_as_sea_orm_decodes_them(app: TestApp) {
    app.demo().await;
    // A lead with custom fields, and an erased one (NULLs where the demo has values).
    app.upsert_lead(json!({ "email": "custom@example.com", "firstName": "Dora", "customFields": { "score": 7, "tags": ["a"] } }))
        .await;
    let id = app.lead("erased@example.com").await;
    let erase = "mutation($input: EraseLeadInput!) { eraseLead(input: $input) { userErrors { code } } }";
    let erased = app.data(&app.keys.admin, erase, json!({ "input": { "id": id } })).await;
    assert_eq!(erased["eraseLead"]["userErrors"], json!([]));

    let leads = closedloop::store::all(&app.db.conn, lead::Entity::find()).await.unwrap();
    let custom = leads.iter().find(|l| l.email.as_deref() == Some("custom@example.com")).unwrap();
    assert_eq!(custom.custom_fields, json!({ "score": 7, "tags": ["a"] }));
    assert!(leads.iter().any(|l| l.erased_at.is_some() && l.email.is_none()));

    same_as_sea_orm::<lead::Entity>(&app, "leads", 1_000).await;
    same_as_sea_orm::<account::Entity>(&app, "accounts", 10).await;
    same_as_sea_orm::<campaign::Entity>(&app, "campaigns", 5).await;
    same_as_sea_orm::<touchpoint::Entity>(&app, "touchpoints", 1_000).await;
    same_as_sea_orm::<funnel_stage::Entity>(&app, "funnel_stages", 3).await;
}
both!(models_decode_as_sea_orm_decodes_them);

/// A result whose column has another type than the model's field is refused, naming the
/// column, not read as something else (PostgreSQL checks the column once per result, SQLite
/// each value).
async fn a_column_of_another_type_is_refused(app: TestApp) {
    app.demo().await;
    let db = &app.db.conn;
    let sql = "SELECT id, workspace_id, external_id, name, domain, industry, \
               CAST(employee_count AS TEXT) AS employee_count, annual_revenue_minor, country, \
               customer_status, created_at, updated_at, version FROM accounts WHERE employee_count IS NOT NULL ORDER BY id";
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    assert!(rows.len() >= 2, "the demo has accounts with a head count");
    let err = account::Entity::models(&rows).unwrap_err().to_string();
    assert!(err.contains("employee_count"), "{err}");
}
both!(a_column_of_another_type_is_refused);
