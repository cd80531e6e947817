//! How well each lead matches each persona, kept current as leads, accounts and personas change.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("lead_persona_matches")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(big_integer("lead_id"))
                    .col(big_integer("persona_id"))
                    // The match is matched_weight / total_weight, kept as integers so that it
                    // stays exact (a third is a third).
                    .col(integer("matched_weight"))
                    .col(integer("total_weight"))
                    .col(boolean("is_member"))
                    .col(json_binary("criteria_met"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("lead_persona_matches", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("lead_persona_matches", "lead_id")
                            .to("leads", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("lead_persona_matches", "persona_id")
                            .to("personas", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_lead_persona_matches")
                    .table("lead_persona_matches")
                    .col("workspace_id")
                    .col("persona_id")
                    .col("lead_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_lead_persona_matches_lead")
                    .table("lead_persona_matches")
                    .col("workspace_id")
                    .col("lead_id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("lead_persona_matches").to_owned()).await
    }
}
