//! Scoring models: create, change, delete; each change re-scores every lead in bulk in the same
//! transaction and hands off the leads that entered an MQL cell of the default model.
use std::collections::HashSet;

use chrono::Utc;
use entity::{campaign, lead_score, scoring_model};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
};

use super::clean;
use super::persona::{CriterionInput, check_criteria};
use super::scoring::{self, Scorer};
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::scoring::{ActivityRule, Cell, Model, ProfileRule, SECONDS_PER_DAY};
use crate::domain::scoring::{DEFAULT_ACTIVITY_BANDS, DEFAULT_COOLDOWN_DAYS, DEFAULT_GRADE_BANDS, DEFAULT_HALF_LIFE_DAYS};
use crate::domain::vocab::{VOCAB_TOUCHPOINT_TYPE, normalize_code};
use crate::error::{AppError, ServiceError, ServiceResult, Validator};
use crate::events::Bus;
use crate::store::{self, Scoped};

/// A profile rule as given: a persona-style condition worth `points`.
#[derive(Debug, Clone)]
pub struct ProfileRuleInput {
    pub condition: CriterionInput,
    pub points: i32,
}

#[derive(Debug, Clone)]
pub struct ActivityRuleInput {
    pub touch_type: String,
    /// A decoded campaign ID, or the raw text of one that did not decode.
    pub campaign_id: Option<Result<i64, String>>,
    pub points: i32,
    pub daily_cap: Option<i32>,
}

/// A model's fields; `None` keeps a field on update (rule lists are replaced as a whole) and
/// takes the default on create.
#[derive(Debug, Clone, Default)]
pub struct ModelInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub is_default: Option<bool>,
    pub half_life_days: Option<Decimal>,
    pub profile_rules: Option<Vec<ProfileRuleInput>>,
    pub grade_bands: Option<[i32; 3]>,
    pub activity_rules: Option<Vec<ActivityRuleInput>>,
    pub activity_bands: Option<[i32; 3]>,
    pub mql_cells: Option<Vec<String>>,
    pub cooldown_days: Option<i32>,
}

/// What a create or update did.
pub struct Saved {
    pub model: scoring_model::Model,
    /// Leads whose scores were recomputed.
    pub rescored: u64,
    /// Leads handed off because they entered an MQL cell.
    pub handed_off: usize,
}

/// The parameters of a model after applying `input` to `base` (or to the defaults), checked.
/// Campaigns and touchpoint types must be the workspace's.
pub async fn draft(
    db: &impl ConnectionTrait,
    ws: i64,
    v: &mut Validator,
    root: &'static str,
    base: Option<&scoring_model::Model>,
    input: &ModelInput,
) -> Result<(Model, i32), DbErr> {
    let base_model = base.map(|b| Scorer::new(b.clone()).model);
    let mut m = base_model.unwrap_or_default();
    if base.is_none() {
        m.half_life_seconds = DEFAULT_HALF_LIFE_DAYS * SECONDS_PER_DAY;
        m.grade_bands = DEFAULT_GRADE_BANDS;
        m.activity_bands = DEFAULT_ACTIVITY_BANDS;
    }
    if let Some(days) = input.half_life_days {
        let seconds = (days * Decimal::from(SECONDS_PER_DAY)).round().to_i64();
        match seconds {
            Some(s) if days > Decimal::ZERO && s >= 1 && days <= Decimal::from(3650) => m.half_life_seconds = s,
            _ => v.push(&[root, "halfLifeDays"], "INVALID", "a number of days above 0 and at most 3650"),
        }
    }
    if let Some(b) = input.grade_bands {
        if !(b[0] > b[1] && b[1] > b[2]) {
            v.push(
                &[root, "gradeBands"],
                "INVALID",
                "the minimum of A must be above B's, and B's above C's",
            );
        }
        m.grade_bands = b;
    }
    if let Some(b) = input.activity_bands {
        if !(b[0] > b[1] && b[1] > b[2] && b[2] > 0) {
            v.push(
                &[root, "activityBands"],
                "INVALID",
                "the minimum of band 1 must be above band 2's, band 2's above band 3's, and band 3's above 0",
            );
        }
        m.activity_bands = b;
    }
    if let Some(rules) = &input.profile_rules {
        let conditions: Vec<CriterionInput> = rules.iter().map(|r| r.condition.clone()).collect();
        let checked = check_criteria(v, root, "profileRules", &conditions, |v, i| {
            if !(-1000..=1000).contains(&rules[i].points) {
                v.push_owned(field(root, "profileRules", i, "points"), "INVALID", "between -1000 and 1000");
            }
        });
        m.profile_rules = Vec::with_capacity(rules.len());
        for (r, (attribute, operator, values, _)) in rules.iter().zip(checked) {
            m.profile_rules.push(ProfileRule {
                attribute,
                operator,
                values,
                points: r.points,
            });
        }
    }
    if let Some(rules) = &input.activity_rules {
        m.activity_rules = activity_rules(db, ws, v, root, rules).await?;
    }
    if let Some(cells) = &input.mql_cells {
        m.mql_cells = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            match Cell::parse(c) {
                Some(c) if !m.mql_cells.contains(&c) => m.mql_cells.push(c),
                Some(_) => {}
                None => v.push_owned(
                    vec![root.into(), "mqlCells".into(), i.to_string()],
                    "INVALID",
                    "a cell from A1 to D4",
                ),
            }
        }
    }
    let cooldown = input
        .cooldown_days
        .unwrap_or(base.map_or(DEFAULT_COOLDOWN_DAYS, |b| b.cooldown_days));
    if !(0..=3650).contains(&cooldown) {
        v.push(&[root, "cooldownDays"], "INVALID", "between 0 and 3650 days");
    }
    Ok((m, cooldown))
}

fn field(root: &str, list: &str, i: usize, name: &str) -> Vec<String> {
    vec![root.to_owned(), list.to_owned(), i.to_string(), name.to_owned()]
}

async fn activity_rules(
    db: &impl ConnectionTrait,
    ws: i64,
    v: &mut Validator,
    root: &str,
    rules: &[ActivityRuleInput],
) -> Result<Vec<ActivityRule>, DbErr> {
    let types: HashSet<String> = store::workspace::vocabulary(db, ws, VOCAB_TOUCHPOINT_TYPE)
        .await?
        .into_iter()
        .map(|t| t.code)
        .collect();
    let wanted: Vec<i64> = rules.iter().filter_map(|r| r.campaign_id.clone()?.ok()).collect();
    let campaigns: HashSet<i64> = store::by_ids::<campaign::Entity>(db, ws, &wanted)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut out: Vec<ActivityRule> = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let code = normalize_code(&r.touch_type).filter(|c| types.contains(c));
        if code.is_none() {
            v.push_owned(
                field(root, "activityRules", i, "type"),
                "INVALID",
                format!("{:?} is not a touchpoint type of this workspace", r.touch_type),
            );
        }
        let campaign_id = match &r.campaign_id {
            None => None,
            Some(Ok(id)) if campaigns.contains(id) => Some(*id),
            Some(_) => {
                v.push_owned(field(root, "activityRules", i, "campaignId"), "NOT_FOUND", "no such campaign");
                None
            }
        };
        if !(0..=1000).contains(&r.points) {
            v.push_owned(field(root, "activityRules", i, "points"), "INVALID", "between 0 and 1000");
        }
        match r.daily_cap {
            Some(_) if r.campaign_id.is_some() => v.push_owned(
                field(root, "activityRules", i, "dailyCap"),
                "INVALID",
                "caps are per type and day: set it on the type's rule without a campaign",
            ),
            Some(c) if c < 1 => v.push_owned(field(root, "activityRules", i, "dailyCap"), "INVALID", "at least 1"),
            _ => {}
        }
        let Some(code) = code else { continue };
        if out.iter().any(|o| o.touch_type == code && o.campaign_id == campaign_id) {
            v.push_owned(
                field(root, "activityRules", i, "type"),
                "DUPLICATE",
                "a rule for this type (and campaign) is given twice",
            );
        }
        out.push(ActivityRule {
            touch_type: code,
            campaign_id,
            points: r.points,
            daily_cap: r.daily_cap,
        });
    }
    Ok(out)
}

fn cells_json(m: &Model) -> serde_json::Value {
    serde_json::json!(m.mql_cells.iter().map(ToString::to_string).collect::<Vec<_>>())
}

fn set_parameters(am: &mut scoring_model::ActiveModel, m: &Model, cooldown: i32) {
    am.half_life_seconds = Set(m.half_life_seconds);
    am.grade_a = Set(m.grade_bands[0]);
    am.grade_b = Set(m.grade_bands[1]);
    am.grade_c = Set(m.grade_bands[2]);
    am.band_1 = Set(m.activity_bands[0]);
    am.band_2 = Set(m.activity_bands[1]);
    am.band_3 = Set(m.activity_bands[2]);
    am.mql_cells = Set(cells_json(m));
    am.cooldown_days = Set(cooldown);
    am.profile_rules = Set(serde_json::to_value(&m.profile_rules).unwrap_or_default());
    am.activity_rules = Set(serde_json::to_value(&m.activity_rules).unwrap_or_default());
}

async fn name_taken(db: &impl ConnectionTrait, ws: i64, name: &str, except: Option<i64>) -> Result<bool, DbErr> {
    let mut q = scoring_model::Entity::in_workspace(ws).filter(scoring_model::Column::Name.eq(name));
    if let Some(id) = except {
        q = q.filter(scoring_model::Column::Id.ne(id));
    }
    Ok(q.count(db).await? > 0)
}

/// Makes `id` the only default model.
async fn clear_other_defaults(db: &impl ConnectionTrait, ws: i64, id: i64) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    scoring_model::Entity::update_many()
        .col_expr(scoring_model::Column::IsDefault, Expr::value(false))
        .filter(scoring_model::Column::WorkspaceId.eq(ws))
        .filter(scoring_model::Column::Id.ne(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Rescore `s` in bulk and hand off who entered an MQL cell compared with `before` (the leads
/// in an MQL cell of the default model before the change).
async fn rescore_and_hand_off(
    db: &impl ConnectionTrait,
    ws: i64,
    s: &Scorer,
    before: Option<HashSet<i64>>,
) -> ServiceResult<(u64, Vec<entity::event::Model>)> {
    let (rescored, in_mql) = scoring::rescore_model(db, ws, s).await?;
    let events = match before {
        Some(before) if s.row.is_default => {
            let entered: Vec<i64> = in_mql.into_iter().filter(|id| !before.contains(id)).collect();
            scoring::auto_mql(db, ws, scoring::Entered(entered)).await?
        }
        _ => Vec::new(),
    };
    Ok((rescored, events))
}

/// `createScoringModel`. The workspace's first model becomes its default.
pub async fn create(db: &Db, bus: &Bus, p: Principal, input: ModelInput) -> ServiceResult<Saved> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    let name = clean(input.name.clone());
    if name.is_none() {
        v.push(&["input", "name"], "REQUIRED", "a scoring model needs a name");
    }
    let txn = db.begin_write(ws).await?;
    let (m, cooldown) = draft(&*txn, ws, &mut v, "input", None, &input).await?;
    if let Some(n) = &name
        && name_taken(&*txn, ws, n, None).await?
    {
        v.push(&["input", "name"], "TAKEN", "another scoring model has this name");
    }
    v.finish()?;
    let first = scoring_model::Entity::in_workspace(ws).count(&*txn).await? == 0;
    let is_default = first || input.is_default == Some(true);
    let before = if is_default { Some(current_mql(&*txn, ws).await?) } else { None };
    let now = Utc::now();
    let mut am = scoring_model::ActiveModel {
        workspace_id: Set(ws),
        name: Set(name.expect("validated")),
        description: Set(clean(input.description.clone().flatten())),
        is_default: Set(is_default),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    set_parameters(&mut am, &m, cooldown);
    let row = am.insert(&*txn).await?;
    if is_default {
        clear_other_defaults(&*txn, ws, row.id).await?;
    }
    let s = Scorer::new(row.clone());
    let (rescored, events) = rescore_and_hand_off(&*txn, ws, &s, before).await?;
    let handed_off = events.len();
    txn.commit().await?;
    scoring::publish(bus, events);
    Ok(Saved {
        model: row,
        rescored,
        handed_off,
    })
}

/// The leads in an MQL cell of the default model now, as stored.
async fn current_mql(db: &impl ConnectionTrait, ws: i64) -> Result<HashSet<i64>, DbErr> {
    match scoring::scorer(db, ws, None).await? {
        Some(d) => scoring::mql_members(db, ws, &d).await,
        None => Ok(HashSet::new()),
    }
}

/// `updateScoringModel`: a change of any parameter bumps the version and re-scores every lead
/// in bulk; name and description alone do not.
pub async fn update(db: &Db, bus: &Bus, p: Principal, id: i64, input: ModelInput) -> ServiceResult<Saved> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    let txn = db.begin_write(ws).await?;
    let current = store::by_id::<scoring_model::Entity>(&*txn, ws, id)
        .await?
        .ok_or_else(|| AppError::not_found("scoring model"))?;
    let (m, cooldown) = draft(&*txn, ws, &mut v, "input", Some(&current), &input).await?;
    let name = match &input.name {
        Some(n) => match clean(Some(n.clone())) {
            Some(n) => Some(n),
            None => {
                v.push(&["input", "name"], "REQUIRED", "a scoring model needs a name");
                None
            }
        },
        None => None,
    };
    if let Some(n) = &name
        && name_taken(&*txn, ws, n, Some(id)).await?
    {
        v.push(&["input", "name"], "TAKEN", "another scoring model has this name");
    }
    if input.is_default == Some(false) && current.is_default {
        v.push(
            &["input", "isDefault"],
            "INVALID",
            "make another model the default instead; the workspace keeps one",
        );
    }
    v.finish()?;
    let old = Scorer::new(current.clone());
    let becomes_default = input.is_default == Some(true) && !current.is_default;
    let changed = m != old.model || cooldown != current.cooldown_days;
    let before = if changed || becomes_default {
        Some(current_mql(&*txn, ws).await?)
    } else {
        None
    };
    let mut am = current.clone().into_active_model();
    if let Some(n) = name {
        am.name = Set(n);
    }
    if let Some(d) = input.description.clone() {
        am.description = Set(clean(d));
    }
    if becomes_default {
        am.is_default = Set(true);
    }
    if changed {
        set_parameters(&mut am, &m, cooldown);
        am.version = Set(current.version + 1);
    }
    am.updated_at = Set(Utc::now());
    let row = am.update(&*txn).await?;
    if becomes_default {
        clear_other_defaults(&*txn, ws, id).await?;
    }
    let (rescored, events) = if changed || becomes_default {
        rescore_and_hand_off(&*txn, ws, &Scorer::new(row.clone()), before).await?
    } else {
        (0, Vec::new())
    };
    let handed_off = events.len();
    txn.commit().await?;
    scoring::publish(bus, events);
    Ok(Saved {
        model: row,
        rescored,
        handed_off,
    })
}

/// `deleteScoringModel`: its scores go with it. The default model goes only when it is the
/// last one (another must be made the default first).
pub async fn delete(db: &Db, p: Principal, id: i64) -> ServiceResult<scoring_model::Model> {
    let ws = p.workspace_id;
    let txn = db.begin_write(ws).await?;
    let current = store::by_id::<scoring_model::Entity>(&*txn, ws, id)
        .await?
        .ok_or_else(|| AppError::not_found("scoring model"))?;
    if current.is_default && scoring_model::Entity::in_workspace(ws).count(&*txn).await? > 1 {
        return Err(ServiceError::invalid(
            &["input", "id"],
            "IS_DEFAULT",
            "the default model drives the MQL rule; make another model the default first",
        ));
    }
    lead_score::Entity::delete_many()
        .filter(lead_score::Column::WorkspaceId.eq(ws))
        .filter(lead_score::Column::ModelId.eq(id))
        .exec(&*txn)
        .await?;
    scoring_model::Entity::delete_by_id(id).exec(&*txn).await?;
    txn.commit().await?;
    Ok(current)
}

/// `scoringBacktest`: a draft model (nothing saved; absent fields from `base`, or the defaults)
/// evaluated against history. Each lead in an
/// opportunity created in [from, to) is scored as of the creation of its first such
/// opportunity, with the touchpoints up to then; its outcome is WON when one of those
/// opportunities was won, else LOST when one was lost, else OPEN. Each lead created before
/// `to` that is in no opportunity at all is scored as of `to` (NO_OPPORTUNITY). Profile scores
/// use the leads' attributes as they are now: attribute history is not kept.
pub async fn backtest(
    db: &Db,
    p: Principal,
    base: Option<i64>,
    input: ModelInput,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> ServiceResult<crate::domain::scoring::Backtest> {
    use crate::domain::scoring::{Backtest, Outcome, Score};
    use crate::domain::vocab::OpportunityStatus;
    use entity::{opportunity, opportunity_contact};
    use sea_orm::QuerySelect;
    use std::collections::HashMap;

    let ws = p.workspace_id;
    let mut v = Validator::default();
    if from >= to {
        v.push(&["to"], "INVALID", "must be after from");
    }
    let conn = &db.conn;
    let base = match base {
        Some(id) => Some(
            store::by_id::<scoring_model::Entity>(conn, ws, id)
                .await?
                .ok_or_else(|| AppError::not_found("scoring model"))?,
        ),
        None => None,
    };
    let (model, _) = draft(conn, ws, &mut v, "model", base.as_ref(), &input).await?;
    v.finish()?;

    // Per lead: the creation of its first opportunity in the range, and the outcome.
    let opps: HashMap<i64, opportunity::Model> = opportunity::Entity::in_workspace(ws)
        .filter(opportunity::Column::CreatedAt.gte(from))
        .filter(opportunity::Column::CreatedAt.lt(to))
        .all(conn)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let mut in_range: HashMap<i64, (chrono::DateTime<Utc>, Outcome)> = HashMap::new();
    let mut with_any: HashSet<i64> = HashSet::new();
    let contacts: Vec<(i64, i64)> = opportunity_contact::Entity::in_workspace(ws)
        .select_only()
        .columns([opportunity_contact::Column::LeadId, opportunity_contact::Column::OpportunityId])
        .into_tuple()
        .all(conn)
        .await?;
    for (lead_id, opp_id) in contacts {
        with_any.insert(lead_id);
        let Some(o) = opps.get(&opp_id) else { continue };
        let outcome = match OpportunityStatus::parse(&o.status) {
            Some(OpportunityStatus::Won) => Outcome::Won,
            Some(OpportunityStatus::Lost) => Outcome::Lost,
            _ => Outcome::Open,
        };
        let e = in_range.entry(lead_id).or_insert((o.created_at, outcome));
        e.0 = e.0.min(o.created_at);
        e.1 = match (e.1, outcome) {
            (Outcome::Won, _) | (_, Outcome::Won) => Outcome::Won,
            (Outcome::Lost, _) | (_, Outcome::Lost) => Outcome::Lost,
            _ => Outcome::Open,
        };
    }

    const PAGE: u64 = 10_000;
    let m = &model;
    let mut items = Vec::new();
    let mut after = 0_i64;
    loop {
        let leads = store::lead::live_page(conn, ws, after, PAGE).await?;
        let (Some(first), Some(last)) = (leads.first(), leads.last()) else {
            break;
        };
        let (lo, hi) = (first.id, last.id);
        after = hi;
        let accounts = store::account::of_leads(conn, ws, &leads).await?;
        let touches = scoring::touches_in_lead_range(conn, ws, lo, hi).await?;
        for l in &leads {
            let (at, outcome) = match in_range.get(&l.id) {
                Some(x) => *x,
                None if !with_any.contains(&l.id) && l.created_at < to => (to, Outcome::NoOpportunity),
                None => continue,
            };
            let a = l.account_id.and_then(|id| accounts.get(&id));
            let profile = m.profile(|name| super::persona::attribute(l, a, name)).score;
            let past: Vec<_> = touches
                .get(&l.id)
                .map(|t| t.iter().filter(|t| t.occurred_at <= at).cloned().collect())
                .unwrap_or_default();
            let score = Score::at(m, profile, m.activity(&past), at);
            items.push((score.cell(), outcome));
        }
        if (leads.len() as u64) < PAGE {
            break;
        }
    }
    Ok(Backtest::tally(items, &m.mql_cells))
}
