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
use crate::service::scoring_model::{self as models, ModelInput};

/// A profile grade: A (best fit) to D.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Grade {
    /// Profile score at least the model's `gradeBands.a`.
    A,
    /// At least `gradeBands.b`.
    B,
    /// At least `gradeBands.c`.
    C,
    /// Below `gradeBands.c`.
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
pub enum ScoringCell {
    /// Grade A, band 1: best fit, most active.
    A1,
    /// Grade A, band 2.
    A2,
    /// Grade A, band 3.
    A3,
    /// Grade A, band 4.
    A4,
    /// Grade B, band 1.
    B1,
    /// Grade B, band 2.
    B2,
    /// Grade B, band 3.
    B3,
    /// Grade B, band 4.
    B4,
    /// Grade C, band 1.
    C1,
    /// Grade C, band 2.
    C2,
    /// Grade C, band 3.
    C3,
    /// Grade C, band 4.
    C4,
    /// Grade D, band 1.
    D1,
    /// Grade D, band 2.
    D2,
    /// Grade D, band 3.
    D3,
    /// Grade D, band 4: least fit, least active.
    D4,
}

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
    /// The lead or account attribute, as for persona criteria, e.g. jobTitle.
    pub attribute: String,
    /// EQUALS, IN, RANGE, CONTAINS or EXISTS (see `PersonaOperator`).
    pub operator: String,
    /// A JSON array as for persona criteria (RANGE: [min, max] as decimal strings).
    pub values: Json<serde_json::Value>,
    /// -1000 to 1000 points when the lead meets the condition.
    pub points: i32,
}

/// Activity points for a touchpoint type (for one campaign when `campaign` is set).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ActivityRule {
    /// A touchpoint type code, e.g. WHITEPAPER_DOWNLOAD.
    #[graphql(name = "type")]
    pub touch_type: String,
    #[graphql(skip)]
    pub campaign_id: Option<i64>,
    /// 0 to 1000 points per touchpoint, before decay.
    pub points: i32,
    /// At most this many points per lead, type and UTC day; null: no cap.
    pub daily_cap: Option<i32>,
}

#[async_graphql::ComplexObject]
impl ActivityRule {
    /// The campaign whose touchpoints of the type the rule prices (instead of the type's rule);
    /// null: every campaign.
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        let Some(id) = self.campaign_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(CampaignId(id)).await?.map(Campaign))
    }
}

/// Minimum profile score of grades A, B and C (below C's: D).
#[derive(SimpleObject, InputObject, Clone, Copy)]
#[graphql(input_name = "GradeBandsInput")]
pub struct GradeBands {
    /// Minimum profile score of grade A; above `b`.
    pub a: i32,
    /// Minimum profile score of grade B; above `c`.
    pub b: i32,
    /// Minimum profile score of grade C.
    pub c: i32,
}

/// Minimum activity score of bands 1, 2 and 3 (below band 3's: band 4).
#[derive(SimpleObject, InputObject, Clone, Copy)]
#[graphql(input_name = "ActivityBandsInput")]
pub struct ActivityBands {
    /// Minimum activity score of band 1; above `band2`.
    pub band1: i32,
    /// Minimum activity score of band 2; above `band3`.
    pub band2: i32,
    /// Minimum activity score of band 3; above 0.
    pub band3: i32,
}

/// A lead scoring model: profile rules give a fit score graded A-D, activity rules give an
/// engagement score that halves every `halfLifeDays`, banded 1-4; grade and band form the
/// lead's cell (docs/scoring.md).
#[Object]
impl ScoringModel {
    /// The model's global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::ScoringModel, self.0.id)
    }
    /// A name for people.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Free text for people; null when none.
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
    /// Activity points halve every this many days (a Decimal string; above 0, at most 3650).
    async fn half_life_days(&self) -> Decimal {
        Decimal(rust_decimal::Decimal::from(self.0.half_life_seconds) / rust_decimal::Decimal::from(domain::SECONDS_PER_DAY))
    }
    /// The profile rules; a lead's profile score is the sum of the points of those it meets.
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
    /// Where the profile grades begin.
    async fn grade_bands(&self) -> GradeBands {
        GradeBands {
            a: self.0.grade_a,
            b: self.0.grade_b,
            c: self.0.grade_c,
        }
    }
    /// Points per touchpoint type (and campaign); types without a rule earn nothing.
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
    /// Where the activity bands begin.
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
    /// A lead that sales recycled is not handed off again automatically for this many days
    /// (0 to 3650).
    async fn cooldown_days(&self) -> i32 {
        self.0.cooldown_days
    }
    /// When the model was created (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the model was last changed (UTC).
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
}

pub struct LeadScore {
    pub model: Arc<Scorer>,
    pub score: domain::Score,
    pub as_of: chrono::DateTime<Utc>,
}

/// A lead's score under one model at one time.
#[Object]
impl LeadScore {
    /// The model scored with.
    async fn model(&self) -> ScoringModel {
        ScoringModel(self.model.row.clone())
    }
    /// The moment of the score (UTC).
    async fn as_of(&self) -> DateTime {
        self.as_of.into()
    }
    /// Sum of the points of the profile rules the lead meets.
    async fn profile_score(&self) -> i32 {
        self.score.profile
    }
    /// The profile score's grade under the model's `gradeBands`.
    async fn grade(&self) -> Grade {
        self.score.grade.into()
    }
    /// Sum over touchpoints up to `asOf` of earned points x 0.5^(age / half-life): points, not
    /// rounded (a float).
    async fn activity_score(&self) -> f64 {
        self.score.activity
    }
    /// 1 (most active) to 4, from the activity score and the model's `activityBands`.
    async fn band(&self) -> i32 {
        i32::from(self.score.band)
    }
    /// Grade and band together, e.g. A1.
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
    /// The rule.
    pub rule: ProfileRule,
    /// The lead meets the rule's condition now (current attributes).
    pub matched: bool,
    /// The rule's points when matched, else 0.
    pub points: i32,
}

/// A touchpoint's part of the activity score.
#[derive(SimpleObject)]
pub struct TouchpointContribution {
    /// The touchpoint.
    pub touchpoint: Touchpoint,
    /// The rule's points for the touchpoint (0: no rule for its type).
    pub points: i32,
    /// What it earned after the daily cap.
    pub earned: i32,
    /// 0.5^((asOf - occurredAt) / half-life), from 0 to 1 (a float).
    pub decay: f64,
    /// earned x decay: its part of the activity score at `asOf` (a float).
    pub contribution: f64,
}

/// Why a lead has its score: each profile rule and each touchpoint up to `asOf`.
#[derive(SimpleObject)]
pub struct ScoreBreakdown {
    /// The score explained.
    pub score: LeadScore,
    /// Every profile rule of the model, in order, met or not.
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
    /// The cell.
    pub cell: ScoringCell,
    /// The cell's grade.
    pub grade: Grade,
    /// The cell's band, 1 to 4.
    pub band: i32,
    /// Leads in the cell.
    pub count: i64,
    /// One of the model's MQL cells.
    pub is_mql: bool,
}

/// Lead counts per cell: all 16 cells, zeros included, A1 first, row by row.
#[derive(SimpleObject)]
pub struct ScoringMatrix {
    /// The model scored with.
    pub model: ScoringModel,
    /// The moment of the scores (UTC).
    pub as_of: DateTime,
    /// Leads counted: the sum of the cells.
    pub total: i64,
    /// All 16 cells, A1 first, row by row.
    pub cells: Vec<MatrixCell>,
}

/// A cell's leads in a backtest, by what became of them.
#[derive(SimpleObject)]
pub struct BacktestCell {
    /// The cell.
    pub cell: ScoringCell,
    /// One of the draft model's MQL cells.
    pub is_mql: bool,
    /// Leads scored into the cell.
    pub leads: i64,
    /// Of those, leads with a won opportunity (created in the range).
    pub won: i64,
    /// Of those, leads whose opportunities (created in the range) were closed, none won.
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
    /// predictedWon / predicted as a fraction from "0.0000" to "1.0000", 4 places (half away
    /// from zero); null when no lead was in an MQL cell.
    pub precision: Option<Decimal>,
    /// predictedWon / won as a fraction, 4 places (half away from zero); null when no lead won.
    pub recall: Option<Decimal>,
}

/// A draft model evaluated against history (see `scoringBacktest`).
#[derive(SimpleObject)]
pub struct ScoringBacktest {
    /// The range's start, as asked.
    pub from: DateTime,
    /// The range's end, as asked.
    pub to: DateTime,
    /// Leads evaluated.
    pub leads: i64,
    /// All 16 cells, A1 first.
    pub cells: Vec<BacktestCell>,
    /// How the MQL cells predict won deals.
    pub mql_rule: MqlRuleQuality,
}

#[derive(Default)]
pub struct ScoringQuery;

#[Object]
impl ScoringQuery {
    /// The workspace's scoring models, the default first. Any role.
    async fn scoring_models(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ScoringModel>> {
        let p = ctx.principal()?;
        Ok(service::scorers(&ctx.db().conn, p.workspace_id)
            .await
            .gql()?
            .into_iter()
            .map(|s| ScoringModel(s.row))
            .collect())
    }

    /// One scoring model by ID; null when it is not in your workspace. Any role.
    async fn scoring_model(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The model's global ID.")] id: ID,
    ) -> async_graphql::Result<Option<ScoringModel>> {
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
    /// Without `from` and `to`: the last 365 days, as `DateTimeRangeInput.lastDays: 365`. Any role.
    async fn scoring_backtest(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A saved model whose parameters fill the draft's absent fields.")] base: Option<ID>,
        #[graphql(desc = "The draft's parameters (as for createScoringModel).")] model: ScoringModelInput,
        #[graphql(desc = "Start of the range of opportunity creation times, inclusive; give both or neither.")] from: Option<DateTime>,
        #[graphql(desc = "End of the range, exclusive; after `from` (INVALID otherwise); give both or neither.")] to: Option<DateTime>,
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
    /// the leads `filter` selects (the filter of `leads`, e.g. a persona). Any role.
    async fn scoring_matrix(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A scoring model's ID; default: the workspace's default model.")] model: Option<ID>,
        #[graphql(desc = "The moment to score at; default: now.")] as_of: Option<DateTime>,
        #[graphql(desc = "Which leads to count; default: every lead that is not erased.")] filter: Option<LeadFilter>,
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

/// A profile rule: a condition on a lead or account attribute, worth `points`.
#[derive(InputObject)]
pub struct ProfileRuleInput {
    /// As for persona criteria: jobTitle, industry, employeeCount, custom.<field>, ...
    pub attribute: String,
    /// How the attribute is compared with `values`.
    pub operator: PersonaOperator,
    /// As for persona criteria: texts, or RANGE's [min, max] as decimal strings (null for an
    /// open end); none for EXISTS.
    #[graphql(default)]
    pub values: Vec<Option<String>>,
    /// -1000 to 1000.
    pub points: i32,
}

/// Activity points for a touchpoint type, for every campaign or for one.
#[derive(InputObject)]
pub struct ActivityRuleInput {
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
    /// A name for people.
    pub name: Option<String>,
    /// Absent keeps it, null clears it.
    pub description: MaybeUndefined<String>,
    /// Make this the default model (the one whose MQL cells hand leads off).
    pub is_default: Option<bool>,
    /// Days after which activity points count half: above 0, at most 3650 (a Decimal string,
    /// e.g. "30" or "7.5").
    pub half_life_days: Option<Decimal>,
    /// The profile rules (replace the whole list).
    pub profile_rules: Option<Vec<ProfileRuleInput>>,
    /// Minimum profile scores of grades A > B > C.
    pub grade_bands: Option<GradeBands>,
    /// Points per touchpoint type and campaign (replace the whole list).
    pub activity_rules: Option<Vec<ActivityRuleInput>>,
    /// Minimum activity scores of bands 1 > 2 > 3 > 0.
    pub activity_bands: Option<ActivityBands>,
    /// Cells whose leads the default model hands to sales.
    pub mql_cells: Option<Vec<ScoringCell>>,
    /// Days a recycled lead is not handed off again automatically: 0 to 3650.
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
                    .map(|r| models::ProfileRuleInput {
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
                    .map(|r| models::ActivityRuleInput {
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

/// The result of a scoring model mutation.
#[derive(SimpleObject)]
pub struct ScoringModelPayload {
    /// The model as saved (as it was, for a delete); null when `userErrors` is not empty.
    pub scoring_model: Option<ScoringModel>,
    /// Leads whose scores were recomputed (every lead when a parameter changed).
    pub rescored_leads: i64,
    /// Leads handed to sales because the change put them in an MQL cell.
    pub handed_off: i32,
    /// What the end user can fix; empty on success.
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

/// Changes to a scoring model.
#[derive(InputObject)]
pub struct UpdateScoringModelInput {
    /// The model's ID.
    pub id: ID,
    /// The parameters to change; absent ones stay.
    pub changes: ScoringModelInput,
}

/// The scoring model to delete.
#[derive(InputObject)]
pub struct DeleteScoringModelInput {
    /// The model's ID.
    pub id: ID,
}

#[derive(Default)]
pub struct ScoringMutation;

#[Object]
impl ScoringMutation {
    /// MARKETING or ADMIN: a scoring model; every lead is scored in bulk. The workspace's first
    /// model becomes its default.
    async fn create_scoring_model(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The model's parameters; absent ones take the defaults.")] input: ScoringModelInput,
    ) -> async_graphql::Result<ScoringModelPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let bus = ctx.data_unchecked::<crate::events::Bus>();
        payload(models::create(ctx.db(), bus, p, input.into()).await)
    }

    /// MARKETING or ADMIN: changed parameters bump the version and re-score every lead in bulk;
    /// leads that enter an MQL cell of the default model are handed off.
    async fn update_scoring_model(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The model and its changes.")] input: UpdateScoringModelInput,
    ) -> async_graphql::Result<ScoringModelPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let id = ids::decode(NodeType::ScoringModel, &input.id).gql()?;
        let bus = ctx.data_unchecked::<crate::events::Bus>();
        payload(models::update(ctx.db(), bus, p, id, input.changes.into()).await)
    }

    /// MARKETING or ADMIN: deletes a model and its scores (the default only when it is the last).
    async fn delete_scoring_model(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The model to delete.")] input: DeleteScoringModelInput,
    ) -> async_graphql::Result<ScoringModelPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let id = ids::decode(NodeType::ScoringModel, &input.id).gql()?;
        payload(models::delete(ctx.db(), p, id).await.map(|model| models::Saved {
            model,
            rescored: 0,
            handed_off: 0,
        }))
    }
}
