//! Where the processor stands in an inbox outside the database (a NATS JetStream stream): the
//! last stream sequence it processed, written in the transaction that processed it, so that a
//! hit is processed once even when the stream hands it out again.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("ingest_cursors")
                    .col(string("source").primary_key())
                    .col(big_integer("position"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("ingest_cursors").to_owned()).await
    }
}
