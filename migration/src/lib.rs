//! The one migration set, valid on SQLite and PostgreSQL.
pub use sea_orm_migration::prelude::*;

mod m20261125_000001_init;
mod m20261126_000001_handoffs;
mod m20261126_000002_persona_matches;
mod m20261126_000003_scoring;
mod m20261127_000001_attribution;
mod m20261127_000002_data_revision;
mod m20261128_000001_reach;
mod m20261128_000002_first_touch;
mod m20261129_000001_ledger_months;
mod m20261129_000002_first_touch_campaign;
mod m20261129_000003_partial_unique_keys;
mod m20261130_000001_deal_cycle_index;
mod m20261207_000001_cost_categories;
mod m20261208_000001_capture;
mod m20261209_000001_ingest_cursors;
mod m20261210_000001_lead_merges;
mod m20261210_000002_ledger_touches;
mod m20261211_000001_changes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_init::Migration),
            Box::new(m20261126_000001_handoffs::Migration),
            Box::new(m20261126_000002_persona_matches::Migration),
            Box::new(m20261126_000003_scoring::Migration),
            Box::new(m20261127_000001_attribution::Migration),
            Box::new(m20261127_000002_data_revision::Migration),
            Box::new(m20261128_000001_reach::Migration),
            Box::new(m20261128_000002_first_touch::Migration),
            Box::new(m20261129_000001_ledger_months::Migration),
            Box::new(m20261129_000002_first_touch_campaign::Migration),
            Box::new(m20261129_000003_partial_unique_keys::Migration),
            Box::new(m20261130_000001_deal_cycle_index::Migration),
            Box::new(m20261207_000001_cost_categories::Migration),
            Box::new(m20261208_000001_capture::Migration),
            Box::new(m20261209_000001_ingest_cursors::Migration),
            Box::new(m20261210_000001_lead_merges::Migration),
            Box::new(m20261210_000002_ledger_touches::Migration),
            Box::new(m20261211_000001_changes::Migration),
        ]
    }
}
