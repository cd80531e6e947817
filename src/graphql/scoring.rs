//! Lead scoring: scoring models, lead scores with their explanation, and the scoring matrix.
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::Utc;
use entity::scoring_model;

use crate::domain::scoring::{self as domain, Cell, Grade as DomainGrade};
use crate::domain::vocab::Action;
use crate::graphql::campaign::Campaign;
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, UserError, gql_error, query_result, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::LeadFilter;
use crate::graphql::loaders::{AccountId, CampaignId, LeadAllTouchpoints, LeadId, LeadScoreAt, Loaders, ScoringModelId};
use crate::graphql::persona::PersonaOperator;
use crate::graphql::scalars::{DateTime, Decimal};
use crate::graphql::touchpoint::Touchpoint;
use crate::service::persona::CriterionInput;
use crate::service::scoring::{self as service, Scorer};
use crate::service::scoring_model::{self as models, ActivityRuleInput, ModelInput, ProfileRuleInput};

/// A profile grade: A (best fit) to D.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl From<DomainGrade> for Grade {
    fn from(g: DomainGrade) -> Self {
        match g {
            DomainGrade::A => Grade::A,
            DomainGrade::B => Grade::B,
            DomainGrade::C => Grade::C,
            DomainGrade::D => Grade::D,
        }
    }
}

impl From<Grade> for DomainGrade {
    fn from(g: Grade) -> Self {
        match g {
            Grade::A => DomainGrade::A,
            Grade::B => DomainGrade::B,
            Grade::C => DomainGrade::C,
            Grade::D => DomainGrade::D,
        }
    }
}

/// A cell of the scoring matrix: profile grade A-D and activity band 1-4 (A1 best, D4 worst).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[rustfmt::skip]
pub enum ScoringCell { A1, A2, A3, A4, B1, B2, B3, B4, C1, C2, C3, C4, D1, D2, D3, D4 }

const CELLS: [ScoringCell; 16] = {
    use ScoringCell::*;
    [A1, A2, A3, A4, B1, B2, B3, B4, C1, C2, C3, C4, D1, D2, D3, D4]
};

impl From<Cell> for ScoringCell {
    fn from(c: Cell) -> Self {
        let row = DomainGrade::ALL.iter().position(|g| *g == c.grade).unwrap_or(3);
        CELLS[row * 4 + usize::from(c.band.clamp(1, 4) - 1)]
    }
}

impl From<ScoringCell> for Cell {
    fn from(c: ScoringCell) -> Self {
        let i = CELLS.iter().position(|x| *x == c).unwrap_or(15);
        Cell {
            grade: DomainGrade::ALL[i / 4],
            band: (i % 4) as u8 + 1,
        }
    }
}

pub struct ScoringModel(pub scoring_model::Model);

/// A profile rule: a condition on a lead or account attribute, worth `points`.
#[derive(SimpleObject)]
pub struct ProfileRule {
    pub attribute: String,
    pub operator: String,
    pub values: Json<serde_json::Value>,
    pub points: i32,
}

/// Activity points for a touchpoint type (for one campaign when `campaign` is set).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ActivityRule {
    #[graphql(name = "type")]
    pub touch_type: String,
    #[graphql(skip)]
    pub campaign_id: Option<i64>,
    pub points: i32,
    /// At most this many points per lead, type and UTC day.
    pub daily_cap: Option<i32>,
}

#[async_graphql::ComplexObject]
impl ActivityRule {
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        let Some(id) = self.campaign_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(CampaignId(id)).await?.map(Campaign))
    }
}

/// Minimum profile score of grades A, B and C (below C's: D).
#[derive(SimpleObject, InputObject, Clone, Copy)]
#[graphql(input_name = "GradeBandsInput")]
pub struct GradeBands {
    pub a: i32,
    pub b: i32,
    pub c: i32,
}

/// Minimum activity score of bands 1, 2 and 3 (below band 3's: band 4).
#[derive(SimpleObject, InputObject, Clone, Copy)]
#[graphql(input_name = "ActivityBandsInput")]
pub struct ActivityBands {
    pub band1: i32,
    pub band2: i32,
    pub band3: i32,
}

#[Object]
impl ScoringModel {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::ScoringModel, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The default model drives the MQL rule (automatic handoffs).
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
    /// Bumped by every change of the parameters.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// Activity points halve every this many days.
    async fn half_life_days(&self) -> Decimal {
        Decimal(rust_decimal::Decimal::from(self.0.half_life_seconds) / rust_decimal::Decimal::from(domain::SECONDS_PER_DAY))
    }
    async fn profile_rules(&self) -> Vec<ProfileRule> {
        Scorer::new(self.0.clone())
            .model
            .profile_rules
            .into_iter()
            .map(|r| ProfileRule {
                attribute: r.attribute,
                operator: r.operator,
                values: Json(r.values),
                points: r.points,
            })
            .collect()
    }
    async fn grade_bands(&self) -> GradeBands {
        GradeBands {
            a: self.0.grade_a,
            b: self.0.grade_b,
            c: self.0.grade_c,
        }
    }
    async fn activity_rules(&self) -> Vec<ActivityRule> {
        Scorer::new(self.0.clone())
            .model
            .activity_rules
            .into_iter()
            .map(|r| ActivityRule {
                touch_type: r.touch_type,
                campaign_id: r.campaign_id,
                points: r.points,
                daily_cap: r.daily_cap,
            })
            .collect()
    }
    async fn activity_bands(&self) -> ActivityBands {
        ActivityBands {
            band1: self.0.band_1,
            band2: self.0.band_2,
            band3: self.0.band_3,
        }
    }
    /// A lead entering one of these cells is handed to sales (default model only).
    async fn mql_cells(&self) -> Vec<ScoringCell> {
        Scorer::new(self.0.clone())
            .model
            .mql_cells
            .into_iter()
            .map(ScoringCell::from)
            .collect()
    }
    /// A lead that sales recycled is not handed off again automatically for this many days.
    async fn cooldown_days(&self) -> i32 {
        self.0.cooldown_days
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
}

/// A lead's score under one model at one time.
pub struct LeadScore {
    pub model: Arc<Scorer>,
    pub score: domain::Score,
    pub as_of: chrono::DateTime<Utc>,
}

#[Object]
impl LeadScore {
    async fn model(&self) -> ScoringModel {
        ScoringModel(self.model.row.clone())
    }
    async fn as_of(&self) -> DateTime {
        self.as_of.into()
    }
    /// Sum of the points of the profile rules the lead meets.
    async fn profile_score(&self) -> i32 {
        self.score.profile
    }
    async fn grade(&self) -> Grade {
        self.score.grade.into()
    }
    /// Sum over touchpoints of earned points x 0.5^(age / half-life), at `asOf`.
    async fn activity_score(&self) -> f64 {
        self.score.activity
    }
    /// 1 (most active) to 4.
    async fn band(&self) -> i32 {
        i32::from(self.score.band)
    }
    async fn cell(&self) -> ScoringCell {
        self.score.cell().into()
    }
    /// The cell is one of the model's MQL cells.
    async fn is_mql_cell(&self) -> bool {
        self.model.model.is_mql(self.score.cell())
    }
}

/// A profile rule and whether the lead meets it.
#[derive(SimpleObject)]
pub struct ProfileRuleContribution {
    pub rule: ProfileRule,
    pub matched: bool,
    /// The rule's points when matched, else 0.
    pub points: i32,
}

/// A touchpoint's part of the activity score.
#[derive(SimpleObject)]
pub struct TouchpointContribution {
    pub touchpoint: Touchpoint,
    /// The rule's points for the touchpoint (0: no rule for its type).
    pub points: i32,
    /// What it earned after the daily cap.
    pub earned: i32,
    /// 0.5^((asOf - occurredAt) / half-life).
    pub decay: f64,
    /// earned x decay: its part of the activity score at `asOf`.
    pub contribution: f64,
}

/// Why a lead has its score: each profile rule and each touchpoint up to `asOf`.
#[derive(SimpleObject)]
pub struct ScoreBreakdown {
    pub score: LeadScore,
    pub profile_rules: Vec<ProfileRuleContribution>,
    /// Oldest first.
    pub touchpoints: Vec<TouchpointContribution>,
}

/// The lead's score (called from `Lead.score`).
pub async fn lead_score(
    ctx: &Context<'_>,
    lead_id: i64,
    model: Option<ID>,
    as_of: Option<DateTime>,
) -> async_graphql::Result<Option<LeadScore>> {
    let model = decode_model(model.as_ref())?;
    let key = LeadScoreAt {
        model,
        lead: lead_id,
        at_micros: as_of.map(|t| t.0.timestamp_micros()),
    };
    let Some((scorer, score, as_of)) = ctx.data_unchecked::<Loaders>().load_one(key).await? else {
        return Err(no_model(model));
    };
    Ok(score.map(|score| LeadScore {
        model: scorer,
        score,
        as_of,
    }))
}

/// The lead's score breakdown (called from `Lead.scoreBreakdown`).
pub async fn lead_breakdown(
    ctx: &Context<'_>,
    lead_id: i64,
    model: Option<ID>,
    as_of: Option<DateTime>,
) -> async_graphql::Result<Option<ScoreBreakdown>> {
    let loaders = ctx.data_unchecked::<Loaders>();
    // Asked together, so that the loads of a page of leads fall into the same batches.
    let (score, lead, rows) = futures_util::future::join3(
        lead_score(ctx, lead_id, model, as_of),
        loaders.load_one(LeadId(lead_id)),
        loaders.load_one(LeadAllTouchpoints(lead_id)),
    )
    .await;
    let (Some(score), Some(lead)) = (score?, lead?) else {
        return Ok(None);
    };
    let rows = rows?.unwrap_or_default();
    let account = match lead.account_id {
        Some(id) => loaders.load_one(AccountId(id)).await?,
        None => None,
    };
    let m = &score.model.model;
    let profile = m.profile(|name| crate::service::persona::attribute(&lead, account.as_ref(), name));
    let profile_rules = m
        .profile_rules
        .iter()
        .zip(profile.matched)
        .map(|(r, matched)| ProfileRuleContribution {
            rule: ProfileRule {
                attribute: r.attribute.clone(),
                operator: r.operator.clone(),
                values: Json(r.values.clone()),
                points: r.points,
            },
            matched,
            points: if matched { r.points } else { 0 },
        })
        .collect();
    let touches: Vec<domain::Touch> = rows
        .iter()
        .map(|t| domain::Touch {
            id: t.id,
            touch_type: t.touch_type.clone(),
            campaign_id: t.campaign_id,
            occurred_at: t.occurred_at,
        })
        .collect();
    let (_, parts) = m.contributions(&touches, score.as_of);
    let by_id: std::collections::HashMap<i64, &entity::touchpoint::Model> = rows.iter().map(|t| (t.id, t)).collect();
    let touchpoints = parts
        .into_iter()
        .filter_map(|c| {
            Some(TouchpointContribution {
                touchpoint: Touchpoint((*by_id.get(&c.touch_id)?).clone()),
                points: c.points,
                earned: c.earned,
                decay: c.decay,
                contribution: c.value,
            })
        })
        .collect();
    Ok(Some(ScoreBreakdown {
        score,
        profile_rules,
        touchpoints,
    }))
}

fn decode_model(id: Option<&ID>) -> async_graphql::Result<Option<i64>> {
    id.map(|id| ids::decode(NodeType::ScoringModel, id)).transpose().gql()
}

fn no_model(id: Option<i64>) -> async_graphql::Error {
    gql_error(match id {
        Some(_) => crate::error::AppError::not_found("scoring model"),
        None => crate::error::AppError::BadInput("the workspace has no scoring model yet; create one with createScoringModel".into()),
    })
}

/// The model a query names, or the default.
pub async fn resolve_model(ctx: &Context<'_>, id: Option<&ID>) -> async_graphql::Result<Scorer> {
    let p = ctx.principal()?;
    let id = decode_model(id)?;
    service::scorer(&ctx.db().conn, p.workspace_id, id)
        .await
        .gql()?
        .ok_or_else(|| no_model(id))
}

/// The number of leads in one cell.
#[derive(SimpleObject)]
pub struct MatrixCell {
    pub cell: ScoringCell,
    pub grade: Grade,
    pub band: i32,
    pub count: i64,
    /// One of the model's MQL cells.
    pub is_mql: bool,
}

/// Lead counts per cell: all 16 cells, zeros included, A1 first, row by row.
#[derive(SimpleObject)]
pub struct ScoringMatrix {
    pub model: ScoringModel,
    pub as_of: DateTime,
    pub total: i64,
    pub cells: Vec<MatrixCell>,
}

/// A cell's leads in a backtest, by what became of them.
#[derive(SimpleObject)]
pub struct BacktestCell {
    pub cell: ScoringCell,
    /// One of the draft model's MQL cells.
    pub is_mql: bool,
    pub leads: i64,
    pub won: i64,
    pub lost: i64,
    /// In opportunities that are still open.
    pub open: i64,
    /// In no opportunity at all.
    pub no_opportunity: i64,
}

/// How well the draft model's MQL rule (a lead in an MQL cell) predicts a won deal.
#[derive(SimpleObject)]
pub struct MqlRuleQuality {
    /// Leads in an MQL cell.
    pub predicted: i64,
    /// Of those, leads that won.
    pub predicted_won: i64,
    /// All leads that won.
    pub won: i64,
    /// predictedWon / predicted, 4 places; null when no lead was in an MQL cell.
    pub precision: Option<Decimal>,
    /// predictedWon / won, 4 places; null when no lead won.
    pub recall: Option<Decimal>,
}

/// A draft model evaluated against history (see `scoringBacktest`).
#[derive(SimpleObject)]
pub struct ScoringBacktest {
    pub from: DateTime,
    pub to: DateTime,
    /// Leads evaluated.
    pub leads: i64,
    /// All 16 cells, A1 first.
    pub cells: Vec<BacktestCell>,
    pub mql_rule: MqlRuleQuality,
}

#[derive(Default)]
pub struct ScoringQuery;

#[Object]
impl ScoringQuery {
    /// The workspace's scoring models, the default first.
    async fn scoring_models(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ScoringModel>> {
        let p = ctx.principal()?;
        Ok(service::scorers(&ctx.db().conn, p.workspace_id)
            .await
            .gql()?
            .into_iter()
            .map(|s| ScoringModel(s.row))
            .collect())
    }

    async fn scoring_model(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<ScoringModel>> {
        ctx.principal()?;
        let id = ids::decode(NodeType::ScoringModel, &id).gql()?;
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(ScoringModelId(id))
            .await?
            .map(ScoringModel))
    }

    /// What if: evaluates a draft model against history without saving it. Each lead in an
    /// opportunity created in [from, to) is scored as of its first such opportunity's
    /// creation (outcome WON if one of them was won, else LOST if one was lost, else OPEN);
    /// each lead created before `to` in no opportunity at all is scored as of `to`
    /// (NO_OPPORTUNITY). Absent fields of the draft are those of the `base` model, or without
    /// one the defaults of createScoringModel. Profile scores use the leads' current attributes.
    /// Without `from` and `to`: the last 365 days, as `DateTimeRange.lastDays: 365`.
    async fn scoring_backtest(
        &self,
        ctx: &Context<'_>,
        base: Option<ID>,
        model: ScoringModelInput,
        from: Option<DateTime>,
        to: Option<DateTime>,
    ) -> async_graphql::Result<ScoringBacktest> {
        let p = ctx.principal()?;
        let base = decode_model(base.as_ref())?;
        let range = match (from, to) {
            (None, None) => crate::graphql::lead::DateTimeRange {
                last_days: Some(365),
                ..Default::default()
            },
            (from, to) => crate::graphql::lead::DateTimeRange { from, to, last_days: None },
        };
        let (from, to) = crate::graphql::attribution::range_of(range)?;
        let b = query_result(models::backtest(ctx.db(), p, base, model.into(), from, to).await)?;
        Ok(ScoringBacktest {
            from: from.into(),
            to: to.into(),
            leads: b.cells.iter().map(|(_, t)| t.leads as i64).sum(),
            mql_rule: MqlRuleQuality {
                predicted: b.predicted as i64,
                predicted_won: b.predicted_won as i64,
                won: b.won as i64,
                precision: b.precision().map(Decimal),
                recall: b.recall().map(Decimal),
            },
            cells: b
                .cells
                .iter()
                .map(|(c, t)| BacktestCell {
                    cell: (*c).into(),
                    is_mql: b.mql_cells.contains(c),
                    leads: t.leads as i64,
                    won: t.won as i64,
                    lost: t.lost as i64,
                    open: t.open as i64,
                    no_opportunity: t.no_opportunity as i64,
                })
                .collect(),
        })
    }

    /// Leads per cell of a model (default: the default model) at `asOf` (default: now), for
    /// the leads `filter` selects (the filter of `leads`, e.g. a persona).
    async fn scoring_matrix(
        &self,
        ctx: &Context<'_>,
        model: Option<ID>,
        as_of: Option<DateTime>,
        filter: Option<LeadFilter>,
    ) -> async_graphql::Result<ScoringMatrix> {
        let p = ctx.principal()?;
        let s = resolve_model(ctx, model.as_ref()).await?;
        let as_of = as_of.map(|t| t.0);
        let leads = match filter {
            Some(f) => Some(crate::store::lead::select(
                p.workspace_id,
                &crate::graphql::lead::store_filter(ctx, f).await?,
            )),
            None => None,
        };
        let counts = service::matrix(&ctx.db().conn, p.workspace_id, &s, as_of, leads).await.gql()?;
        Ok(ScoringMatrix {
            total: counts.iter().map(|(_, n)| n).sum(),
            cells: counts
                .into_iter()
                .map(|(c, count)| MatrixCell {
                    cell: c.into(),
                    grade: c.grade.into(),
                    band: i32::from(c.band),
                    count,
                    is_mql: s.model.is_mql(c),
                })
                .collect(),
            model: ScoringModel(s.row),
            as_of: as_of.unwrap_or_else(Utc::now).into(),
        })
    }
}

#[derive(InputObject)]
pub struct ProfileRuleInputObject {
    /// As for persona criteria: jobTitle, industry, employeeCount, custom.<field>, ...
    pub attribute: String,
    pub operator: PersonaOperator,
    #[graphql(default)]
    pub values: Vec<Option<String>>,
    /// -1000 to 1000.
    pub points: i32,
}

#[derive(InputObject)]
pub struct ActivityRuleInputObject {
    /// A touchpoint type of the workspace.
    #[graphql(name = "type")]
    pub touch_type: String,
    /// Points for this campaign's touchpoints of the type (overrides the type's rule).
    pub campaign_id: Option<ID>,
    /// 0 to 1000.
    pub points: i32,
    /// At most this many points per lead and UTC day from the type (rules without campaign).
    pub daily_cap: Option<i32>,
}

/// A scoring model's parameters. On create, absent fields take the defaults (30-day half-life,
/// the default activity points, grades A/B/C from 75/50/25, bands 1/2/3 from 100/50/20, MQL
/// cells A1, A2, B1, 30 days of cool-down); on update, absent fields stay, and lists given
/// replace the whole list.
#[derive(InputObject)]
pub struct ScoringModelInput {
    pub name: Option<String>,
    /// Absent keeps it, null clears it.
    pub description: MaybeUndefined<String>,
    /// Make this the default model (the one whose MQL cells hand leads off).
    pub is_default: Option<bool>,
    pub half_life_days: Option<Decimal>,
    pub profile_rules: Option<Vec<ProfileRuleInputObject>>,
    pub grade_bands: Option<GradeBands>,
    pub activity_rules: Option<Vec<ActivityRuleInputObject>>,
    pub activity_bands: Option<ActivityBands>,
    pub mql_cells: Option<Vec<ScoringCell>>,
    pub cooldown_days: Option<i32>,
}

impl From<ScoringModelInput> for ModelInput {
    fn from(i: ScoringModelInput) -> Self {
        ModelInput {
            name: i.name,
            description: match i.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(d)),
            },
            is_default: i.is_default,
            half_life_days: i.half_life_days.map(|d| d.0),
            profile_rules: i.profile_rules.map(|rules| {
                rules
                    .into_iter()
                    .map(|r| ProfileRuleInput {
                        condition: CriterionInput {
                            attribute: r.attribute,
                            operator: r.operator.code().to_owned(),
                            values: r.values,
                            weight: 1,
                        },
                        points: r.points,
                    })
                    .collect()
            }),
            grade_bands: i.grade_bands.map(|b| [b.a, b.b, b.c]),
            activity_rules: i.activity_rules.map(|rules| {
                rules
                    .into_iter()
                    .map(|r| ActivityRuleInput {
                        touch_type: r.touch_type,
                        campaign_id: r
                            .campaign_id
                            .map(|id| ids::decode(NodeType::Campaign, &id).map_err(|_| id.to_string())),
                        points: r.points,
                        daily_cap: r.daily_cap,
                    })
                    .collect()
            }),
            activity_bands: i.activity_bands.map(|b| [b.band1, b.band2, b.band3]),
            mql_cells: i.mql_cells.map(|c| c.into_iter().map(|c| Cell::from(c).to_string()).collect()),
            cooldown_days: i.cooldown_days,
        }
    }
}

#[derive(SimpleObject)]
pub struct ScoringModelPayload {
    pub scoring_model: Option<ScoringModel>,
    /// Leads whose scores were recomputed (every lead when a parameter changed).
    pub rescored_leads: i64,
    /// Leads handed to sales because the change put them in an MQL cell.
    pub handed_off: i32,
    pub user_errors: Vec<UserError>,
}

fn payload(result: Result<models::Saved, crate::error::ServiceError>) -> async_graphql::Result<ScoringModelPayload> {
    let (saved, user_errors) = split(result)?;
    Ok(match saved {
        Some(s) => ScoringModelPayload {
            rescored_leads: s.rescored as i64,
            handed_off: s.handed_off as i32,
            scoring_model: Some(ScoringModel(s.model)),
            user_errors,
        },
        None => ScoringModelPayload {
            scoring_model: None,
            rescored_leads: 0,
            handed_off: 0,
            user_errors,
        },
    })
}

#[derive(InputObject)]
pub struct UpdateScoringModelInput {
    pub id: ID,
    pub changes: ScoringModelInput,
}

#[derive(InputObject)]
pub struct DeleteScoringModelInput {
    pub id: ID,
}

#[derive(Default)]
pub struct ScoringMutation;

#[Object]
impl ScoringMutation {
    /// MARKETING or ADMIN: a scoring model; every lead is scored in bulk. The workspace's first
    /// model becomes its default.
    async fn create_scoring_model(&self, ctx: &Context<'_>, input: ScoringModelInput) -> async_graphql::Result<ScoringModelPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let bus = ctx.data_unchecked::<crate::events::Bus>();
        payload(models::create(ctx.db(), bus, p, input.into()).await)
    }

    /// MARKETING or ADMIN: changed parameters bump the version and re-score every lead in bulk;
    /// leads that enter an MQL cell of the default model are handed off.
    async fn update_scoring_model(&self, ctx: &Context<'_>, input: UpdateScoringModelInput) -> async_graphql::Result<ScoringModelPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let id = ids::decode(NodeType::ScoringModel, &input.id).gql()?;
        let bus = ctx.data_unchecked::<crate::events::Bus>();
        payload(models::update(ctx.db(), bus, p, id, input.changes.into()).await)
    }

    /// MARKETING or ADMIN: deletes a model and its scores (the default only when it is the last).
    async fn delete_scoring_model(&self, ctx: &Context<'_>, input: DeleteScoringModelInput) -> async_graphql::Result<ScoringModelPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let id = ids::decode(NodeType::ScoringModel, &input.id).gql()?;
        payload(models::delete(ctx.db(), p, id).await.map(|model| models::Saved {
            model,
            rescored: 0,
            handed_off: 0,
        }))
    }
}
