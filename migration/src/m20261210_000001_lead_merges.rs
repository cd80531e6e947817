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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table("leads").drop_column("merged_into_id").to_owned())
            .await
    }
}
