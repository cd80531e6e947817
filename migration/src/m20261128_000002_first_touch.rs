//! Each lead's first touch: the time of its earliest touchpoint, kept on the lead so that "the
//! leads first touched in a range" is an index range scan instead of a MIN over every touchpoint.
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
                    .add_column(timestamp_with_time_zone_null("first_touch_at"))
                    .to_owned(),
            )
            .await?;
        // The stored MIN itself (not a value formatted anew), so that on SQLite, where times are
        // text, it equals its touchpoint's occurred_at exactly. One index seek per lead.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE leads SET first_touch_at = (SELECT MIN(occurred_at) FROM touchpoints t \
                 WHERE t.workspace_id = leads.workspace_id AND t.lead_id = leads.id)",
            )
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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("ix_leads_first_touch_at").table("leads").to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table("leads").drop_column("first_touch_at").to_owned())
            .await
    }
}
