//! The handoff loop: routing rules, SLA deadlines, the per-workspace event sequence, webhooks
//! and their deliveries, and API keys that speak for one user.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Added columns, as SQL that SQLite and PostgreSQL both accept (SQLite can add a column with a
/// foreign key only this way, and only with a NULL default).
const ADD_COLUMNS: &[&str] = &[
    "ALTER TABLE api_keys ADD COLUMN user_id BIGINT REFERENCES users (id) ON DELETE SET NULL",
    "ALTER TABLE workspaces ADD COLUMN handoff_owner_id BIGINT REFERENCES users (id) ON DELETE SET NULL",
    "ALTER TABLE handoffs ADD COLUMN from_stage_id BIGINT REFERENCES funnel_stages (id) ON DELETE RESTRICT",
    "ALTER TABLE handoffs ADD COLUMN routing_rule_id BIGINT REFERENCES routing_rules (id) ON DELETE SET NULL",
    "ALTER TABLE handoffs ADD COLUMN due_at TIMESTAMP WITH TIME ZONE",
    "ALTER TABLE handoffs ADD COLUMN responded_by TEXT",
];

/// The default reject reasons (as `crate::domain::handoff::DEFAULT_REJECT_REASONS`).
const REJECT_REASONS: &[(&str, &str)] = &[
    ("NO_BUDGET", "No Budget"),
    ("NO_NEED", "No Need"),
    ("WRONG_CONTACT", "Wrong Contact"),
    ("COMPETITOR", "Competitor"),
    ("DUPLICATE", "Duplicate"),
    ("OTHER", "Other"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("routing_rules")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(integer("position"))
                    .col(string("name"))
                    .col(json_binary_null("countries"))
                    .col(big_integer_null("persona_id"))
                    .col(json_binary("user_ids"))
                    .col(integer("next_index"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("routing_rules", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("routing_rules", "persona_id")
                            .to("personas", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("event_counters")
                    .col(big_integer("workspace_id").primary_key())
                    .col(big_integer("seq"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("event_counters", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhooks")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(string("url"))
                    .col(json_binary("kinds"))
                    .col(string("secret"))
                    .col(boolean("active"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("webhooks", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_deliveries")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(big_integer("webhook_id"))
                    .col(big_integer("event_id"))
                    .col(big_integer("seq"))
                    .col(string("status"))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(integer_null("last_status_code"))
                    .col(string_null("last_error"))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("webhook_deliveries", "workspace_id")
                            .to("workspaces", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("webhook_deliveries", "webhook_id")
                            .to("webhooks", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("webhook_deliveries", "event_id")
                            .to("events", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for sql in ADD_COLUMNS {
            db.execute_unprepared(sql).await?;
        }
        // Workspaces made before this migration get the default reasons a rejection can give
        // (new workspaces get them on creation); the workspace's own timestamp is reused so that
        // the value is stored exactly as the application stores times.
        for (code, label) in REJECT_REASONS {
            db.execute_unprepared(&format!(
                "INSERT INTO vocabulary_terms (workspace_id, kind, code, label, created_at, updated_at) \
                 SELECT id, 'REJECT_REASON', '{code}', '{label}', created_at, created_at FROM workspaces"
            ))
            .await?;
        }
        let indexes = [
            (
                "ix_routing_rules_position",
                "routing_rules",
                &["workspace_id", "position"][..],
                false,
            ),
            (
                "ux_webhook_deliveries_event",
                "webhook_deliveries",
                &["webhook_id", "event_id"],
                true,
            ),
            // The dispatcher's queue: the oldest pending delivery of each webhook.
            (
                "ix_webhook_deliveries_queue",
                "webhook_deliveries",
                &["status", "webhook_id", "seq"],
                false,
            ),
            (
                "ix_webhook_deliveries_webhook",
                "webhook_deliveries",
                &["workspace_id", "webhook_id", "id"],
                false,
            ),
            ("ix_webhooks_id", "webhooks", &["workspace_id", "id"], false),
            (
                "ix_handoffs_owner_created_at_id",
                "handoffs",
                &["workspace_id", "owner_id", "created_at", "id"],
                false,
            ),
            (
                "ix_handoffs_created_at_id",
                "handoffs",
                &["workspace_id", "created_at", "id"],
                false,
            ),
            ("ix_handoffs_due_at", "handoffs", &["workspace_id", "status", "due_at"], false),
        ];
        for (name, table, cols, unique) in indexes {
            let mut index = Index::create();
            index.name(name).table(table);
            for c in cols {
                index.col(*c);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    /// SQLite cannot drop a column that has a foreign key; there `down` fails at the first one.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["ix_handoffs_owner_created_at_id", "ix_handoffs_created_at_id", "ix_handoffs_due_at"] {
            manager.drop_index(Index::drop().name(name).table("handoffs").to_owned()).await?;
        }
        let db = manager.get_connection();
        for (table, column) in [
            ("handoffs", "responded_by"),
            ("handoffs", "due_at"),
            ("handoffs", "routing_rule_id"),
            ("handoffs", "from_stage_id"),
            ("workspaces", "handoff_owner_id"),
            ("api_keys", "user_id"),
        ] {
            db.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN {column}")).await?;
        }
        for table in ["webhook_deliveries", "webhooks", "event_counters", "routing_rules"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
