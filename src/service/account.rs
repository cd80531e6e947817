//! Accounts (companies): created and updated by frontends and CRM connectors.
use chrono::Utc;
use entity::account;
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};

use super::{Patch, author, clean};
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::change::ChangeKind;
use crate::domain::money;
use crate::domain::vocab::LifecycleStatus;
use crate::error::{ServiceError, ServiceResult, Validator};
use crate::events::Bus;
use crate::events::changes::{self, NewChange};
use crate::store;

#[derive(Debug, Clone, Default)]
pub struct AccountInput {
    /// The source system's ID; the upsert key when given.
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub domain: Patch<String>,
    pub industry: Patch<String>,
    pub employee_count: Patch<i64>,
    pub annual_revenue: Patch<Decimal>,
    pub country: Patch<String>,
    pub customer_status: Option<LifecycleStatus>,
    /// Refuse the write (CONFLICT) unless the account is at this version now; 0: only create.
    pub expected_version: Option<i64>,
}

/// Normalizes a country to its upper-case ISO 3166-1 alpha-2 code; `None` unless the code is
/// assigned ("Germany", "DEU" and "UK" are not).
pub fn country_code(raw: &str) -> Option<String> {
    crate::domain::country::parse(raw).map(str::to_owned)
}

/// What a refused country is told.
pub const COUNTRY_HINT: &str = "must be an ISO 3166-1 alpha-2 country code: two letters like DE, FR or GB";

/// Creates the account, or updates the one with the same external ID (or, without one, the
/// same domain). Sending the same input twice changes nothing the second time.
pub async fn upsert(db: &Db, bus: &Bus, p: Principal, input: AccountInput) -> ServiceResult<(account::Model, bool)> {
    let mut v = Validator::default();
    let external_id = clean(input.external_id);
    let name = clean(input.name);
    let domain = input.domain.map(|d| d.trim().to_lowercase());
    let country = match input.country {
        Patch::Set(c) => match country_code(&c) {
            Some(c) => Patch::Set(c),
            None => {
                v.push(&["input", "country"], "INVALID", format!("{c:?} {COUNTRY_HINT}"));
                Patch::Keep
            }
        },
        other => other,
    };
    if let Patch::Set(n) = input.employee_count
        && n < 0
    {
        v.push(&["input", "employeeCount"], "INVALID", "must not be negative");
    }
    let revenue = match input.annual_revenue {
        Patch::Set(d) => match money::to_minor_non_negative(d) {
            Ok(m) => Patch::Set(m),
            Err(e) => {
                v.push(&["input", "annualRevenue"], "INVALID", format!("annual revenue {e}"));
                Patch::Keep
            }
        },
        Patch::Clear => Patch::Clear,
        Patch::Keep => Patch::Keep,
    };
    let txn = db.begin_write(p.workspace_id).await?;
    let existing = match (&external_id, domain.as_set()) {
        (Some(x), _) => store::account::by_external_id(&*txn, p.workspace_id, x).await?,
        (None, Some(d)) => store::account::by_domain(&*txn, p.workspace_id, d).await?,
        (None, None) => None,
    };
    if existing.is_none() && name.is_none() {
        v.push(&["input", "name"], "REQUIRED", "a new account needs a name");
    }
    v.finish()?;
    ServiceError::check_version("account", input.expected_version, existing.as_ref().map_or(0, |a| a.version))?;
    let by = author(&p);
    let now = Utc::now();
    let mut events = Vec::new();
    let (model, created) = match existing {
        Some(current) => {
            let mut m = current.clone();
            let mut changed = false;
            if let Some(n) = name {
                changed |= m.name != n;
                m.name = n;
            }
            changed |= domain.apply(&mut m.domain);
            changed |= input.industry.map(|s| s.trim().to_owned()).apply(&mut m.industry);
            changed |= input.employee_count.apply(&mut m.employee_count);
            changed |= revenue.apply(&mut m.annual_revenue_minor);
            changed |= country.apply(&mut m.country);
            if let Some(s) = input.customer_status {
                changed |= m.customer_status != s.as_str();
                m.customer_status = s.as_str().to_owned();
            }
            if changed {
                m.updated_at = now;
                m.version = current.version + 1;
                let am = m.into_active_model().reset_all();
                let saved =
                    super::write_at_version::<account::Entity>(&*txn, p.workspace_id, "account", am, current.id, current.version).await?;
                let change = NewChange::updated(ChangeKind::Updated, &current, &saved);
                changes::record(&*txn, p.workspace_id, &by, now, change.into_iter().collect()).await?;
                // Persona criteria and profile rules may read the account's attributes.
                let leads = store::lead::ids_of_account(&*txn, p.workspace_id, saved.id).await?;
                super::persona::refresh_leads(&*txn, p.workspace_id, &leads).await?;
                let entered = super::scoring::refresh_leads(&*txn, p.workspace_id, &leads).await?;
                events = super::scoring::auto_mql(&*txn, p.workspace_id, entered).await?;
                (saved, false)
            } else {
                (current, false)
            }
        }
        None => {
            let mut domain_v = None;
            domain.apply(&mut domain_v);
            let mut industry = None;
            input.industry.map(|s| s.trim().to_owned()).apply(&mut industry);
            let mut employees = None;
            input.employee_count.apply(&mut employees);
            let mut rev = None;
            revenue.apply(&mut rev);
            let mut ctry = None;
            country.apply(&mut ctry);
            let am = account::ActiveModel {
                workspace_id: Set(p.workspace_id),
                external_id: Set(external_id),
                name: Set(name.unwrap_or_default()),
                domain: Set(domain_v),
                industry: Set(industry),
                employee_count: Set(employees),
                annual_revenue_minor: Set(rev),
                country: Set(ctry),
                customer_status: Set(input.customer_status.unwrap_or(LifecycleStatus::Lead).as_str().to_owned()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            };
            let inserted = am.insert(&*txn).await?;
            changes::record(&*txn, p.workspace_id, &by, now, vec![NewChange::created(&inserted)]).await?;
            (inserted, true)
        }
    };
    txn.commit().await?;
    super::scoring::publish(bus, events);
    Ok((model, created))
}
