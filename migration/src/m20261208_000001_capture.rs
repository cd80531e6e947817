//! First-party capture: a workspace's tracking keys (the publishable site key and the secret
//! that signs its links), tracking links, anonymous visitors, every processed hit, the durable
//! inbox that hits are appended to before they are acknowledged, and the processor's tallies.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn cascade(table: &'static str, column: &'static str, to: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(to, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(name: &str, table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(*c);
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tracking_keys")
                    .col(big_integer("workspace_id").primary_key())
                    .col(string_uniq("site_key"))
                    .col(string("secret"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade("tracking_keys", "workspace_id", "workspaces"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("tracking_links")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(big_integer("campaign_id"))
                    .col(string("destination"))
                    .col(string("touch_type"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut cascade("tracking_links", "workspace_id", "workspaces"))
                    .foreign_key(&mut cascade("tracking_links", "campaign_id", "campaigns"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_tracking_links_campaign",
                "tracking_links",
                &["workspace_id", "campaign_id", "id"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("visitors")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(string("uid"))
                    .col(big_integer_null("lead_id"))
                    .col(boolean("bot"))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .col(timestamp_with_time_zone_null("identified_at"))
                    .foreign_key(&mut cascade("visitors", "workspace_id", "workspaces"))
                    .foreign_key(&mut cascade("visitors", "lead_id", "leads"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ux_visitors_uid", "visitors", &["workspace_id", "uid"]).unique().to_owned())
            .await?;
        manager
            .create_index(index("ix_visitors_lead", "visitors", &["workspace_id", "lead_id"]))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("tracked_hits")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(big_integer_null("visitor_id"))
                    .col(big_integer_null("lead_id"))
                    .col(big_integer_null("campaign_id"))
                    .col(big_integer_null("link_id"))
                    .col(string("touch_type"))
                    .col(string_null("event_id"))
                    .col(string_null("campaign_code"))
                    .col(boolean("machine"))
                    .col(boolean("bot"))
                    .col(string_null("url"))
                    .col(string_null("referrer"))
                    .col(json_binary_null("params"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(timestamp_with_time_zone("received_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut cascade("tracked_hits", "workspace_id", "workspaces"))
                    .foreign_key(&mut cascade("tracked_hits", "visitor_id", "visitors"))
                    .foreign_key(&mut cascade("tracked_hits", "lead_id", "leads"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("tracked_hits", "campaign_id")
                            .to("campaigns", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("ix_tracked_hits_visitor", &["workspace_id", "visitor_id", "event_id"][..]),
            ("ix_tracked_hits_lead", &["workspace_id", "lead_id"][..]),
            ("ix_tracked_hits_campaign", &["workspace_id", "campaign_id", "touch_type"][..]),
        ] {
            manager.create_index(index(name, "tracked_hits", cols)).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("ingest_inbox")
                    .col(big_pk_auto("id"))
                    .col(big_integer("workspace_id"))
                    .col(timestamp_with_time_zone("received_at"))
                    .col(text("body"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("ingest_counters")
                    .col(big_integer("workspace_id").primary_key())
                    .col(big_integer("processed"))
                    .col(big_integer("rejected"))
                    .col(timestamp_with_time_zone_null("last_received_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade("ingest_counters", "workspace_id", "workspaces"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("tracking_unknown_codes")
                    .col(big_integer("workspace_id"))
                    .col(string("code"))
                    .col(big_integer("hits"))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .primary_key(Index::create().col("workspace_id").col("code"))
                    .foreign_key(&mut cascade("tracking_unknown_codes", "workspace_id", "workspaces"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "tracking_unknown_codes",
            "ingest_counters",
            "ingest_inbox",
            "tracked_hits",
            "visitors",
            "tracking_links",
            "tracking_keys",
        ] {
            manager.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
