//! Cost categories become a workspace vocabulary (kind `COST_CATEGORY`), like channels and
//! touchpoint types: workspaces made before this migration get the seven former enum values
//! (new workspaces get them on creation), plus any other category their cost lines already
//! hold, so that every stored line names a term. `campaign_costs.category` keeps its form.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const DEFAULTS: &[(&str, &str)] = &[
    ("PRODUCTION", "Production"),
    ("MEDIA", "Media"),
    ("CONTENT", "Content"),
    ("SOFTWARE", "Software"),
    ("TICKETS", "Tickets"),
    ("DISCOUNTS", "Discounts"),
    ("OTHER", "Other"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // The workspace's own timestamp is reused so that the value is stored exactly as the
        // application stores times.
        for (code, label) in DEFAULTS {
            db.execute_unprepared(&format!(
                "INSERT INTO vocabulary_terms (workspace_id, kind, code, label, created_at, updated_at) \
                 SELECT id, 'COST_CATEGORY', '{code}', '{label}', created_at, created_at FROM workspaces"
            ))
            .await?;
        }
        db.execute_unprepared(
            "INSERT INTO vocabulary_terms (workspace_id, kind, code, label, created_at, updated_at) \
             SELECT w.id, 'COST_CATEGORY', c.category, c.category, w.created_at, w.created_at \
             FROM workspaces w JOIN (SELECT DISTINCT workspace_id, category FROM campaign_costs) c ON c.workspace_id = w.id \
             WHERE NOT EXISTS (SELECT 1 FROM vocabulary_terms t \
               WHERE t.workspace_id = w.id AND t.kind = 'COST_CATEGORY' AND t.code = c.category)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM vocabulary_terms WHERE kind = 'COST_CATEGORY'")
            .await?;
        Ok(())
    }
}
