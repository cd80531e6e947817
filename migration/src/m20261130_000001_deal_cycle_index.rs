//! The sales cycle (`velocity { salesCycle }`) reads the won deals closed in a range (amount,
//! created at, closed at) and counts the lost and the open ones, all in the workspace's currency.
//! The `(workspace, status, closed_at)` index found the rows but had to look up each one in the
//! table for its currency, amount and creation time; this index answers all three statements
//! from the index alone.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "ix_opportunities_cycle";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table("opportunities")
                    .col("workspace_id")
                    .col("status")
                    .col("currency")
                    .col("closed_at")
                    .col("created_at")
                    .col("amount_minor")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(NAME).table("opportunities").to_owned()).await
    }
}
