//! Attribution: the workspace's configured models (versioned) and the ledger of credits they
//! give each won deal's touchpoints.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("attribution_models")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    // FIRST_TOUCH, LAST_TOUCH, LINEAR, TIME_DECAY, POSITION_BASED, W_SHAPED,
                    // FULL_PATH, CUSTOM.
                    .col(string("kind"))
                    // 1, 2, ... per kind: every change of the parameters is a new version.
                    .col(integer("version"))
                    // {"lookbackDays": 365, "halfLifeSeconds": ..., "weights": {"TYPE": "5"}}.
                    .col(json_binary("params"))
                    // The version the ledger is kept for; one per kind.
                    .col(boolean("is_current"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("attribution_models", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_attribution_models_kind_version")
                    .table("attribution_models")
                    .col("workspace_id")
                    .col("kind")
                    .col("version")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("attribution_credits")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(big_integer("model_id"))
                    .col(big_integer("opportunity_id"))
                    // The deal's close and currency, copied so that a range read is one index scan.
                    .col(timestamp_with_time_zone("closed_at"))
                    .col(string_len("currency", 3))
                    // Place on the deal's path (0-based); the touchpoint is NULL for a deal
                    // that no touch earned (its whole amount, UNATTRIBUTED).
                    .col(integer("position"))
                    .col(big_integer_null("touchpoint_id"))
                    .col(big_integer_null("lead_id"))
                    .col(big_integer_null("campaign_id"))
                    .col(string_null("touch_type"))
                    .col(big_integer("amount_minor"))
                    // Share of the deal in millionths.
                    .col(big_integer("conversion_micros"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("attribution_credits", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("attribution_credits", "model_id")
                            .to("attribution_models", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("attribution_credits", "opportunity_id")
                            .to("opportunities", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Covers every grouping of a range read: no table access.
        manager
            .create_index(
                Index::create()
                    .name("ix_attribution_credits_read")
                    .table("attribution_credits")
                    .col("workspace_id")
                    .col("model_id")
                    .col("currency")
                    .col("closed_at")
                    .col("campaign_id")
                    .col("touch_type")
                    .col("lead_id")
                    .col("opportunity_id")
                    .col("amount_minor")
                    .col("conversion_micros")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_attribution_credits_opportunity")
                    .table("attribution_credits")
                    .col("workspace_id")
                    .col("opportunity_id")
                    .col("model_id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("attribution_credits").to_owned()).await?;
        manager.drop_table(Table::drop().table("attribution_models").to_owned()).await
    }
}
