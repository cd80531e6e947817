//! Webhooks: where events go for sales tools that cannot hold a WebSocket (ADMIN keeps them).
//! A URL is refused unless it is http(s), without credentials, to a public address or to a
//! network the server allow-lists (`domain::destination`); delivery checks it again.
use chrono::Utc;
use entity::webhook;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};

use crate::auth::Principal;
use crate::db::Db;
use crate::domain::destination::AllowList;
use crate::domain::handoff::EventKind;
use crate::error::{AppError, ServiceResult, Validator};
use crate::store;

/// The shortest secret accepted: the HMAC key must not be guessable.
pub const MIN_SECRET: usize = 16;

fn check_url(v: &mut Validator, allow: &AllowList, raw: &str) -> Option<String> {
    match allow.check_url(raw) {
        Ok(u) => Some(u.to_string()),
        Err(refusal) => {
            v.push(&["input", "url"], refusal.code(), refusal.to_string());
            None
        }
    }
}

fn check_secret(v: &mut Validator, secret: &str) {
    if secret.chars().count() < MIN_SECRET {
        v.push(
            &["input", "secret"],
            "INVALID",
            format!("must have at least {MIN_SECRET} characters"),
        );
    }
}

fn kinds_json(kinds: &[EventKind]) -> serde_json::Value {
    let mut list: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    list.sort_unstable();
    list.dedup();
    serde_json::json!(list)
}

/// `createWebhook`: events of `kinds` (all when empty) are POSTed to `url`, signed with `secret`;
/// `allow` is the server's `--webhook-allow`.
pub async fn create(
    db: &Db,
    p: Principal,
    allow: &AllowList,
    url: &str,
    kinds: &[EventKind],
    secret: &str,
) -> ServiceResult<webhook::Model> {
    let mut v = Validator::default();
    let url = check_url(&mut v, allow, url);
    check_secret(&mut v, secret);
    v.finish()?;
    let now = Utc::now();
    let txn = db.begin_write(p.workspace_id).await?;
    let hook = webhook::ActiveModel {
        workspace_id: Set(p.workspace_id),
        url: Set(url.expect("validated")),
        kinds: Set(kinds_json(kinds)),
        secret: Set(secret.to_owned()),
        active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    txn.commit().await?;
    Ok(hook)
}

/// The changes `updateWebhook` may make.
#[derive(Debug, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub kinds: Option<Vec<EventKind>>,
    pub secret: Option<String>,
    /// A paused webhook keeps collecting deliveries and sends them, in order, once active again.
    pub active: Option<bool>,
}

pub async fn update(db: &Db, p: Principal, allow: &AllowList, id: i64, change: WebhookChange) -> ServiceResult<webhook::Model> {
    let mut v = Validator::default();
    let url = change.url.as_deref().and_then(|u| check_url(&mut v, allow, u));
    if let Some(s) = &change.secret {
        check_secret(&mut v, s);
    }
    v.finish()?;
    let txn = db.begin_write(p.workspace_id).await?;
    let hook = store::by_id::<webhook::Entity>(&*txn, p.workspace_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("webhook"))?;
    let mut am = hook.into_active_model();
    if let Some(u) = url {
        am.url = Set(u);
    }
    if let Some(k) = change.kinds {
        am.kinds = Set(kinds_json(&k));
    }
    if let Some(s) = change.secret {
        am.secret = Set(s);
    }
    if let Some(a) = change.active {
        am.active = Set(a);
    }
    am.updated_at = Set(Utc::now());
    let saved = am.update(&*txn).await?;
    txn.commit().await?;
    Ok(saved)
}

/// Deletes a webhook with its delivery log.
pub async fn delete(db: &Db, p: Principal, id: i64) -> ServiceResult<webhook::Model> {
    let txn = db.begin_write(p.workspace_id).await?;
    let hook = store::by_id::<webhook::Entity>(&*txn, p.workspace_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("webhook"))?;
    webhook::Entity::delete_by_id(id).exec(&*txn).await?;
    txn.commit().await?;
    Ok(hook)
}
