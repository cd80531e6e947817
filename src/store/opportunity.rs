//! Opportunity and buying-center queries.
use chrono::{DateTime, Utc};
use entity::{opportunity, opportunity_contact};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder, Select};

use super::Scoped;

#[derive(Debug, Default, Clone)]
pub struct OpportunityFilter {
    pub statuses: Option<Vec<String>>,
    pub account_id: Option<i64>,
    pub closed_from: Option<DateTime<Utc>>,
    pub closed_to: Option<DateTime<Utc>>,
    pub updated_since: Option<DateTime<Utc>>,
}

pub fn select(ws: i64, f: &OpportunityFilter) -> Select<opportunity::Entity> {
    use opportunity::Column as C;
    let mut s = opportunity::Entity::in_workspace(ws);
    if let Some(v) = &f.statuses {
        s = s.filter(C::Status.is_in(v.iter().cloned()));
    }
    if let Some(t) = f.updated_since {
        s = s.filter(C::UpdatedAt.gte(t));
    }
    if let Some(id) = f.account_id {
        s = s.filter(C::AccountId.eq(id));
    }
    if let Some(t) = f.closed_from {
        s = s.filter(C::ClosedAt.gte(t));
    }
    if let Some(t) = f.closed_to {
        s = s.filter(C::ClosedAt.lt(t));
    }
    s
}

pub async fn by_external_id(db: &impl ConnectionTrait, ws: i64, external_id: &str) -> Result<Option<opportunity::Model>, DbErr> {
    opportunity::Entity::in_workspace(ws)
        .filter(opportunity::Column::ExternalId.eq(external_id))
        .one(db)
        .await
}

/// Buying-center rows of the given opportunities, primary contact first.
pub async fn contacts_of(db: &impl ConnectionTrait, ws: i64, opportunity_ids: &[i64]) -> Result<Vec<opportunity_contact::Model>, DbErr> {
    opportunity_contact::Entity::in_workspace(ws)
        .filter(super::id_in(db, opportunity_contact::Column::OpportunityId, opportunity_ids))
        .order_by_desc(opportunity_contact::Column::IsPrimary)
        .order_by_asc(opportunity_contact::Column::Id)
        .all(db)
        .await
}

/// Buying-center rows of the given leads.
pub async fn contacts_of_leads(db: &impl ConnectionTrait, ws: i64, lead_ids: &[i64]) -> Result<Vec<opportunity_contact::Model>, DbErr> {
    opportunity_contact::Entity::in_workspace(ws)
        .filter(super::id_in(db, opportunity_contact::Column::LeadId, lead_ids))
        .all(db)
        .await
}
