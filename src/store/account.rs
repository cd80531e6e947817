//! Account (company) queries.
use chrono::{DateTime, Utc};
use entity::account;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, Select};

use super::Scoped;

#[derive(Debug, Default, Clone)]
pub struct AccountFilter {
    pub countries: Option<Vec<String>>,
    pub industries: Option<Vec<String>>,
    pub customer_statuses: Option<Vec<String>>,
    pub updated_since: Option<DateTime<Utc>>,
    pub name_prefix: Option<String>,
}

pub fn select(ws: i64, f: &AccountFilter) -> Select<account::Entity> {
    use account::Column as C;
    let mut s = account::Entity::in_workspace(ws);
    if let Some(v) = &f.countries {
        s = s.filter(C::Country.is_in(v.iter().cloned()));
    }
    if let Some(v) = &f.industries {
        s = s.filter(C::Industry.is_in(v.iter().cloned()));
    }
    if let Some(v) = &f.customer_statuses {
        s = s.filter(C::CustomerStatus.is_in(v.iter().cloned()));
    }
    if let Some(t) = f.updated_since {
        s = s.filter(C::UpdatedAt.gte(t));
    }
    if let Some(p) = f.name_prefix.as_deref().filter(|p| !p.is_empty()) {
        // A range on the (workspace_id, name, id) index: name >= p AND name < p + U+10FFFF.
        s = s.filter(C::Name.gte(p)).filter(C::Name.lt(format!("{p}\u{10FFFF}")));
    }
    s
}

pub async fn by_external_id(db: &impl ConnectionTrait, ws: i64, external_id: &str) -> Result<Option<account::Model>, DbErr> {
    with_external_id(ws, external_id).one(db).await
}

/// The account of workspace `ws` with this source-system ID.
pub fn with_external_id(ws: i64, external_id: &str) -> Select<account::Entity> {
    account::Entity::in_workspace(ws).filter(account::Column::ExternalId.eq(external_id))
}

pub async fn by_domain(db: &impl ConnectionTrait, ws: i64, domain: &str) -> Result<Option<account::Model>, DbErr> {
    use sea_orm::QueryOrder;
    account::Entity::in_workspace(ws)
        .filter(account::Column::Domain.eq(domain))
        .order_by_asc(account::Column::Id)
        .one(db)
        .await
}

/// The accounts of some leads, by ID (leads without an account have none).
pub async fn of_leads(
    db: &impl ConnectionTrait,
    ws: i64,
    leads: &[entity::lead::Model],
) -> Result<std::collections::HashMap<i64, account::Model>, DbErr> {
    let mut ids: Vec<i64> = leads.iter().filter_map(|l| l.account_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(5_000) {
        out.extend(
            super::by_ids::<account::Entity>(db, ws, chunk)
                .await?
                .into_iter()
                .map(|a| (a.id, a)),
        );
    }
    Ok(out)
}
