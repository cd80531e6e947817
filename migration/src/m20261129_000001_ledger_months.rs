//! The ledger summed per model, campaign and calendar month of the deals' close
//! (`attribution_campaign_months`): a campaign report over whole months reads one row per
//! campaign and month instead of one per credited touch. The service keeps it in step with
//! `attribution_credits` in the same transaction; here it is filled from the existing ledger.
use sea_orm_migration::sea_orm::DatabaseBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "attribution_campaign_months";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(big_integer("model_id"))
                    .col(string_len("currency", 3))
                    // 00:00 UTC of the first day of the month the deals closed in.
                    .col(timestamp_with_time_zone("month_start"))
                    // NULL: the touches without a campaign, or (not attributed) no touch at all.
                    .col(big_integer_null("campaign_id"))
                    // False on the UNATTRIBUTED row (deals no touch earned).
                    .col(boolean("attributed"))
                    .col(big_integer("amount_minor"))
                    .col(big_integer("conversion_micros"))
                    .col(big_integer("touchpoints"))
                    // Distinct deals: a deal closes in one month, so months add up.
                    .col(big_integer("deals"))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TABLE, "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(TABLE, "model_id")
                            .to("attribution_models", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // In campaign order, so that summing a range of months per campaign needs no sort.
        manager
            .create_index(
                Index::create()
                    .name("ix_attribution_campaign_months_read")
                    .table(TABLE)
                    .col("workspace_id")
                    .col("model_id")
                    .col("currency")
                    .col("campaign_id")
                    .col("attributed")
                    .col("month_start")
                    .col("amount_minor")
                    .col("conversion_micros")
                    .col("touchpoints")
                    .col("deals")
                    .to_owned(),
            )
            .await?;
        // What a refresh of one month deletes.
        manager
            .create_index(
                Index::create()
                    .name("ix_attribution_campaign_months_month")
                    .table(TABLE)
                    .col("workspace_id")
                    .col("model_id")
                    .col("month_start")
                    .to_owned(),
            )
            .await?;
        // The month of a stored close, written as the application writes times: on SQLite the
        // RFC 3339 text with "+00:00" (`closed_at` is stored that way, in UTC).
        let month = match manager.get_database_backend() {
            DatabaseBackend::Postgres => "date_trunc('month', closed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            _ => "substr(closed_at, 1, 7) || '-01T00:00:00+00:00'",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO {TABLE} (workspace_id, model_id, currency, month_start, campaign_id, attributed, \
                 amount_minor, conversion_micros, touchpoints, deals) \
                 SELECT workspace_id, model_id, currency, {month}, campaign_id, lead_id IS NOT NULL, \
                 CAST(SUM(amount_minor) AS BIGINT), CAST(SUM(conversion_micros) AS BIGINT), COUNT(lead_id), \
                 COUNT(DISTINCT opportunity_id) \
                 FROM attribution_credits \
                 GROUP BY workspace_id, model_id, currency, {month}, campaign_id, lead_id IS NOT NULL"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TABLE).to_owned()).await
    }
}
