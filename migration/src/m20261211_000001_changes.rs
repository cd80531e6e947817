//! The change feed: every change of a workspace's records as a row of `changes`, numbered per
//! workspace without gaps (`change_counters`, handed out under a row lock like `event_counters`),
//! and a `version` on each record that a change increments.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The records whose changes are numbered: each gets a version (1 when created).
const VERSIONED: &[&str] = &[
    "leads",
    "accounts",
    "campaigns",
    "campaign_costs",
    "touchpoints",
    "opportunities",
    "opportunity_contacts",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("changes")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(big_integer("seq"))
                    .col(string("entity"))
                    .col(big_integer("entity_id"))
                    .col(string("kind"))
                    .col(big_integer_null("version"))
                    .col(string("actor"))
                    .col(string_null("source"))
                    .col(json_binary("data"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("changes", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("change_counters")
                    .col(big_integer("workspace_id").primary_key())
                    .col(big_integer("seq"))
                    // The highest number deleted by the retention: a cursor below it has lost
                    // changes (CURSOR_EXPIRED).
                    .col(big_integer("pruned").default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .from("change_counters", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let indexes = [
            // Reading after a cursor, with or without an entity filter.
            ("ux_changes_seq", &["workspace_id", "seq"][..], true),
            // An erasure scrubs the personal values of a lead's earlier changes.
            ("ix_changes_entity", &["workspace_id", "entity", "entity_id"][..], false),
            // The retention deletes by age.
            ("ix_changes_created", &["created_at"][..], false),
        ];
        for (name, cols, unique) in indexes {
            let mut index = Index::create().name(name).table("changes").to_owned();
            for c in cols {
                index.col(*c);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }
        for table in VERSIONED {
            manager
                .alter_table(
                    Table::alter()
                        .table(*table)
                        .add_column(big_integer("version").default(1))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in VERSIONED {
            manager
                .alter_table(Table::alter().table(*table).drop_column("version").to_owned())
                .await?;
        }
        for table in ["change_counters", "changes"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
