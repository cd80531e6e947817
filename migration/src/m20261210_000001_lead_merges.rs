//! Merged leads: `mergeLeads` keeps the duplicate as an erased stub that names the lead it was
//! merged into, so that an ID a client or a personal mailing link still holds leads to the
//! survivor.
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
                    .add_column(big_integer_null("merged_into_id"))
                    .to_owned(),
            )
            .await?;
        // A merge re-points the stubs merged into the duplicate; the funnel snapshot counts them.
        manager
            .create_index(
                Index::create()
                    .name("ix_leads_merged_into")
                    .table("leads")
                    .col("workspace_id")
                    .col("merged_into_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("ix_leads_merged_into").table("leads").to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table("leads").drop_column("merged_into_id").to_owned())
            .await
    }
}
