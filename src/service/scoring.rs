//! Lead scores kept current: each lead's profile score and stored activity under each scoring
//! model (`lead_scores`), updated in the transaction that changes the lead, its account, its
//! touchpoints or the model; and the automatic handoff of a lead that enters an MQL cell of the
//! default model.
//!
//! Touchpoints update the stored activity incrementally (one multiply-add per touch,
//! `domain::scoring::Activity`); only a touch that lands before an earlier-recorded touch of the
//! same capped type and day makes the lead's activity be recomputed from its touchpoints, since
//! it changes what those later touches earned.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{account, event, handoff, lead, lead_score, scoring_model, touchpoint};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::handoff::HandoffStatus;
use crate::domain::scoring::{Activity, ActivityRule, Cell, Grade, Model, ProfileRule, Score, Touch};
use crate::domain::vocab::STAGE_SUCCESS;
use crate::error::ServiceResult;
use crate::events::changes::Author;
use crate::events::{Bus, Notice};
use crate::store::bulk::Inserter;
use crate::store::{self, Scoped};

/// A stored scoring model with its domain form.
#[derive(Debug, Clone)]
pub struct Scorer {
    pub row: scoring_model::Model,
    pub model: Model,
}

impl Scorer {
    pub fn new(row: scoring_model::Model) -> Scorer {
        let model = Model {
            half_life_seconds: row.half_life_seconds,
            profile_rules: serde_json::from_value::<Vec<ProfileRule>>(row.profile_rules.clone()).unwrap_or_default(),
            grade_bands: [row.grade_a, row.grade_b, row.grade_c],
            activity_rules: serde_json::from_value::<Vec<ActivityRule>>(row.activity_rules.clone()).unwrap_or_default(),
            activity_bands: [row.band_1, row.band_2, row.band_3],
            mql_cells: row
                .mql_cells
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str().and_then(Cell::parse)).collect())
                .unwrap_or_default(),
        };
        Scorer { row, model }
    }

    pub fn id(&self) -> i64 {
        self.row.id
    }

    /// The score of a stored row at `t` (t at or after the row's reference time).
    pub fn score_of(&self, row: &lead_score::Model, t: DateTime<Utc>) -> Score {
        Score::at(&self.model, row.profile_score, stored_activity(row), t)
    }

    fn in_mql(&self, row: &lead_score::Model, t: DateTime<Utc>) -> bool {
        self.model.is_mql(self.score_of(row, t).cell())
    }
}

pub fn stored_activity(row: &lead_score::Model) -> Activity {
    Activity {
        value: row.activity_value,
        at: row.activity_at,
    }
}

/// The workspace's scoring models, the default first.
pub async fn scorers(db: &impl ConnectionTrait, ws: i64) -> Result<Vec<Scorer>, DbErr> {
    Ok(scoring_model::Entity::in_workspace(ws)
        .order_by_desc(scoring_model::Column::IsDefault)
        .order_by_asc(scoring_model::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(Scorer::new)
        .collect())
}

/// One model by ID (`None` when it is not the workspace's), or the default when `id` is `None`.
pub async fn scorer(db: &impl ConnectionTrait, ws: i64, id: Option<i64>) -> Result<Option<Scorer>, DbErr> {
    let mut q = scoring_model::Entity::in_workspace(ws);
    q = match id {
        Some(id) => q.filter(scoring_model::Column::Id.eq(id)),
        None => q.filter(scoring_model::Column::IsDefault.eq(true)),
    };
    Ok(q.one(db).await?.map(Scorer::new))
}

/// The models whose scores a write must update, with the workspace's score writes locked; none
/// (and no lock: lead writes need not wait for each other) when the workspace has no model.
async fn scorers_to_write(db: &impl ConnectionTrait, ws: i64) -> Result<Vec<Scorer>, DbErr> {
    let all = scorers(db, ws).await?;
    if !all.is_empty() {
        lock_scores(db, ws).await?;
    }
    Ok(all)
}

/// Values per `IN (...)` list.
const CHUNK: usize = 900;

/// Serializes the score writes of one workspace until the transaction ends. Each write reads
/// stored scores and replaces them; two at once (a touchpoint batch and a lead change, or a model
/// change) would otherwise lose one's update on PostgreSQL. SQLite has one writer anyway.
async fn lock_scores(db: &impl ConnectionTrait, ws: i64) -> Result<(), DbErr> {
    store::raw::lock_workspace(db, store::raw::LOCK_SCORING, ws).await
}

/// The touchpoints of some leads, as scoring sees them, per lead.
pub async fn touches_of(db: &impl ConnectionTrait, ws: i64, lead_ids: &[i64]) -> Result<HashMap<i64, Vec<Touch>>, DbErr> {
    let mut out: HashMap<i64, Vec<Touch>> = HashMap::new();
    for chunk in lead_ids.chunks(CHUNK) {
        let q = touchpoint::Entity::in_workspace(ws).filter(touchpoint::Column::LeadId.is_in(chunk.iter().copied()));
        for (lead_id, t) in read_touches(db, q).await? {
            out.entry(lead_id).or_default().push(t);
        }
    }
    Ok(out)
}

/// (lead, touch) of the touchpoints a query selects, reading only what scoring needs.
async fn read_touches(db: &impl ConnectionTrait, q: sea_orm::Select<touchpoint::Entity>) -> Result<Vec<(i64, Touch)>, DbErr> {
    type Row = (i64, i64, String, Option<i64>, DateTime<Utc>);
    let rows: Vec<Row> = q
        .select_only()
        .columns([
            touchpoint::Column::Id,
            touchpoint::Column::LeadId,
            touchpoint::Column::TouchType,
            touchpoint::Column::CampaignId,
            touchpoint::Column::OccurredAt,
        ])
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, lead_id, touch_type, campaign_id, occurred_at)| {
            (
                lead_id,
                Touch {
                    id,
                    touch_type,
                    campaign_id,
                    occurred_at,
                },
            )
        })
        .collect())
}

/// A lead's score under one model, ready to store.
struct Computed {
    model_id: i64,
    lead_id: i64,
    profile: i32,
    grade: Grade,
    activity: Activity,
    half_life_seconds: i64,
}

impl Computed {
    /// The row's values in the order of [`SCORE_COLUMNS`].
    fn values(&self) -> [sea_orm::Value; SCORE_COLUMNS.len()] {
        [
            self.model_id.into(),
            self.lead_id.into(),
            self.profile.into(),
            self.grade.as_str().into(),
            self.activity.value.into(),
            self.activity.at.into(),
            self.activity.key(self.half_life_seconds).into(),
        ]
    }
}

/// The columns a stored score is written with; the first two, (model, lead), are its key.
const SCORE_COLUMNS: &[&str] = &[
    "model_id",
    "lead_id",
    "profile_score",
    "grade",
    "activity_value",
    "activity_at",
    "activity_key",
];

async fn write(db: &impl ConnectionTrait, ws: i64, rows: &[Computed]) -> Result<(), DbErr> {
    let mut ins = Inserter::new("lead_scores", SCORE_COLUMNS)
        .shared("workspace_id", ws)
        .shared("updated_at", Utc::now());
    for c in rows {
        ins.push(db, c.values()).await?;
    }
    ins.finish(db).await?;
    Ok(())
}

/// Rewrites the stored scores of `rows`, which exist (the caller holds the scoring lock and
/// read them), in place: one `UPDATE … FROM` per chunk. A delete and an insert would also
/// rewrite the entries of the (model, lead) and lead indexes, a random page each per lead.
async fn update(db: &impl ConnectionTrait, ws: i64, rows: &[Computed]) -> Result<(), DbErr> {
    const COLUMNS: usize = SCORE_COLUMNS.len();
    let backend = db.get_database_backend();
    let row = format!("({})", store::raw::placeholders(COLUMNS));
    // Every column but the key (model, lead), from the rows of `d`.
    let set: Vec<String> = SCORE_COLUMNS[2..].iter().map(|c| format!("{c} = d.{c}")).collect();
    let now = Utc::now();
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "WITH d ({}) AS (VALUES {}) UPDATE lead_scores SET {}, updated_at = ? \
             FROM d WHERE lead_scores.workspace_id = ? AND lead_scores.model_id = d.model_id AND lead_scores.lead_id = d.lead_id",
            SCORE_COLUMNS.join(", "),
            vec![row.as_str(); chunk.len()].join(", "),
            set.join(", "),
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * COLUMNS + 2);
        for c in chunk {
            values.extend(c.values());
        }
        values.extend([now.into(), ws.into()]);
        let done = db.execute_raw(store::raw::statement(backend, &sql, values)).await?;
        if done.rows_affected() != chunk.len() as u64 {
            return Err(DbErr::Custom(format!(
                "updated {} stored scores of {}",
                done.rows_affected(),
                chunk.len()
            )));
        }
    }
    Ok(())
}

async fn delete_rows(db: &impl ConnectionTrait, ws: i64, model_ids: &[i64], lead_ids: &[i64]) -> Result<(), DbErr> {
    for chunk in lead_ids.chunks(CHUNK) {
        lead_score::Entity::delete_many()
            .filter(lead_score::Column::WorkspaceId.eq(ws))
            .filter(lead_score::Column::ModelId.is_in(model_ids.iter().copied()))
            .filter(lead_score::Column::LeadId.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Stored rows of some leads under some models, by (model, lead).
async fn stored(
    db: &impl ConnectionTrait,
    ws: i64,
    model_ids: &[i64],
    lead_ids: &[i64],
) -> Result<HashMap<(i64, i64), lead_score::Model>, DbErr> {
    let mut out = HashMap::new();
    for chunk in lead_ids.chunks(CHUNK) {
        for r in lead_score::Entity::in_workspace(ws)
            .filter(lead_score::Column::ModelId.is_in(model_ids.iter().copied()))
            .filter(lead_score::Column::LeadId.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            out.insert((r.model_id, r.lead_id), r);
        }
    }
    Ok(out)
}

fn compute(s: &Scorer, l: &lead::Model, a: Option<&account::Model>, touches: &[Touch]) -> Computed {
    let profile = s.model.profile(|name| super::persona::attribute(l, a, name)).score;
    Computed {
        model_id: s.id(),
        lead_id: l.id,
        profile,
        grade: s.model.grade(profile),
        activity: s.model.activity(touches),
        half_life_seconds: s.model.half_life_seconds,
    }
}

/// Whether a computed score is in an MQL cell of the default model at `t`.
fn computed_in_mql(s: &Scorer, c: &Computed, t: DateTime<Utc>) -> bool {
    let score = Score::at(&s.model, c.profile, c.activity, t);
    s.model.is_mql(score.cell())
}

/// Leads that entered an MQL cell of the default model: in one now, not in one before.
#[derive(Debug, Default)]
pub struct Entered(pub Vec<i64>);

/// Recomputes the scores of some leads under every model (after the leads or their accounts
/// changed), inside the caller's transaction. Erased leads lose their scores.
pub async fn refresh_leads(db: &impl ConnectionTrait, ws: i64, lead_ids: &[i64]) -> Result<Entered, DbErr> {
    if lead_ids.is_empty() {
        return Ok(Entered::default());
    }
    let scorers = scorers_to_write(db, ws).await?;
    if scorers.is_empty() {
        return Ok(Entered::default());
    }
    let now = Utc::now();
    let model_ids: Vec<i64> = scorers.iter().map(Scorer::id).collect();
    let mut entered = Vec::new();
    for chunk in lead_ids.chunks(5_000) {
        let default = scorers.iter().find(|s| s.row.is_default);
        let before: HashSet<i64> = match default {
            Some(d) => stored(db, ws, &[d.id()], chunk)
                .await?
                .values()
                .filter(|r| d.in_mql(r, now))
                .map(|r| r.lead_id)
                .collect(),
            None => HashSet::new(),
        };
        delete_rows(db, ws, &model_ids, chunk).await?;
        let leads: Vec<lead::Model> = store::by_ids::<lead::Entity>(db, ws, chunk)
            .await?
            .into_iter()
            .filter(|l| l.erased_at.is_none())
            .collect();
        let accounts = store::account::of_leads(db, ws, &leads).await?;
        let ids: Vec<i64> = leads.iter().map(|l| l.id).collect();
        let touches = touches_of(db, ws, &ids).await?;
        let mut rows = Vec::with_capacity(leads.len() * scorers.len());
        for l in &leads {
            let a = l.account_id.and_then(|id| accounts.get(&id));
            let t = touches.get(&l.id).map(Vec::as_slice).unwrap_or_default();
            for s in &scorers {
                let c = compute(s, l, a, t);
                if s.row.is_default && computed_in_mql(s, &c, now) && !before.contains(&l.id) {
                    entered.push(l.id);
                }
                rows.push(c);
            }
        }
        write(db, ws, &rows).await?;
    }
    Ok(Entered(entered))
}

/// The leads in an MQL cell of `s` now, judged from its stored rows (read in pages).
pub async fn mql_members(db: &impl ConnectionTrait, ws: i64, s: &Scorer) -> Result<HashSet<i64>, DbErr> {
    const PAGE: u64 = 10_000;
    let now = Utc::now();
    let mut out = HashSet::new();
    let mut after = 0_i64;
    loop {
        let rows = lead_score::Entity::in_workspace(ws)
            .filter(lead_score::Column::ModelId.eq(s.id()))
            .filter(lead_score::Column::Id.gt(after))
            .order_by_asc(lead_score::Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        out.extend(rows.iter().filter(|r| s.in_mql(r, now)).map(|r| r.lead_id));
    }
    Ok(out)
}

/// Recomputes one model over every lead of the workspace in bulk (after the model was created
/// or changed): leads in pages of 10,000, their touchpoints in one range read per page, the
/// rows written with multi-row INSERTs. Returns the number of leads scored and, for the default
/// model, the leads now in an MQL cell.
pub async fn rescore_model(db: &impl ConnectionTrait, ws: i64, s: &Scorer) -> Result<(u64, Vec<i64>), DbErr> {
    const PAGE: u64 = 10_000;
    let now = Utc::now();
    lock_scores(db, ws).await?;
    lead_score::Entity::delete_many()
        .filter(lead_score::Column::WorkspaceId.eq(ws))
        .filter(lead_score::Column::ModelId.eq(s.id()))
        .exec(db)
        .await?;
    let mut in_mql = Vec::new();
    let mut scored = 0_u64;
    let mut after = 0_i64;
    loop {
        let leads = store::lead::live_page(db, ws, after, PAGE).await?;
        let (Some(first), Some(last)) = (leads.first(), leads.last()) else {
            break;
        };
        let (lo, hi) = (first.id, last.id);
        after = hi;
        let accounts = store::account::of_leads(db, ws, &leads).await?;
        let touches = touches_in_lead_range(db, ws, lo, hi).await?;
        let mut rows = Vec::with_capacity(leads.len());
        for l in &leads {
            let a = l.account_id.and_then(|id| accounts.get(&id));
            let c = compute(s, l, a, touches.get(&l.id).map(Vec::as_slice).unwrap_or_default());
            if s.row.is_default && computed_in_mql(s, &c, now) {
                in_mql.push(l.id);
            }
            rows.push(c);
        }
        scored += rows.len() as u64;
        write(db, ws, &rows).await?;
        if (leads.len() as u64) < PAGE {
            break;
        }
    }
    Ok((scored, in_mql))
}

/// The touchpoints of the leads with IDs in [lo, hi], per lead, in one range read of the
/// covering index on (workspace, lead, occurred_at, id, type, campaign).
pub(crate) async fn touches_in_lead_range(db: &impl ConnectionTrait, ws: i64, lo: i64, hi: i64) -> Result<HashMap<i64, Vec<Touch>>, DbErr> {
    store::touchpoint::per_lead(
        db,
        "t.workspace_id = ? AND t.lead_id BETWEEN ? AND ?",
        vec![ws.into(), lo.into(), hi.into()],
    )
    .await
}

/// Adds newly recorded touchpoints to the stored scores of their leads, inside the caller's
/// transaction.
pub async fn add_touchpoints(db: &impl ConnectionTrait, ws: i64, new: &[touchpoint::Model]) -> Result<Entered, DbErr> {
    if new.is_empty() {
        return Ok(Entered::default());
    }
    let scorers = scorers_to_write(db, ws).await?;
    if scorers.is_empty() {
        return Ok(Entered::default());
    }
    let now = Utc::now();
    let mut by_lead: HashMap<i64, Vec<Touch>> = HashMap::new();
    for t in new {
        by_lead.entry(t.lead_id).or_default().push(Touch {
            id: t.id,
            touch_type: t.touch_type.clone(),
            campaign_id: t.campaign_id,
            occurred_at: t.occurred_at,
        });
    }
    for touches in by_lead.values_mut() {
        touches.sort_by_key(|t| (t.occurred_at, t.id));
    }
    let mut lead_ids: Vec<i64> = by_lead.keys().copied().collect();
    lead_ids.sort_unstable();
    let model_ids: Vec<i64> = scorers.iter().map(Scorer::id).collect();
    let old = stored(db, ws, &model_ids, &lead_ids).await?;
    let new_ids: HashSet<i64> = new.iter().map(|t| t.id).collect();
    let earlier = capped_groups(db, ws, &scorers, &by_lead, &new_ids).await?;

    let mut rows = Vec::with_capacity(lead_ids.len() * scorers.len());
    let mut recompute: Vec<i64> = Vec::new();
    let mut entered = Vec::new();
    for &lead_id in &lead_ids {
        let touches = &by_lead[&lead_id];
        let mut computed = Vec::with_capacity(scorers.len());
        for s in &scorers {
            let Some(row) = old.get(&(s.id(), lead_id)) else {
                computed.clear();
                break;
            };
            let Some(activity) = add_to(s, stored_activity(row), lead_id, touches, &earlier) else {
                computed.clear();
                break;
            };
            if s.row.is_default && !s.in_mql(row, now) {
                let score = Score::at(&s.model, row.profile_score, activity, now);
                if s.model.is_mql(score.cell()) {
                    entered.push(lead_id);
                }
            }
            computed.push(Computed {
                model_id: s.id(),
                lead_id,
                profile: row.profile_score,
                grade: s.model.grade(row.profile_score),
                activity,
                half_life_seconds: s.model.half_life_seconds,
            });
        }
        if computed.len() == scorers.len() {
            rows.extend(computed);
        } else {
            // No stored row yet, or a capped group whose earnings shift: recompute the lead.
            recompute.push(lead_id);
        }
    }
    update(db, ws, &rows).await?;
    let mut more = refresh_leads(db, ws, &recompute).await?;
    entered.append(&mut more.0);
    Ok(Entered(entered))
}

/// Touches recorded earlier in the (lead, type, UTC day) groups of the new touches whose type a
/// model caps: (lead, type, day) -> their (occurred_at, id, campaign), sorted.
type Groups = HashMap<(i64, String, NaiveDate), Vec<(DateTime<Utc>, i64, Option<i64>)>>;

async fn capped_groups(
    db: &impl ConnectionTrait,
    ws: i64,
    scorers: &[Scorer],
    by_lead: &HashMap<i64, Vec<Touch>>,
    new_ids: &HashSet<i64>,
) -> Result<Groups, DbErr> {
    let capped: HashSet<&str> = scorers
        .iter()
        .flat_map(|s| s.model.activity_rules.iter())
        .filter(|r| r.daily_cap.is_some())
        .map(|r| r.touch_type.as_str())
        .collect();
    let mut groups: Groups = HashMap::new();
    let mut leads: Vec<i64> = Vec::new();
    let (mut lo, mut hi): (Option<NaiveDate>, Option<NaiveDate>) = (None, None);
    for (lead_id, touches) in by_lead {
        for t in touches.iter().filter(|t| capped.contains(t.touch_type.as_str())) {
            let d = t.occurred_at.date_naive();
            groups.entry((*lead_id, t.touch_type.clone(), d)).or_default();
            lo = Some(lo.map_or(d, |x| x.min(d)));
            hi = Some(hi.map_or(d, |x| x.max(d)));
            leads.push(*lead_id);
        }
    }
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(groups) };
    leads.sort_unstable();
    leads.dedup();
    let from = lo.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let to = (hi + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    for chunk in leads.chunks(CHUNK) {
        let q = touchpoint::Entity::in_workspace(ws)
            .filter(touchpoint::Column::LeadId.is_in(chunk.iter().copied()))
            .filter(touchpoint::Column::TouchType.is_in(capped.iter().copied()))
            .filter(touchpoint::Column::OccurredAt.gte(from))
            .filter(touchpoint::Column::OccurredAt.lt(to));
        for (lead_id, t) in read_touches(db, q).await? {
            if new_ids.contains(&t.id) {
                continue;
            }
            if let Some(g) = groups.get_mut(&(lead_id, t.touch_type, t.occurred_at.date_naive())) {
                g.push((t.occurred_at, t.id, t.campaign_id));
            }
        }
    }
    for g in groups.values_mut() {
        g.sort();
    }
    Ok(groups)
}

/// The stored activity plus new touches (sorted), or `None` when a new touch of a capped type
/// lands before a touch recorded earlier that day (the lead must then be recomputed).
fn add_to(s: &Scorer, mut activity: Activity, lead_id: i64, touches: &[Touch], earlier: &Groups) -> Option<Activity> {
    let h = s.model.half_life_seconds;
    let mut used: HashMap<(&str, NaiveDate), i32> = HashMap::new();
    for t in touches {
        let points = s.model.rule_for(&t.touch_type, t.campaign_id).map_or(0, |r| r.points);
        let earned = match s.model.daily_cap(&t.touch_type) {
            None => points,
            Some(cap) => {
                let day = t.occurred_at.date_naive();
                let u = match used.entry((t.touch_type.as_str(), day)) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let before = earlier
                            .get(&(lead_id, t.touch_type.clone(), day))
                            .map(Vec::as_slice)
                            .unwrap_or_default();
                        if before.last().is_some_and(|(at, id, _)| (*at, *id) > (t.occurred_at, t.id)) {
                            return None;
                        }
                        // What the day's earlier touches earned, in their order.
                        let mut u = 0;
                        for (_, _, campaign) in before {
                            let p = s.model.rule_for(&t.touch_type, *campaign).map_or(0, |r| r.points);
                            u += p.min((cap - u).max(0));
                        }
                        e.insert(u)
                    }
                };
                let e = points.min((cap - *u).max(0));
                *u += e;
                e
            }
        };
        activity = activity.add(f64::from(earned), t.occurred_at, h);
    }
    Some(activity)
}

/// Hands off, through the handoff state machine, the leads that entered an MQL cell of the
/// default model, unless a lead is in SQL or later, has an open handoff, or was recycled by
/// sales less than the model's cool-down ago. Returns the events to publish after the commit.
///
/// What decides each lead (the lead, an open handoff, a recent recycle, its stored score) is
/// read for all of them in four statements; a batch of touchpoints can bring hundreds of leads
/// into an MQL cell at once.
pub async fn auto_mql(db: &impl ConnectionTrait, ws: i64, entered: Entered) -> ServiceResult<Vec<event::Model>> {
    if entered.0.is_empty() {
        return Ok(Vec::new());
    }
    let Some(s) = scorer(db, ws, None).await? else {
        return Ok(Vec::new());
    };
    let now = Utc::now();
    let cooldown = Duration::days(i64::from(s.row.cooldown_days));
    let stages = store::workspace::stages(db, ws).await?;
    let mql_position = stages.iter().find(|st| st.key == crate::domain::handoff::MQL).map(|st| st.position);
    let mut ids = entered.0;
    ids.sort_unstable();
    ids.dedup();
    let mut leads = store::by_ids::<lead::Entity>(db, ws, &ids).await?;
    // In ID order, as the events and the routing rules' round-robin turns follow.
    leads.sort_unstable_by_key(|l| l.id);
    let open = store::id_set(
        db,
        handoff::Entity::in_workspace(ws).filter(store::id_in(db, handoff::Column::OpenLeadId, &ids)),
        handoff::Column::LeadId,
    )
    .await?;
    let recycled = store::id_set(
        db,
        handoff::Entity::in_workspace(ws)
            .filter(store::id_in(db, handoff::Column::LeadId, &ids))
            .filter(handoff::Column::Status.eq(HandoffStatus::Recycled.as_str()))
            .filter(handoff::Column::RespondedAt.gt(now - cooldown)),
        handoff::Column::LeadId,
    )
    .await?;
    let mut scores = stored(db, ws, &[s.id()], &ids).await?;
    let mut events = Vec::new();
    for l in leads {
        let past_mql = stages
            .iter()
            .find(|st| st.id == l.stage_id)
            .is_some_and(|st| st.kind == STAGE_SUCCESS && mql_position.is_some_and(|m| st.position > m));
        if l.erased_at.is_some() || past_mql || open.contains(&l.id) || recycled.contains(&l.id) {
            continue;
        }
        let cell = scores.remove(&(s.id(), l.id)).map(|r| s.score_of(&r, now).cell().to_string());
        let note = format!(
            "automatic: entered {} of scoring model {}",
            cell.as_deref().unwrap_or_default(),
            s.row.name
        );
        let who = Author::new(format!("scoring-model:{}", s.id()));
        let (_, e) = super::handoff::open(db, ws, &stages, l, &who, Some(note), cell, now).await?;
        events.push(e);
    }
    Ok(events)
}

/// The lead's cell in the workspace's default model at `now`, as handoff events carry it; `None`
/// without a default model or without a stored score of the lead.
pub async fn default_cell(db: &impl ConnectionTrait, ws: i64, lead_id: i64, now: DateTime<Utc>) -> Result<Option<Cell>, DbErr> {
    let Some(s) = scorer(db, ws, None).await? else {
        return Ok(None);
    };
    let Some(row) = stored(db, ws, &[s.id()], &[lead_id]).await?.remove(&(s.id(), lead_id)) else {
        return Ok(None);
    };
    Ok(Some(score_at(db, ws, &s, &row, now).await?.cell()))
}

/// Tells this process's subscribers of events committed by a scoring step.
pub fn publish(bus: &Bus, events: Vec<event::Model>) {
    for e in events {
        bus.publish(Notice::Event(std::sync::Arc::new(e)));
    }
}

/// The score of one lead at `as_of` from its stored row: by the stored value when no touch is
/// after `as_of`, else recomputed from the touches at or before it.
pub async fn score_at(
    db: &impl ConnectionTrait,
    ws: i64,
    s: &Scorer,
    row: &lead_score::Model,
    as_of: DateTime<Utc>,
) -> Result<Score, DbErr> {
    if row.activity_at.is_none_or(|at| at <= as_of) {
        return Ok(s.score_of(row, as_of));
    }
    let touches = touches_of(db, ws, &[row.lead_id]).await?;
    Ok(recomputed(
        s,
        row,
        touches.get(&row.lead_id).map(Vec::as_slice).unwrap_or_default(),
        as_of,
    ))
}

fn recomputed(s: &Scorer, row: &lead_score::Model, touches: &[Touch], as_of: DateTime<Utc>) -> Score {
    let past: Vec<Touch> = touches.iter().filter(|t| t.occurred_at <= as_of).cloned().collect();
    Score::at(&s.model, row.profile_score, s.model.activity(&past), as_of)
}

/// The leads with touches after `as_of`, whose stored key cannot say their score then: each
/// with the cell its key gives and its score at `as_of` recomputed from its touchpoints.
pub async fn late_scores(db: &impl ConnectionTrait, ws: i64, s: &Scorer, as_of: DateTime<Utc>) -> Result<Vec<(i64, Cell, Score)>, DbErr> {
    let rows = store::scoring::late_rows(db, ws, s.id(), as_of).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.lead_id).collect();
    let touches = touches_of(db, ws, &ids).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let t = touches.get(&r.lead_id).map(Vec::as_slice).unwrap_or_default();
            (r.lead_id, s.score_of(r, as_of).cell(), recomputed(s, r, t, as_of))
        })
        .collect())
}

/// What a score condition asks for.
#[derive(Debug, Clone, Default)]
pub struct ScoreQuery {
    pub cells: Option<Vec<Cell>>,
    pub grades: Option<Vec<Grade>>,
    pub min_activity: Option<f64>,
}

impl ScoreQuery {
    pub fn is_empty(&self) -> bool {
        self.cells.is_none() && self.grades.is_none() && self.min_activity.is_none()
    }

    fn admits(&self, score: &Score) -> bool {
        self.cells.as_ref().is_none_or(|c| c.contains(&score.cell()))
            && self.grades.as_ref().is_none_or(|g| g.contains(&score.grade))
            && self.min_activity.is_none_or(|m| score.activity >= m)
    }
}

/// The lead condition for a score query under `s` at `as_of`.
pub async fn score_filter(
    db: &impl ConnectionTrait,
    ws: i64,
    s: &Scorer,
    as_of: DateTime<Utc>,
    q: ScoreQuery,
) -> Result<store::scoring::ScoreFilter, DbErr> {
    let h = s.model.half_life_seconds;
    let late = late_scores(db, ws, s, as_of)
        .await?
        .into_iter()
        .filter(|(_, _, score)| q.admits(score))
        .map(|(id, _, _)| id)
        .collect();
    Ok(store::scoring::ScoreFilter {
        model_id: s.id(),
        as_of,
        bounds: s.model.band_bounds(as_of),
        cells: q.cells,
        grades: q.grades,
        // A minimum of 0 or less admits every lead (no key is a score of 0).
        min_key: q.min_activity.map(|m| {
            if m > 0.0 {
                crate::domain::scoring::key_bound(m, as_of, h)
            } else {
                f64::NEG_INFINITY
            }
        }),
        late,
    })
}

/// Lead counts per cell (all 16, A1 first) under `s` at `as_of` (`None`: now), for the leads
/// `leads` selects. Leads created after `as_of` did not exist then and are left out.
pub async fn matrix(
    db: &impl ConnectionTrait,
    ws: i64,
    s: &Scorer,
    as_of: Option<DateTime<Utc>>,
    leads: Option<sea_orm::Select<lead::Entity>>,
) -> Result<Vec<(Cell, i64)>, DbErr> {
    let now = Utc::now();
    let past = as_of.filter(|t| *t < now);
    let as_of = as_of.unwrap_or(now);
    let leads = if past.is_some() {
        Some(
            leads
                .unwrap_or_else(|| lead::Entity::in_workspace(ws))
                .filter(lead::Column::CreatedAt.lte(as_of)),
        )
    } else {
        leads
    };
    let mut counts: HashMap<Cell, i64> = store::scoring::matrix(db, ws, s.id(), s.model.band_bounds(as_of), leads.clone())
        .await?
        .into_iter()
        .collect();
    // Leads with touches after `as_of` were counted by their stored key: move them to the cell
    // of their score at `as_of`.
    let late = late_scores(db, ws, s, as_of).await?;
    if !late.is_empty() {
        let ids: Vec<i64> = late.iter().map(|l| l.0).collect();
        let mut admitted: HashSet<i64> = HashSet::new();
        for chunk in ids.chunks(CHUNK) {
            let q = leads.clone().unwrap_or_else(|| lead::Entity::in_workspace(ws));
            let found: Vec<i64> = q
                .filter(lead::Column::Id.is_in(chunk.iter().copied()))
                .select_only()
                .column(lead::Column::Id)
                .into_tuple()
                .all(db)
                .await?;
            admitted.extend(found);
        }
        for (id, by_key, score) in late {
            if admitted.contains(&id) {
                *counts.entry(by_key).or_default() -= 1;
                *counts.entry(score.cell()).or_default() += 1;
            }
        }
    }
    Ok(Cell::all().map(|c| (c, counts.get(&c).copied().unwrap_or(0))).collect())
}

/// The scores at `as_of` of some leads under `s` (leads without a stored score are absent).
pub async fn scores_at(
    db: &impl ConnectionTrait,
    ws: i64,
    s: &Scorer,
    lead_ids: &[i64],
    as_of: DateTime<Utc>,
) -> Result<HashMap<i64, Score>, DbErr> {
    let wanted: Vec<(&Scorer, i64, DateTime<Utc>)> = lead_ids.iter().map(|l| (s, *l, as_of)).collect();
    Ok(scores_for(db, ws, &wanted)
        .await?
        .into_iter()
        .map(|((_, lead, _), score)| (lead, score))
        .collect())
}

/// Scores of (model, lead, time) triples, keyed by (model id, lead id, time): by the stored
/// value, or recomputed from the touches at or before the time for a lead with later touches.
/// One query for the stored rows and at most one for touchpoints, whatever the mix of models
/// and times (a page of leads asking for its score now and at a past time is one batch).
pub async fn scores_for(
    db: &impl ConnectionTrait,
    ws: i64,
    wanted: &[(&Scorer, i64, DateTime<Utc>)],
) -> Result<HashMap<(i64, i64, DateTime<Utc>), Score>, DbErr> {
    let mut model_ids: Vec<i64> = wanted.iter().map(|(s, _, _)| s.id()).collect();
    model_ids.sort_unstable();
    model_ids.dedup();
    let mut lead_ids: Vec<i64> = wanted.iter().map(|(_, l, _)| *l).collect();
    lead_ids.sort_unstable();
    lead_ids.dedup();
    let rows = stored(db, ws, &model_ids, &lead_ids).await?;
    let is_late = |r: &lead_score::Model, t: DateTime<Utc>| r.activity_at.is_some_and(|a| a > t);
    let mut late: Vec<i64> = wanted
        .iter()
        .filter(|(s, l, t)| rows.get(&(s.id(), *l)).is_some_and(|r| is_late(r, *t)))
        .map(|(_, l, _)| *l)
        .collect();
    late.sort_unstable();
    late.dedup();
    let touches = touches_of(db, ws, &late).await?;
    let mut out = HashMap::with_capacity(wanted.len());
    for (s, lead, t) in wanted {
        let Some(r) = rows.get(&(s.id(), *lead)) else { continue };
        let score = if is_late(r, *t) {
            recomputed(s, r, touches.get(lead).map(Vec::as_slice).unwrap_or_default(), *t)
        } else {
            s.score_of(r, *t)
        };
        out.insert((s.id(), *lead, *t), score);
    }
    Ok(out)
}
