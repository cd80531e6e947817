//! Reach and forecast: a lead's contact data on the social and postal channels, and a
//! campaign's expected leads (the forecast beside its expected revenue).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const LEAD_COLUMNS: &[&str] = &["linkedin_url", "twitter_handle", "facebook_url", "street", "postal_code", "city"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for c in LEAD_COLUMNS {
            manager
                .alter_table(Table::alter().table("leads").add_column(string_null(*c)).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("campaigns")
                    .add_column(big_integer_null("expected_leads"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table("campaigns").drop_column("expected_leads").to_owned())
            .await?;
        for c in LEAD_COLUMNS.iter().rev() {
            manager
                .alter_table(Table::alter().table("leads").drop_column(*c).to_owned())
                .await?;
        }
        Ok(())
    }
}
