//! Workspaces and API keys (CLI and demo set-up).
use entity::{api_key, workspace};

use crate::auth;
use crate::db::Db;
use crate::domain::vocab::Role;
use crate::error::AppError;
use crate::store;

/// Creates a workspace with the default funnel and vocabularies.
pub async fn create(db: &Db, name: &str) -> Result<workspace::Model, AppError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::BadInput("a workspace needs a name".into()));
    }
    let txn = db.begin_write_unscoped().await?;
    if store::workspace::by_name(&*txn, name).await?.is_some() {
        return Err(AppError::Conflict(format!("workspace {name:?} exists already")));
    }
    let ws = store::workspace::insert(&*txn, name, "EUR").await?;
    // Version 1 of every rule-based attribution model, with the defaults.
    super::attribution::current_models(&*txn, ws.id).await?;
    txn.commit().await?;
    Ok(ws)
}

/// The workspace called `name`, created if it does not exist yet.
pub async fn find_or_create(db: &Db, name: &str) -> Result<workspace::Model, AppError> {
    match store::workspace::by_name(&db.conn, name.trim()).await? {
        Some(ws) => Ok(ws),
        None => create(db, name).await,
    }
}

/// Creates an API key, optionally for one user (by externalId or e-mail); the key itself is
/// returned once and only its hash is stored.
pub async fn create_key(
    db: &Db,
    workspace: &str,
    role: Role,
    name: &str,
    user: Option<&str>,
) -> Result<(String, api_key::Model), AppError> {
    let ws = store::workspace::by_name(&db.conn, workspace.trim())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no workspace {workspace:?}")))?;
    let user_id = match user.map(str::trim) {
        Some(u) => Some(
            store::workspace::user_by_handle(&db.conn, ws.id, u)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("no user {u:?} in workspace {workspace:?}")))?
                .id,
        ),
        None => None,
    };
    let (key, hash) = auth::generate_key();
    // Keys are not data: no reports change.
    let txn = db.begin_write_unscoped().await?;
    let row = store::workspace::insert_key(&*txn, ws.id, name, role, &auth::key_prefix(&key), &hash, user_id).await?;
    txn.commit().await?;
    Ok((key, row))
}
