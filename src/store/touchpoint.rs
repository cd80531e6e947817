//! Touchpoint queries.
use chrono::{DateTime, Utc};
use entity::touchpoint;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, Select};

use super::Scoped;

#[derive(Debug, Default, Clone)]
pub struct TouchpointFilter {
    pub lead_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub types: Option<Vec<String>>,
    pub occurred_from: Option<DateTime<Utc>>,
    pub occurred_to: Option<DateTime<Utc>>,
}

pub fn select(ws: i64, f: &TouchpointFilter) -> Select<touchpoint::Entity> {
    use touchpoint::Column as C;
    let mut s = touchpoint::Entity::in_workspace(ws);
    if let Some(id) = f.lead_id {
        s = s.filter(C::LeadId.eq(id));
    }
    if let Some(id) = f.campaign_id {
        s = s.filter(C::CampaignId.eq(id));
    }
    if let Some(v) = &f.types {
        s = s.filter(C::TouchType.is_in(v.iter().cloned()));
    }
    if let Some(t) = f.occurred_from {
        s = s.filter(C::OccurredAt.gte(t));
    }
    if let Some(t) = f.occurred_to {
        s = s.filter(C::OccurredAt.lt(t));
    }
    s
}

/// Which end of a parent's touchpoints a nested page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Newest {
    First,
    Last,
}

fn order(newest: Newest) -> &'static str {
    match newest {
        Newest::First => "occurred_at DESC, id DESC",
        Newest::Last => "occurred_at ASC, id ASC",
    }
}

/// The first `limit` touchpoints of each lead.
pub async fn top_per_lead(
    db: &impl ConnectionTrait,
    ws: i64,
    lead_ids: &[i64],
    limit: u64,
    newest: Newest,
) -> Result<Vec<touchpoint::Model>, DbErr> {
    super::raw::top_n_per_parent::<touchpoint::Entity>(db, "touchpoints", "lead_id", order(newest), ws, lead_ids, limit, "1 = 1").await
}

/// The first `limit` touchpoints of each campaign.
pub async fn top_per_campaign(
    db: &impl ConnectionTrait,
    ws: i64,
    campaign_ids: &[i64],
    limit: u64,
    newest: Newest,
) -> Result<Vec<touchpoint::Model>, DbErr> {
    super::raw::top_n_per_parent::<touchpoint::Entity>(db, "touchpoints", "campaign_id", order(newest), ws, campaign_ids, limit, "1 = 1")
        .await
}
