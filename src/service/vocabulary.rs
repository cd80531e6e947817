//! Workspace vocabularies (channels, touchpoint types, reject reasons, cost categories),
//! extensible by ADMIN.
use chrono::Utc;
use entity::vocabulary_term;
use sea_orm::{ActiveModelTrait, ActiveValue::Set};

use crate::auth::Principal;
use crate::db::Db;
use crate::domain::vocab::normalize_code;
use crate::error::{ServiceError, ServiceResult};
use crate::store;

pub async fn add(db: &Db, p: Principal, kind: &str, raw_code: &str, label: Option<String>) -> ServiceResult<vocabulary_term::Model> {
    let Some(code) = normalize_code(raw_code) else {
        return Err(ServiceError::invalid(
            &["input", "code"],
            "INVALID",
            "use letters, digits and underscores (at most 64)",
        ));
    };
    let txn = db.begin_write(p.workspace_id).await?;
    if store::workspace::vocabulary(&*txn, p.workspace_id, kind)
        .await?
        .iter()
        .any(|t| t.code == code)
    {
        return Err(ServiceError::invalid(&["input", "code"], "TAKEN", format!("{code} exists already")));
    }
    let now = Utc::now();
    let label = super::clean(label).unwrap_or_else(|| code.clone());
    let term = vocabulary_term::ActiveModel {
        workspace_id: Set(p.workspace_id),
        kind: Set(kind.to_owned()),
        code: Set(code),
        label: Set(label),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    txn.commit().await?;
    Ok(term)
}
