//! Which personas a lead matches (the weighted criteria of `domain::persona`).
use entity::{account, lead, persona, persona_criterion};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DbErr, QueryOrder};

use crate::domain::persona::{Attr, Criterion, match_percent};
use crate::store::{self, Scoped};

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
        "annualRevenue" => a
            .and_then(|a| a.annual_revenue_minor)
            .map(|m| Attr::Number(crate::domain::money::from_minor(m))),
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

/// The IDs of the personas whose threshold the lead reaches.
pub async fn matching(db: &impl ConnectionTrait, ws: i64, l: &lead::Model) -> Result<Vec<i64>, DbErr> {
    let account = match l.account_id {
        Some(id) => store::by_id::<account::Entity>(db, ws, id).await?,
        None => None,
    };
    let personas = persona::Entity::in_workspace(ws).all(db).await?;
    let criteria = persona_criterion::Entity::in_workspace(ws)
        .order_by_asc(persona_criterion::Column::PersonaId)
        .order_by_asc(persona_criterion::Column::Position)
        .all(db)
        .await?;
    let mut out = Vec::new();
    for p in personas {
        let own: Vec<Criterion<'_>> = criteria
            .iter()
            .filter(|c| c.persona_id == p.id)
            .map(|c| Criterion {
                attribute: &c.attribute,
                operator: &c.operator,
                values: &c.values,
                weight: c.weight,
            })
            .collect();
        if own.is_empty() {
            continue;
        }
        let (pct, _) = match_percent(&own, |name| attribute(l, account.as_ref(), name));
        if pct >= Decimal::from(p.match_threshold) {
            out.push(p.id);
        }
    }
    Ok(out)
}
