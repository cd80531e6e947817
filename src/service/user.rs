//! Users (lead and deal owners).
use chrono::Utc;
use entity::user;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter};

use super::clean;
use crate::auth::Principal;
use crate::db::Db;
use crate::domain::email::Email;
use crate::error::{ServiceError, ServiceResult};
use crate::store::Scoped;

pub struct UserInput {
    pub external_id: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub team: Option<String>,
    pub active: bool,
}

pub async fn upsert(db: &Db, p: Principal, input: UserInput) -> ServiceResult<(user::Model, bool)> {
    let ws = p.workspace_id;
    let Some(name) = clean(Some(input.name)) else {
        return Err(ServiceError::invalid(&["input", "name"], "REQUIRED", "a user needs a name"));
    };
    let email = match clean(input.email) {
        Some(e) => Some(
            Email::parse(&e)
                .map_err(|m| ServiceError::invalid(&["input", "email"], "INVALID", format!("e-mail {m}")))?
                .into_inner(),
        ),
        None => None,
    };
    let external_id = clean(input.external_id);
    let txn = db.begin_write(ws).await?;
    let existing = match (&external_id, &email) {
        (Some(x), _) => {
            user::Entity::in_workspace(ws)
                .filter(user::Column::ExternalId.eq(x.as_str()))
                .one(&*txn)
                .await?
        }
        (None, Some(e)) => {
            user::Entity::in_workspace(ws)
                .filter(user::Column::Email.eq(e.as_str()))
                .one(&*txn)
                .await?
        }
        (None, None) => None,
    };
    let now = Utc::now();
    let team = clean(input.team);
    let result = match existing {
        Some(u) if u.name == name && u.email == email && u.team == team && u.active == input.active => (u, false),
        Some(u) => {
            let mut am = u.into_active_model();
            am.name = Set(name);
            am.email = Set(email);
            am.team = Set(team);
            am.active = Set(input.active);
            am.updated_at = Set(now);
            (am.update(&*txn).await?, false)
        }
        None => {
            let am = user::ActiveModel {
                workspace_id: Set(ws),
                external_id: Set(external_id),
                name: Set(name),
                email: Set(email),
                team: Set(team),
                active: Set(input.active),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            };
            (am.insert(&*txn).await?, true)
        }
    };
    txn.commit().await?;
    Ok(result)
}
