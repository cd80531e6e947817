//! Workspaces, their keys, funnel stages and vocabularies.
use chrono::Utc;
use entity::{api_key, funnel_stage, vocabulary_term, workspace};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::Scoped;
use crate::domain::handoff::{DEFAULT_REJECT_REASONS, VOCAB_REJECT_REASON};
use crate::domain::vocab::{
    DEFAULT_CHANNELS, DEFAULT_COST_CATEGORIES, DEFAULT_STAGES, DEFAULT_TOUCHPOINT_TYPES, Role, VOCAB_CHANNEL, VOCAB_COST_CATEGORY,
    VOCAB_TOUCHPOINT_TYPE,
};

pub async fn by_name(db: &impl ConnectionTrait, name: &str) -> Result<Option<workspace::Model>, DbErr> {
    workspace::Entity::find().filter(workspace::Column::Name.eq(name)).one(db).await
}

/// Counts the committed writes of a workspace (see `WriteTxn`).
pub async fn bump_revision(db: &impl ConnectionTrait, ws: i64) -> Result<(), DbErr> {
    workspace::Entity::update_many()
        .col_expr(workspace::Column::DataRevision, sea_orm::sea_query::Expr::cust("data_revision + 1"))
        .filter(workspace::Column::Id.eq(ws))
        .exec(db)
        .await?;
    Ok(())
}

/// The workspace's data revision: it changes with every committed write.
pub async fn revision(db: &impl ConnectionTrait, ws: i64) -> Result<i64, DbErr> {
    use sea_orm::QuerySelect;
    Ok(workspace::Entity::find_by_id(ws)
        .select_only()
        .column(workspace::Column::DataRevision)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .unwrap_or(0))
}

pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<workspace::Model>, DbErr> {
    workspace::Entity::find_by_id(id).one(db).await
}

/// Inserts a workspace with the default funnel and vocabularies.
pub async fn insert(db: &impl ConnectionTrait, name: &str, currency: &str) -> Result<workspace::Model, DbErr> {
    let now = Utc::now();
    let ws = workspace::Entity::insert(workspace::ActiveModel {
        name: Set(name.to_owned()),
        parent_id: Set(None),
        currency: Set(currency.to_owned()),
        settings: Set(serde_json::json!({})),
        data_revision: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await?;
    let stages = DEFAULT_STAGES
        .iter()
        .enumerate()
        .map(|(i, (key, name, kind))| funnel_stage::ActiveModel {
            workspace_id: Set(ws.id),
            key: Set((*key).to_owned()),
            name: Set((*name).to_owned()),
            kind: Set((*kind).to_owned()),
            position: Set(i as i32),
            sla_hours: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
    funnel_stage::Entity::insert_many(stages).exec(db).await?;
    let terms = DEFAULT_CHANNELS
        .iter()
        .map(|c| (VOCAB_CHANNEL, *c))
        .chain(DEFAULT_TOUCHPOINT_TYPES.iter().map(|t| (VOCAB_TOUCHPOINT_TYPE, *t)))
        .chain(DEFAULT_COST_CATEGORIES.iter().map(|c| (VOCAB_COST_CATEGORY, *c)))
        .chain(DEFAULT_REJECT_REASONS.iter().map(|r| (VOCAB_REJECT_REASON, *r)))
        .map(|(kind, code)| vocabulary_term::ActiveModel {
            workspace_id: Set(ws.id),
            kind: Set(kind.to_owned()),
            code: Set(code.to_owned()),
            label: Set(title_case(code)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
    vocabulary_term::Entity::insert_many(terms).exec(db).await?;
    Ok(ws)
}

fn title_case(code: &str) -> String {
    code.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_string() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn insert_key(
    db: &impl ConnectionTrait,
    ws: i64,
    name: &str,
    role: Role,
    prefix: &str,
    hash: &str,
    user_id: Option<i64>,
) -> Result<api_key::Model, DbErr> {
    api_key::Entity::insert(api_key::ActiveModel {
        workspace_id: Set(ws),
        name: Set(name.to_owned()),
        role: Set(role.as_str().to_owned()),
        prefix: Set(prefix.to_owned()),
        key_hash: Set(hash.to_owned()),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
        user_id: Set(user_id),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
}

/// A user of a workspace by external ID or e-mail.
pub async fn user_by_handle(db: &impl ConnectionTrait, ws: i64, handle: &str) -> Result<Option<entity::user::Model>, DbErr> {
    use entity::user::Column as C;
    use sea_orm::sea_query::Condition;
    entity::user::Entity::in_workspace(ws)
        .filter(
            Condition::any()
                .add(C::ExternalId.eq(handle))
                .add(C::Email.eq(handle.to_lowercase())),
        )
        .one(db)
        .await
}

/// The funnel of a workspace, in order.
pub async fn stages(db: &impl ConnectionTrait, ws: i64) -> Result<Vec<funnel_stage::Model>, DbErr> {
    funnel_stage::Entity::in_workspace(ws)
        .order_by_asc(funnel_stage::Column::Position)
        .order_by_asc(funnel_stage::Column::Id)
        .all(db)
        .await
}

/// The codes of one vocabulary of a workspace, sorted.
pub async fn vocabulary(db: &impl ConnectionTrait, ws: i64, kind: &str) -> Result<Vec<vocabulary_term::Model>, DbErr> {
    vocabulary_term::Entity::in_workspace(ws)
        .filter(vocabulary_term::Column::Kind.eq(kind))
        .order_by_asc(vocabulary_term::Column::Code)
        .all(db)
        .await
}

/// Every vocabulary of a workspace, by kind and code.
pub async fn vocabularies(db: &impl ConnectionTrait, ws: i64) -> Result<Vec<vocabulary_term::Model>, DbErr> {
    vocabulary_term::Entity::in_workspace(ws)
        .order_by_asc(vocabulary_term::Column::Kind)
        .order_by_asc(vocabulary_term::Column::Code)
        .all(db)
        .await
}

/// `raw` as a code of the workspace's vocabulary `kind`, written as `normalize_code` writes it
/// (case-insensitive); `Err` with the codes the vocabulary has, for a message that names them.
pub async fn known_code(db: &impl ConnectionTrait, ws: i64, kind: &str, raw: &str) -> Result<Result<String, Vec<String>>, DbErr> {
    let known: Vec<String> = vocabulary(db, ws, kind).await?.into_iter().map(|t| t.code).collect();
    Ok(crate::domain::vocab::normalize_code(raw).filter(|c| known.contains(c)).ok_or(known))
}
