//! Campaign and cost queries.
use chrono::NaiveDate;
use entity::{campaign, campaign_cost};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, QueryFilter, QueryOrder, Select};

use super::Scoped;

#[derive(Debug, Default, Clone)]
pub struct CampaignFilter {
    pub channels: Option<Vec<String>>,
    pub kinds: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    /// Campaigns running on this day: started on or before it, and not ended before it.
    pub active_on: Option<NaiveDate>,
}

pub fn select(ws: i64, f: &CampaignFilter) -> Select<campaign::Entity> {
    use campaign::Column as C;
    let mut s = campaign::Entity::in_workspace(ws);
    if let Some(v) = &f.channels {
        s = s.filter(C::Channel.is_in(v.iter().cloned()));
    }
    if let Some(v) = &f.kinds {
        s = s.filter(C::Kind.is_in(v.iter().cloned()));
    }
    if let Some(v) = &f.statuses {
        s = s.filter(C::Status.is_in(v.iter().cloned()));
    }
    if let Some(day) = f.active_on {
        s = s
            .filter(C::StartDate.lte(day))
            .filter(Condition::any().add(C::EndDate.is_null()).add(C::EndDate.gte(day)));
    }
    s
}

pub async fn by_external_id(db: &impl ConnectionTrait, ws: i64, external_id: &str) -> Result<Option<campaign::Model>, DbErr> {
    campaign::Entity::in_workspace(ws)
        .filter(campaign::Column::ExternalId.eq(external_id))
        .one(db)
        .await
}

pub async fn costs_of(db: &impl ConnectionTrait, ws: i64, campaign_ids: &[i64]) -> Result<Vec<campaign_cost::Model>, DbErr> {
    campaign_cost::Entity::in_workspace(ws)
        .filter(campaign_cost::Column::CampaignId.is_in(campaign_ids.iter().copied()))
        .order_by_asc(campaign_cost::Column::IncurredOn)
        .order_by_asc(campaign_cost::Column::Id)
        .all(db)
        .await
}
