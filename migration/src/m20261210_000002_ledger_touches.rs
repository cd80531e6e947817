//! Ledger rows that sum several touches: a deal's credits under a model version are one row per
//! (lead, campaign, touch type) of its path, with the number of credited touches it sums, instead
//! of one row per touch. A path of a thousand page views of one campaign was a thousand rows per
//! model version, written again on every change of the deal's path (a visitor stitched to a
//! lead); now it is one. Existing rows are one touch each and stay valid.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("attribution_credits")
                    .add_column(big_integer("touches").default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE attribution_credits SET touches = 0 WHERE lead_id IS NULL")
            .await?;
        // The covering index of range reads gains the count (a new name: on SQLite the pool's
        // other connections may still hold the old schema when the index is created).
        manager
            .drop_index(
                Index::drop()
                    .name("ix_attribution_credits_read")
                    .table("attribution_credits")
                    .to_owned(),
            )
            .await?;
        manager.create_index(read_index("ix_attribution_credits_sums", true)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_attribution_credits_sums")
                    .table("attribution_credits")
                    .to_owned(),
            )
            .await?;
        manager.create_index(read_index("ix_attribution_credits_read", false)).await?;
        manager
            .alter_table(Table::alter().table("attribution_credits").drop_column("touches").to_owned())
            .await
    }
}

fn read_index(name: &str, touches: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table("attribution_credits");
    for col in [
        "workspace_id",
        "model_id",
        "currency",
        "closed_at",
        "campaign_id",
        "touch_type",
        "lead_id",
        "opportunity_id",
        "amount_minor",
        "conversion_micros",
    ] {
        index.col(col);
    }
    if touches {
        index.col("touches");
    }
    index.to_owned()
}
