//! The change feed of an import: what the import wrote, found after it wrote it. The import
//! writes in bulk statements that do not return the rows; so the rows of each followed table
//! are read back once, in pages: those with an ID above the table's highest before the import
//! are CREATED, the stored rows the input named that differ now are UPDATED (and their version
//! goes up by one). Every change is by `import`.
//!
//! The import holds the database's write lock on SQLite, so "above the highest ID before" is
//! exactly its rows there. On PostgreSQL a row that another transaction of the same workspace
//! commits while the import runs would be reported by the import as well (a second CREATED of
//! the same version): followers apply changes by `entityId` and `version`, so that repeats
//! nothing.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{account, campaign, campaign_cost, lead, opportunity, opportunity_contact, touchpoint};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement};

use crate::domain::change::ChangeKind;
use crate::events::changes::{self, Author, NewChange, Tracked};
use crate::store::{self, Scoped};

/// Rows read back per statement.
const PAGE: u64 = 10_000;

/// One followed table before the import: its highest ID, and the stored rows the input names.
pub(super) struct Before<E: Scoped> {
    max_id: i64,
    rows: HashMap<i64, E::Model>,
}

impl<E: Scoped> Before<E>
where
    E::Model: Tracked + Clone + Send + Sync,
{
    pub(super) async fn take(db: &impl ConnectionTrait, table: &str, rows: impl IntoIterator<Item = E::Model>) -> Result<Self, DbErr> {
        let backend = db.get_database_backend();
        let sql = format!("SELECT COALESCE(MAX(id), 0) FROM {table}");
        let max_id = match db.query_one_raw(Statement::from_string(backend, sql)).await? {
            Some(row) => row.try_get_by_index::<i64>(0)?,
            None => 0,
        };
        Ok(Self {
            max_id,
            rows: rows.into_iter().map(|m| (E::id_of(&m), m)).collect(),
        })
    }

    /// Records what the import did to this table.
    pub(super) async fn record(self, db: &impl ConnectionTrait, ws: i64, at: DateTime<Utc>) -> Result<u64, DbErr> {
        let by = Author::new("import");
        let mut n = 0;
        // New rows, in ID order.
        let mut last = self.max_id;
        loop {
            let page = store::all(
                db,
                E::in_workspace(ws)
                    .filter(E::id_col().gt(last))
                    .order_by_asc(E::id_col())
                    .limit(PAGE),
            )
            .await?;
            let Some(end) = page.last().map(E::id_of) else { break };
            last = end;
            n += page.len() as u64;
            changes::record(db, ws, &by, at, page.iter().map(NewChange::created).collect()).await?;
        }
        // Stored rows the input named: those it changed.
        let mut ids: Vec<i64> = self.rows.keys().copied().collect();
        ids.sort_unstable();
        for chunk in ids.chunks(PAGE as usize) {
            let now = store::by_ids::<E>(db, ws, chunk).await?;
            let mut changed = Vec::new();
            let mut items = Vec::new();
            // Rows the import deleted (a campaign's cost line when its cost is cleared).
            let found: std::collections::HashSet<i64> = now.iter().map(E::id_of).collect();
            let gone: Vec<NewChange> = chunk
                .iter()
                .filter(|id| !found.contains(id))
                .map(|id| NewChange::deleted(&self.rows[id]))
                .collect();
            n += gone.len() as u64;
            changes::record(db, ws, &by, at, gone).await?;
            for mut after in now {
                let before = &self.rows[&E::id_of(&after)];
                after.set_version(before.version() + 1);
                if let Some(c) = NewChange::updated(ChangeKind::Updated, before, &after) {
                    changed.push(E::id_of(&after));
                    items.push(c);
                }
            }
            if changed.is_empty() {
                continue;
            }
            E::update_many()
                .col_expr(version_col::<E>(), Expr::col(version_col::<E>()).add(1))
                .filter(E::workspace_col().eq(ws))
                .filter(store::id_in(db, E::id_col(), &changed))
                .exec(db)
                .await?;
            n += items.len() as u64;
            changes::record(db, ws, &by, at, items).await?;
        }
        Ok(n)
    }
}

/// The `version` column of a followed table.
fn version_col<E: EntityTrait>() -> E::Column {
    use sea_orm::Iterable;
    E::Column::iter()
        .find(|c| sea_orm::IdenStatic::as_str(c) == "version")
        .expect("a followed table has a version column")
}

/// Every followed table before the import.
pub(super) struct Snapshot {
    leads: Before<lead::Entity>,
    accounts: Before<account::Entity>,
    campaigns: Before<campaign::Entity>,
    costs: Before<campaign_cost::Entity>,
    touchpoints: Before<touchpoint::Entity>,
    opportunities: Before<opportunity::Entity>,
    contacts: Before<opportunity_contact::Entity>,
}

impl Snapshot {
    pub(super) async fn take(db: &impl ConnectionTrait, s: &super::Stored) -> Result<Self, DbErr> {
        let mut leads: HashMap<i64, lead::Model> = HashMap::new();
        for l in s.leads.values().chain(s.leads_by_email.values()) {
            leads.insert(l.id, l.clone());
        }
        Ok(Self {
            leads: Before::take(db, "leads", leads.into_values()).await?,
            accounts: Before::take(db, "accounts", s.accounts.values().cloned()).await?,
            campaigns: Before::take(db, "campaigns", s.campaigns.values().cloned()).await?,
            costs: Before::take(db, "campaign_costs", s.costs.iter().cloned()).await?,
            touchpoints: Before::take(db, "touchpoints", []).await?,
            opportunities: Before::take(db, "opportunities", s.opportunities.values().cloned()).await?,
            contacts: Before::take(db, "opportunity_contacts", s.contacts.values().cloned()).await?,
        })
    }

    /// Also the stored leads only the touchpoints name: a bounce or unsubscription among the
    /// touchpoints changes them.
    pub(super) async fn also_leads(&mut self, db: &impl ConnectionTrait, ws: i64, ids: impl IntoIterator<Item = i64>) -> Result<(), DbErr> {
        let missing: Vec<i64> = ids
            .into_iter()
            .filter(|id| *id <= self.leads.max_id && !self.leads.rows.contains_key(id))
            .collect();
        for chunk in missing.chunks(PAGE as usize) {
            for l in store::by_ids::<lead::Entity>(db, ws, chunk).await? {
                self.leads.rows.insert(l.id, l);
            }
        }
        Ok(())
    }

    /// Records every change of the import: how many.
    pub(super) async fn record(self, db: &impl ConnectionTrait, ws: i64, at: DateTime<Utc>) -> Result<u64, DbErr> {
        Ok(self.accounts.record(db, ws, at).await?
            + self.campaigns.record(db, ws, at).await?
            + self.costs.record(db, ws, at).await?
            + self.leads.record(db, ws, at).await?
            + self.opportunities.record(db, ws, at).await?
            + self.contacts.record(db, ws, at).await?
            + self.touchpoints.record(db, ws, at).await?)
    }
}
