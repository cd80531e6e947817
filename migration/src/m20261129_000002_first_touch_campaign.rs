//! Each lead's first-touch campaign: the campaign of its first touchpoint in path order (time,
//! then external ID in byte order with none first, then ID), kept beside `first_touch_at`, so
//! that "the leads each campaign sourced in a range" is one aggregate over an index range of
//! leads instead of a seek into the touchpoints for every lead.
use sea_orm_migration::sea_orm::DatabaseBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("leads")
                    .add_column(big_integer_null("first_touch_campaign_id"))
                    .to_owned(),
            )
            .await?;
        // The same statement as `store::lead::refresh_first_touch` (byte order of external IDs:
        // PostgreSQL's "C" collation, SQLite's BINARY; `+` keeps SQLite without statistics from
        // reading the order off the (workspace, external ID) index for every lead).
        let external = match manager.get_database_backend() {
            DatabaseBackend::Postgres => "t.external_id COLLATE \"C\"",
            _ => "+t.external_id",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE leads SET first_touch_campaign_id = (SELECT t.campaign_id FROM touchpoints t \
                 WHERE t.workspace_id = leads.workspace_id AND t.lead_id = leads.id AND t.occurred_at = leads.first_touch_at \
                 ORDER BY {external} NULLS FIRST, t.id LIMIT 1) WHERE first_touch_at IS NOT NULL"
            ))
            .await?;
        // A new name: on SQLite the pool's other connections may still hold the old schema when
        // the index is created, and would report a re-used name as existing.
        manager
            .drop_index(Index::drop().name("ix_leads_first_touch_at").table("leads").to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_leads_first_touch_campaign")
                    .table("leads")
                    .col("workspace_id")
                    .col("first_touch_at")
                    .col("first_touch_campaign_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("ix_leads_first_touch_campaign").table("leads").to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_leads_first_touch_at")
                    .table("leads")
                    .col("workspace_id")
                    .col("first_touch_at")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table("leads").drop_column("first_touch_campaign_id").to_owned())
            .await
    }
}
