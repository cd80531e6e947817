//! `ingest_cursors` table: the last stream sequence processed per external inbox.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ingest_cursors")]
pub struct Model {
    /// `jetstream:{stream}`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    pub position: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
