//! Buyer personas and the leads that match them.
//!
//! A persona has weighted criteria over lead and account attributes (`domain::persona`). Each
//! lead's match with each persona is kept in `lead_persona_matches` (only matches above zero),
//! refreshed in the transaction that changes a lead, its account or a persona. A persona change
//! recomputes that persona over all leads in bulk: leads are read in pages and the matches are
//! written with multi-row INSERTs, not one query per lead.
use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use entity::{account, lead, lead_persona_match, persona, persona_criterion};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::clean;
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::change::{ChangeEntity, ChangeKind, FieldChange};
use crate::domain::money;
use crate::domain::persona::{Attr, Criterion, Match, evaluate};
use crate::error::{AppError, ServiceError, ServiceResult, Validator};
use crate::events::changes::{self, Author, NewChange};
use crate::service::account::{COUNTRY_HINT, country_code};
use crate::store::bulk::Inserter;
use crate::store::{self, Scoped};

/// The attributes criteria may name (besides `custom.<field>`).
pub const ATTRIBUTES: &[&str] = &[
    "jobTitle",
    "decisionRole",
    "industry",
    "companySize",
    "country",
    "employeeCount",
    "annualRevenue",
    "customerStatus",
    "email",
    "phone",
];
pub const OPERATORS: &[&str] = &["EQUALS", "IN", "RANGE", "CONTAINS", "EXISTS"];

/// The value of a persona attribute for a lead and its account. Lead attributes come first;
/// `industry` and `country` fall back to the account's.
pub fn attribute(l: &lead::Model, a: Option<&account::Model>, name: &str) -> Option<Attr> {
    let text = |v: Option<&String>| v.filter(|s| !s.trim().is_empty()).map(|s| Attr::Text(s.clone()));
    match name {
        "jobTitle" => text(l.job_title.as_ref()),
        "decisionRole" => text(l.decision_role.as_ref()),
        "industry" => text(l.industry.as_ref()).or_else(|| text(a.and_then(|a| a.industry.as_ref()))),
        "companySize" => text(l.company_size.as_ref()),
        "country" => text(l.country.as_ref()).or_else(|| text(a.and_then(|a| a.country.as_ref()))),
        "employeeCount" => a.and_then(|a| a.employee_count).map(|n| Attr::Number(Decimal::from(n))),
        "annualRevenue" => a.and_then(|a| a.annual_revenue_minor).map(|m| Attr::Number(money::from_minor(m))),
        "customerStatus" => a
            .map(|a| Attr::Text(a.customer_status.clone()))
            .or_else(|| Some(Attr::Text(l.lifecycle_status.clone()))),
        "email" => text(l.email.as_ref()),
        "phone" => text(l.phone.as_ref()),
        other => {
            let key = other.strip_prefix("custom.")?;
            match l.custom_fields.get(key)? {
                serde_json::Value::String(s) => Some(Attr::Text(s.clone())),
                serde_json::Value::Number(n) => n.to_string().parse().ok().map(Attr::Number),
                serde_json::Value::Bool(b) => Some(Attr::Text(b.to_string())),
                _ => None,
            }
        }
    }
}

/// A persona with its criteria, ready to evaluate.
pub struct Compiled {
    pub persona: persona::Model,
    pub criteria: Vec<persona_criterion::Model>,
}

impl Compiled {
    pub fn evaluate(&self, l: &lead::Model, a: Option<&account::Model>) -> Match {
        let criteria: Vec<Criterion<'_>> = self
            .criteria
            .iter()
            .map(|c| Criterion {
                attribute: &c.attribute,
                operator: &c.operator,
                values: &c.values,
                weight: c.weight,
            })
            .collect();
        evaluate(&criteria, |name| attribute(l, a, name))
    }

    /// Whether a match reaches the persona's threshold.
    pub fn is_member(&self, m: &Match) -> bool {
        m.reaches(self.persona.match_threshold)
    }
}

/// The workspace's personas with their criteria (one or all).
pub async fn compiled(db: &impl ConnectionTrait, ws: i64, only: Option<i64>) -> Result<Vec<Compiled>, DbErr> {
    let mut personas = persona::Entity::in_workspace(ws);
    let mut criteria = persona_criterion::Entity::in_workspace(ws);
    if let Some(id) = only {
        personas = personas.filter(persona::Column::Id.eq(id));
        criteria = criteria.filter(persona_criterion::Column::PersonaId.eq(id));
    }
    let personas = personas.all(db).await?;
    let mut by_persona: HashMap<i64, Vec<persona_criterion::Model>> = HashMap::new();
    for c in criteria
        .order_by_asc(persona_criterion::Column::PersonaId)
        .order_by_asc(persona_criterion::Column::Position)
        .all(db)
        .await?
    {
        by_persona.entry(c.persona_id).or_default().push(c);
    }
    Ok(personas
        .into_iter()
        .map(|p| Compiled {
            criteria: by_persona.remove(&p.id).unwrap_or_default(),
            persona: p,
        })
        .collect())
}

const MATCH_COLUMNS: &[&str] = &[
    "lead_id",
    "persona_id",
    "matched_weight",
    "total_weight",
    "is_member",
    "criteria_met",
];

/// Computes and writes the matches of `leads` with `personas` (their old rows must be gone).
async fn write_matches(
    db: &impl ConnectionTrait,
    personas: &[Compiled],
    leads: &[lead::Model],
    accounts: &HashMap<i64, account::Model>,
    ins: &mut Inserter,
    members: &mut BTreeSet<(i64, i64)>,
) -> Result<(), DbErr> {
    for l in leads.iter().filter(|l| l.erased_at.is_none()) {
        let a = l.account_id.and_then(|id| accounts.get(&id));
        for p in personas {
            let m = p.evaluate(l, a);
            if m.matched_weight == 0 {
                continue;
            }
            let member = p.is_member(&m);
            if member {
                members.insert((l.id, p.persona.id));
            }
            let row = [
                l.id.into(),
                p.persona.id.into(),
                m.matched_weight.into(),
                m.total_weight.into(),
                member.into(),
                sea_orm::Value::Json(Some(Box::new(serde_json::json!(m.met)))),
            ];
            ins.push(db, row).await?;
        }
    }
    Ok(())
}

fn inserter(ws: i64) -> Inserter {
    Inserter::new("lead_persona_matches", MATCH_COLUMNS)
        .shared("workspace_id", ws)
        .shared("updated_at", Utc::now())
}

/// Refreshes the matches of some leads with every persona (after the leads or their accounts
/// changed), inside the caller's transaction.
pub async fn refresh_leads(db: &impl ConnectionTrait, ws: i64, lead_ids: &[i64]) -> Result<(), DbErr> {
    if lead_ids.is_empty() {
        return Ok(());
    }
    let personas = compiled(db, ws, None).await?;
    // Without criteria there are no matches, stored or to store.
    if personas.iter().all(|p| p.criteria.is_empty()) {
        return Ok(());
    }
    for chunk in lead_ids.chunks(5_000) {
        let in_chunk = lead_persona_match::Column::LeadId.is_in(chunk.iter().copied());
        let before = members_of(db, ws, in_chunk.clone()).await?;
        lead_persona_match::Entity::delete_many()
            .filter(lead_persona_match::Column::WorkspaceId.eq(ws))
            .filter(in_chunk)
            .exec(db)
            .await?;
        let leads = store::by_ids::<lead::Entity>(db, ws, chunk).await?;
        let accounts = store::account::of_leads(db, ws, &leads).await?;
        let mut ins = inserter(ws);
        let mut after = BTreeSet::new();
        write_matches(db, &personas, &leads, &accounts, &mut ins, &mut after).await?;
        ins.finish(db).await?;
        membership_changed(db, ws, &before, &after).await?;
    }
    Ok(())
}

/// The (lead, persona) pairs of the stored matches `which` selects that are members.
async fn members_of(db: &impl ConnectionTrait, ws: i64, which: sea_orm::sea_query::SimpleExpr) -> Result<BTreeSet<(i64, i64)>, DbErr> {
    Ok(lead_persona_match::Entity::in_workspace(ws)
        .filter(which)
        .filter(lead_persona_match::Column::IsMember.eq(true))
        .select_only()
        .column(lead_persona_match::Column::LeadId)
        .column(lead_persona_match::Column::PersonaId)
        .into_tuple::<(i64, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// PERSONA_MATCHED and PERSONA_UNMATCHED changes of the leads that became or stopped being
/// members of a persona (`personaId`, the same before and after), in lead order.
async fn membership_changed(
    db: &impl ConnectionTrait,
    ws: i64,
    before: &BTreeSet<(i64, i64)>,
    after: &BTreeSet<(i64, i64)>,
) -> Result<(), DbErr> {
    let mut items: Vec<NewChange> = after
        .difference(before)
        .map(|m| (m, ChangeKind::PersonaMatched))
        .chain(before.difference(after).map(|m| (m, ChangeKind::PersonaUnmatched)))
        .map(|(&(lead, persona), kind)| {
            let id = serde_json::Value::String(crate::domain::ids::global_id("Persona", persona));
            NewChange {
                entity: ChangeEntity::Lead,
                entity_id: lead,
                kind,
                version: None,
                fields: vec![FieldChange {
                    field: "personaId".into(),
                    old: id.clone(),
                    new: id,
                }],
            }
        })
        .collect();
    items.sort_by_key(|c| c.entity_id);
    changes::record(db, ws, &Author::new("personas"), Utc::now(), items).await
}

/// Recomputes one persona over every lead of the workspace, in pages; returns the members.
pub async fn refresh_persona(db: &impl ConnectionTrait, ws: i64, persona_id: i64) -> Result<u64, DbErr> {
    const PAGE: u64 = 10_000;
    let before = members_of(db, ws, lead_persona_match::Column::PersonaId.eq(persona_id)).await?;
    lead_persona_match::Entity::delete_many()
        .filter(lead_persona_match::Column::WorkspaceId.eq(ws))
        .filter(lead_persona_match::Column::PersonaId.eq(persona_id))
        .exec(db)
        .await?;
    let personas = compiled(db, ws, Some(persona_id)).await?;
    if personas.iter().all(|p| p.criteria.is_empty()) {
        return Ok(0);
    }
    let mut ins = inserter(ws);
    let mut after = 0_i64;
    let mut members = BTreeSet::new();
    loop {
        let leads = store::lead::live_page(db, ws, after, PAGE).await?;
        let Some(last) = leads.last() else { break };
        after = last.id;
        let accounts = store::account::of_leads(db, ws, &leads).await?;
        write_matches(db, &personas, &leads, &accounts, &mut ins, &mut members).await?;
        if (leads.len() as u64) < PAGE {
            break;
        }
    }
    ins.finish(db).await?;
    membership_changed(db, ws, &before, &members).await?;
    lead_persona_match::Entity::in_workspace(ws)
        .filter(lead_persona_match::Column::PersonaId.eq(persona_id))
        .filter(lead_persona_match::Column::IsMember.eq(true))
        .count(db)
        .await
}

/// The IDs of the personas a lead belongs to (reaches the threshold of), as stored.
pub async fn matching(db: &impl ConnectionTrait, ws: i64, l: &lead::Model) -> Result<Vec<i64>, DbErr> {
    lead_persona_match::Entity::in_workspace(ws)
        .filter(lead_persona_match::Column::LeadId.eq(l.id))
        .filter(lead_persona_match::Column::IsMember.eq(true))
        .select_only()
        .column(lead_persona_match::Column::PersonaId)
        .into_tuple()
        .all(db)
        .await
}

/// One criterion as given.
#[derive(Debug, Clone)]
pub struct CriterionInput {
    pub attribute: String,
    pub operator: String,
    pub values: Vec<Option<String>>,
    pub weight: i32,
}

/// A persona's fields; `None` keeps a field on update (criteria are replaced as a whole).
#[derive(Debug, Clone, Default)]
pub struct PersonaInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub match_threshold: Option<i32>,
    pub criteria: Option<Vec<CriterionInput>>,
}

/// Checks criteria (or profile rules: `root`.`list` names the input field) and turns their values into
/// the stored JSON. `more` checks what else an item has (weights, points), in item order.
pub(crate) fn check_criteria(
    v: &mut Validator,
    root: &str,
    list: &str,
    criteria: &[CriterionInput],
    more: impl Fn(&mut Validator, usize),
) -> Vec<(String, String, serde_json::Value, i32)> {
    let mut out = Vec::with_capacity(criteria.len());
    for (i, c) in criteria.iter().enumerate() {
        let at = i.to_string();
        let field = |f: &str| vec![root.to_owned(), list.to_owned(), at.clone(), f.to_owned()];
        let attribute = c.attribute.trim().to_owned();
        let known = ATTRIBUTES.contains(&attribute.as_str()) || attribute.strip_prefix("custom.").is_some_and(|k| !k.is_empty());
        if !known {
            v.push_owned(
                field("attribute"),
                "INVALID",
                format!("one of {} or custom.<field>", ATTRIBUTES.join(", ")),
            );
        }
        let operator = c.operator.trim().to_ascii_uppercase();
        let values: Vec<Option<String>> = c.values.iter().map(|s| s.as_ref().map(|s| s.trim().to_owned())).collect();
        let json = match operator.as_str() {
            "EXISTS" => serde_json::json!([]),
            "EQUALS" | "IN" | "CONTAINS" => {
                let list: Vec<String> = values.iter().flatten().filter(|s| !s.is_empty()).cloned().collect();
                if list.is_empty() {
                    v.push_owned(field("values"), "REQUIRED", "give at least one value");
                }
                // Leads store only assigned codes: "Germany" would never match.
                if attribute == "country" && operator != "CONTAINS" {
                    for bad in list.iter().filter(|c| country_code(c).is_none()) {
                        v.push_owned(field("values"), "INVALID", format!("{bad:?} {COUNTRY_HINT}"));
                    }
                }
                serde_json::json!(list)
            }
            "RANGE" => {
                let bound = |i: usize| -> Result<Option<Decimal>, ()> {
                    match values.get(i).cloned().flatten().filter(|s| !s.is_empty()) {
                        None => Ok(None),
                        Some(s) => crate::domain::input::parse_decimal(&s).map(Some).map_err(|_| ()),
                    }
                };
                match (values.len(), bound(0), bound(1)) {
                    (2, Ok(lo), Ok(hi)) if lo.is_some() || hi.is_some() => {
                        if let (Some(l), Some(h)) = (lo, hi)
                            && l > h
                        {
                            v.push_owned(field("values"), "INVALID", "the minimum is above the maximum");
                        }
                        serde_json::json!([lo.map(|d| d.to_string()), hi.map(|d| d.to_string())])
                    }
                    _ => {
                        v.push_owned(
                            field("values"),
                            "INVALID",
                            "RANGE takes [min, max] as decimal numbers in plain notation (\"-12.5\"); null for an open end",
                        );
                        serde_json::Value::Null
                    }
                }
            }
            _ => {
                v.push_owned(field("operator"), "INVALID", format!("one of {}", OPERATORS.join(", ")));
                serde_json::Value::Null
            }
        };
        more(v, i);
        out.push((attribute, operator, json, c.weight));
    }
    out
}

fn check_persona_criteria(v: &mut Validator, criteria: &[CriterionInput]) -> Vec<(String, String, serde_json::Value, i32)> {
    check_criteria(v, "input", "criteria", criteria, |v, i| {
        if !(1..=1000).contains(&criteria[i].weight) {
            let field = vec!["input".to_owned(), "criteria".to_owned(), i.to_string(), "weight".to_owned()];
            v.push_owned(field, "INVALID", "must be between 1 and 1000");
        }
    })
}

async fn write_criteria(
    db: &impl ConnectionTrait,
    ws: i64,
    persona_id: i64,
    criteria: Vec<(String, String, serde_json::Value, i32)>,
) -> Result<(), DbErr> {
    persona_criterion::Entity::delete_many()
        .filter(persona_criterion::Column::WorkspaceId.eq(ws))
        .filter(persona_criterion::Column::PersonaId.eq(persona_id))
        .exec(db)
        .await?;
    let now = Utc::now();
    let rows: Vec<persona_criterion::ActiveModel> = criteria
        .into_iter()
        .enumerate()
        .map(|(i, (attribute, operator, values, weight))| persona_criterion::ActiveModel {
            workspace_id: Set(ws),
            persona_id: Set(persona_id),
            position: Set(i as i32),
            attribute: Set(attribute),
            operator: Set(operator),
            values: Set(values),
            weight: Set(weight),
            created_at: Set(now),
            ..Default::default()
        })
        .collect();
    if !rows.is_empty() {
        persona_criterion::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}

fn check_threshold(v: &mut Validator, t: Option<i32>) {
    if let Some(t) = t
        && !(1..=100).contains(&t)
    {
        v.push(&["input", "matchThreshold"], "INVALID", "a percentage between 1 and 100");
    }
}

/// `createPersona`: the persona, its criteria, and its matches over every lead.
pub async fn create(db: &Db, p: Principal, input: PersonaInput) -> ServiceResult<persona::Model> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    let name = clean(input.name);
    if name.is_none() {
        v.push(&["input", "name"], "REQUIRED", "a persona needs a name");
    }
    check_threshold(&mut v, input.match_threshold);
    let criteria = check_persona_criteria(&mut v, input.criteria.as_deref().unwrap_or_default());
    let txn = db.begin_write(ws).await?;
    if let Some(n) = &name
        && persona::Entity::in_workspace(ws)
            .filter(persona::Column::Name.eq(n))
            .one(&*txn)
            .await?
            .is_some()
    {
        v.push(&["input", "name"], "TAKEN", "another persona has this name");
    }
    v.finish()?;
    let now = Utc::now();
    let row = persona::ActiveModel {
        workspace_id: Set(ws),
        name: Set(name.expect("validated")),
        description: Set(clean(input.description.flatten())),
        match_threshold: Set(input.match_threshold.unwrap_or(60)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    write_criteria(&*txn, ws, row.id, criteria).await?;
    refresh_persona(&*txn, ws, row.id).await?;
    txn.commit().await?;
    Ok(row)
}

/// `updatePersona`: changed criteria or threshold recompute the persona's matches in bulk.
pub async fn update(db: &Db, p: Principal, id: i64, input: PersonaInput) -> ServiceResult<persona::Model> {
    let ws = p.workspace_id;
    let mut v = Validator::default();
    check_threshold(&mut v, input.match_threshold);
    let criteria = input.criteria.as_deref().map(|c| check_persona_criteria(&mut v, c));
    let name = match input.name {
        Some(n) => match clean(Some(n)) {
            Some(n) => Some(n),
            None => {
                v.push(&["input", "name"], "REQUIRED", "a persona needs a name");
                None
            }
        },
        None => None,
    };
    let txn = db.begin_write(ws).await?;
    let current = store::by_id::<persona::Entity>(&*txn, ws, id)
        .await?
        .ok_or_else(|| AppError::not_found("persona"))?;
    if let Some(n) = &name
        && persona::Entity::in_workspace(ws)
            .filter(persona::Column::Name.eq(n))
            .filter(persona::Column::Id.ne(id))
            .one(&*txn)
            .await?
            .is_some()
    {
        v.push(&["input", "name"], "TAKEN", "another persona has this name");
    }
    v.finish()?;
    let threshold_changed = input.match_threshold.is_some_and(|t| t != current.match_threshold);
    let mut am = current.into_active_model();
    if let Some(n) = name {
        am.name = Set(n);
    }
    if let Some(d) = input.description {
        am.description = Set(clean(d));
    }
    if let Some(t) = input.match_threshold {
        am.match_threshold = Set(t);
    }
    am.updated_at = Set(Utc::now());
    let saved = am.update(&*txn).await?;
    if let Some(c) = criteria {
        write_criteria(&*txn, ws, id, c).await?;
        refresh_persona(&*txn, ws, id).await?;
    } else if threshold_changed {
        // The weights stay: only who reaches the threshold changes, in one statement.
        use sea_orm::sea_query::{Expr, ExprTrait};
        let t = saved.match_threshold;
        lead_persona_match::Entity::update_many()
            .col_expr(
                lead_persona_match::Column::IsMember,
                Expr::col(lead_persona_match::Column::MatchedWeight)
                    .mul(100)
                    .gte(Expr::col(lead_persona_match::Column::TotalWeight).mul(t)),
            )
            .filter(lead_persona_match::Column::WorkspaceId.eq(ws))
            .filter(lead_persona_match::Column::PersonaId.eq(id))
            .exec(&*txn)
            .await?;
    }
    txn.commit().await?;
    Ok(saved)
}

/// `deletePersona`: its criteria and matches go with it. A persona that a routing rule uses
/// stays (IN_USE): deleting it would silently change who gets handoffs.
pub async fn delete(db: &Db, p: Principal, id: i64) -> ServiceResult<persona::Model> {
    let ws = p.workspace_id;
    let txn = db.begin_write(ws).await?;
    let current = store::by_id::<persona::Entity>(&*txn, ws, id)
        .await?
        .ok_or_else(|| AppError::not_found("persona"))?;
    let rules = entity::routing_rule::Entity::in_workspace(ws)
        .filter(entity::routing_rule::Column::PersonaId.eq(id))
        .count(&*txn)
        .await?;
    if rules > 0 {
        return Err(ServiceError::invalid(
            &["input", "id"],
            "IN_USE",
            format!("{rules} routing rules use the persona; change them first"),
        ));
    }
    persona_criterion::Entity::delete_many()
        .filter(persona_criterion::Column::WorkspaceId.eq(ws))
        .filter(persona_criterion::Column::PersonaId.eq(id))
        .exec(&*txn)
        .await?;
    // Its members leave it.
    let members = members_of(&*txn, ws, lead_persona_match::Column::PersonaId.eq(id)).await?;
    lead_persona_match::Entity::delete_many()
        .filter(lead_persona_match::Column::WorkspaceId.eq(ws))
        .filter(lead_persona_match::Column::PersonaId.eq(id))
        .exec(&*txn)
        .await?;
    membership_changed(&*txn, ws, &members, &BTreeSet::new()).await?;
    persona::Entity::delete_by_id(id).exec(&*txn).await?;
    txn.commit().await?;
    Ok(current)
}
