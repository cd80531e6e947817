//! Campaigns and their costs.
use chrono::{NaiveDate, Utc};
use entity::{campaign, campaign_cost};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, IntoActiveModel};

use super::{Patch, author, clean};
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::change::ChangeKind;
use crate::domain::money;
use crate::domain::vocab::{CampaignKind, CampaignStatus, VOCAB_CHANNEL, VOCAB_COST_CATEGORY};
use crate::error::{AppError, ServiceError, ServiceResult, Validator};
use crate::events::changes::{self, NewChange};
use crate::store;

#[derive(Debug, Clone, Default)]
pub struct CampaignFields {
    pub name: Option<String>,
    pub channel: Option<String>,
    pub kind: Option<CampaignKind>,
    pub status: Option<CampaignStatus>,
    pub tracking_code: Patch<String>,
    pub start_date: Patch<NaiveDate>,
    pub end_date: Patch<NaiveDate>,
    pub budget: Patch<Decimal>,
    pub expected_revenue: Patch<Decimal>,
    /// The leads the campaign is expected to source (forecast against actual).
    pub expected_leads: Patch<i64>,
    /// `updateCampaign`: refuse the write (CONFLICT) unless the campaign is at this version now.
    pub expected_version: Option<i64>,
}

pub struct NewCost {
    /// A code of the workspace's cost-category vocabulary (case-insensitive).
    pub category: String,
    pub amount: Decimal,
    pub incurred_on: NaiveDate,
    pub note: Option<String>,
}

/// Checks fields and applies them to `m`.
async fn apply(db: &impl ConnectionTrait, ws: i64, m: &mut campaign::Model, f: CampaignFields, v: &mut Validator) -> Result<(), AppError> {
    if let Some(name) = f.name {
        match clean(Some(name)) {
            Some(n) => m.name = n,
            None => v.push(&["input", "name"], "REQUIRED", "a campaign needs a name"),
        }
    }
    if let Some(raw) = f.channel {
        match store::workspace::known_code(db, ws, VOCAB_CHANNEL, &raw).await? {
            Ok(c) => m.channel = c,
            Err(known) => v.push(
                &["input", "channel"],
                "INVALID",
                format!("{raw:?} is not a channel of this workspace ({})", known.join(", ")),
            ),
        }
    }
    if let Some(k) = f.kind {
        m.kind = k.as_str().to_owned();
    }
    if let Some(s) = f.status {
        m.status = s.as_str().to_owned();
    }
    f.tracking_code.map(|t| t.trim().to_owned()).apply(&mut m.tracking_code);
    f.start_date.apply(&mut m.start_date);
    f.end_date.apply(&mut m.end_date);
    if let (Some(s), Some(e)) = (m.start_date, m.end_date)
        && e < s
    {
        v.push(&["input", "endDate"], "INVALID", "must not be before the start date");
    }
    for (patch, target, field) in [
        (f.budget, &mut m.budget_minor, "budget"),
        (f.expected_revenue, &mut m.expected_revenue_minor, "expectedRevenue"),
    ] {
        match patch {
            Patch::Keep => {}
            Patch::Clear => *target = None,
            Patch::Set(d) => match money::to_minor_non_negative(d) {
                Ok(minor) => *target = Some(minor),
                Err(e) => v.push(&["input", field], "INVALID", format!("{field} {e}")),
            },
        }
    }
    match f.expected_leads {
        Patch::Set(n) if n < 0 => v.push(&["input", "expectedLeads"], "INVALID", "expectedLeads must not be negative"),
        p => {
            p.apply(&mut m.expected_leads);
        }
    }
    Ok(())
}

fn taken(e: AppError) -> ServiceError {
    match e {
        AppError::Conflict(_) => ServiceError::invalid(
            &["input", "trackingCode"],
            "TAKEN",
            "another campaign has this externalId or tracking code",
        ),
        e => e.into(),
    }
}

pub async fn create(db: &Db, p: Principal, external_id: Option<String>, f: CampaignFields) -> ServiceResult<campaign::Model> {
    let ws = p.workspace_id;
    let txn = db.begin_write(ws).await?;
    let currency = store::workspace::by_id(&*txn, ws)
        .await?
        .map(|w| w.currency)
        .unwrap_or_else(|| "EUR".into());
    let now = Utc::now();
    let mut m = campaign::Model {
        id: 0,
        workspace_id: ws,
        external_id: clean(external_id),
        name: String::new(),
        channel: String::new(),
        kind: CampaignKind::Acquisition.as_str().to_owned(),
        status: CampaignStatus::Planned.as_str().to_owned(),
        tracking_code: None,
        start_date: None,
        end_date: None,
        budget_minor: None,
        expected_revenue_minor: None,
        expected_leads: None,
        currency,
        touchpoint_count: 0,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let mut v = Validator::default();
    apply(&*txn, ws, &mut m, f, &mut v).await?;
    v.finish()?;
    if let Some(x) = &m.external_id
        && store::campaign::by_external_id(&*txn, ws, x).await?.is_some()
    {
        return Err(ServiceError::invalid(
            &["input", "externalId"],
            "TAKEN",
            "another campaign has this externalId",
        ));
    }
    let mut am = m.into_active_model().reset_all();
    am.id = sea_orm::ActiveValue::NotSet;
    let saved = am.insert(&*txn).await.map_err(|e| taken(e.into()))?;
    changes::record(&*txn, ws, &author(&p), now, vec![NewChange::created(&saved)]).await?;
    txn.commit().await?;
    Ok(saved)
}

pub async fn update(db: &Db, p: Principal, id: i64, f: CampaignFields) -> ServiceResult<campaign::Model> {
    let ws = p.workspace_id;
    let txn = db.begin_write(ws).await?;
    let current = store::by_id::<campaign::Entity>(&*txn, ws, id)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    ServiceError::check_version("campaign", f.expected_version, current.version)?;
    let mut m = current.clone();
    let mut v = Validator::default();
    apply(&*txn, ws, &mut m, f, &mut v).await?;
    v.finish()?;
    if m == current {
        return Ok(current);
    }
    let now = Utc::now();
    m.updated_at = now;
    m.version = current.version + 1;
    let mut am = m.into_active_model().reset_all();
    // Kept by the writes of touchpoints alone: a count read before a concurrent batch committed
    // must not be written back.
    am.touchpoint_count = sea_orm::ActiveValue::NotSet;
    let saved = super::write_at_version::<campaign::Entity>(&*txn, ws, "campaign", am, id, current.version)
        .await
        .map_err(|e| match e {
            ServiceError::App(e) => taken(e),
            e => e,
        })?;
    let change = NewChange::updated(ChangeKind::Updated, &current, &saved);
    changes::record(&*txn, ws, &author(&p), now, change.into_iter().collect()).await?;
    txn.commit().await?;
    Ok(saved)
}

pub async fn add_cost(db: &Db, p: Principal, campaign_id: i64, c: NewCost) -> ServiceResult<(campaign_cost::Model, campaign::Model)> {
    let ws = p.workspace_id;
    let amount = money::to_minor(c.amount).map_err(|e| ServiceError::invalid(&["input", "amount"], "INVALID", format!("amount {e}")))?;
    let txn = db.begin_write(ws).await?;
    let camp = store::by_id::<campaign::Entity>(&*txn, ws, campaign_id)
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    let category = store::workspace::known_code(&*txn, ws, VOCAB_COST_CATEGORY, &c.category)
        .await?
        .map_err(|known| {
            ServiceError::invalid(
                &["input", "category"],
                "INVALID",
                format!("{:?} is not a cost category of this workspace ({})", c.category, known.join(", ")),
            )
        })?;
    let now = Utc::now();
    let cost = campaign_cost::ActiveModel {
        workspace_id: Set(ws),
        campaign_id: Set(campaign_id),
        category: Set(category),
        amount_minor: Set(amount),
        incurred_on: Set(c.incurred_on),
        note: Set(clean(c.note)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    changes::record(&*txn, ws, &author(&p), now, vec![NewChange::created(&cost)]).await?;
    txn.commit().await?;
    Ok((cost, camp))
}
