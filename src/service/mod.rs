//! Use cases: one function per thing a user does, each inside one transaction.
pub mod account;
pub mod attribution;
pub mod campaign;
pub mod funnel;
pub mod handoff;
pub mod kpi;
pub mod lead;
pub mod merge;
pub mod opportunity;
pub mod persona;
pub mod scoring;
pub mod scoring_model;
pub mod touchpoint;
pub mod tracking;
pub mod user;
pub mod vocabulary;
pub mod webhook;
pub mod workspace;

use entity::funnel_stage;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter};

use crate::auth::Principal;
use crate::events::changes::Author;
use crate::store::Scoped;

/// A field of a partial update: left alone, cleared, or set.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    /// Applies the patch to the current value; returns whether it changed.
    pub fn apply(self, current: &mut Option<T>) -> bool
    where
        T: PartialEq,
    {
        let next = match self {
            Patch::Keep => return false,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        };
        let changed = *current != next;
        *current = next;
        changed
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(v) => Patch::Set(f(v)),
        }
    }

    pub fn as_set(&self) -> Option<&T> {
        match self {
            Patch::Set(v) => Some(v),
            _ => None,
        }
    }
}

impl<T> From<Option<T>> for Patch<T> {
    /// For create inputs: absent means "not set".
    fn from(v: Option<T>) -> Self {
        match v {
            Some(v) => Patch::Set(v),
            None => Patch::Keep,
        }
    }
}

/// How history rows name who did something.
pub fn actor(p: &Principal) -> String {
    format!("api-key:{}", p.key_id)
}

/// Who writes, as the change feed records it: the key's actor and the request's source tag.
pub fn author(p: &Principal) -> Author {
    Author {
        actor: actor(p),
        source: p.source.map(|s| s.as_str().to_owned()),
    }
}

/// A funnel stage of the workspace by key (e.g. "LEAD").
pub async fn stage_by_key(db: &impl ConnectionTrait, ws: i64, key: &str) -> Result<Option<funnel_stage::Model>, DbErr> {
    funnel_stage::Entity::in_workspace(ws)
        .filter(funnel_stage::Column::Key.eq(key))
        .one(db)
        .await
}

/// Trimmed text; `None` when blank.
pub fn clean(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Writes `am` over row `id` of workspace `ws` if the row is still at `version` (read by the
/// caller): the written row, or CONFLICT with the version it is at now when a concurrent write
/// changed it first (`what` names the record in the message).
pub(crate) async fn write_at_version<E>(
    db: &impl sea_orm::ConnectionTrait,
    ws: i64,
    what: &str,
    am: E::ActiveModel,
    id: i64,
    version: i64,
) -> crate::error::ServiceResult<E::Model>
where
    E: crate::store::Scoped,
    E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
    E::Model: crate::events::changes::Tracked,
{
    use crate::events::changes::Tracked;
    if let Some(saved) = crate::store::update_versioned::<E>(db, am, id, version).await? {
        return Ok(saved);
    }
    match crate::store::by_id::<E>(db, ws, id).await? {
        Some(now) => Err(crate::error::ServiceError::stale(what, now.version())),
        None => Err(crate::error::AppError::not_found(what).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::Patch;

    #[test]
    fn patches_apply() {
        let mut v = Some(1);
        assert!(!Patch::Keep.apply(&mut v));
        assert!(!Patch::Set(1).apply(&mut v));
        assert!(Patch::Set(2).apply(&mut v));
        assert_eq!(v, Some(2));
        assert!(Patch::<i32>::Clear.apply(&mut v));
        assert_eq!(v, None);
    }
}
