//! The change feed in the API: `changes` (polling) and the `changes` subscription (replay, then
//! live), over the rows `events::changes` writes in the transaction of every change.
use async_graphql::{Context, ErrorExtensions, ID, Json, Object, SimpleObject, Subscription};
use entity::change;
use futures_util::{Stream, StreamExt};

use super::context::ContextExt;
use super::enums::{ChangeEntity, ChangeKind};
use super::errors::{IntoGql, gql_error};
use super::handoff::subscription_slot;
use super::scalars::DateTime;
use crate::domain::change::{ChangeData, SourceTag};
use crate::domain::ids::{change_cursor, global_id, parse_change_cursor};
use crate::error::AppError;
use crate::events::changes::{self, Feed, Filter, Head, PageError};

/// Changes a `changes` page holds at most.
const MAX_PAGE: i32 = 1_000;

pub struct Change(change::Model);

/// One change of a record: numbered per workspace without gaps (`seq`), in the order the
/// changes committed, and never changed afterwards (except that an erasure removes the lead's
/// personal values from its earlier changes).
#[Object]
impl Change {
    /// Opaque; pass it as `after` to `changes` to continue after this change.
    async fn cursor(&self) -> String {
        change_cursor(self.0.seq)
    }
    /// Position in the workspace's change sequence (1, 2, 3, ... without gaps).
    async fn seq(&self) -> i64 {
        self.0.seq
    }
    /// The kind of record.
    async fn entity(&self) -> ChangeEntity {
        ChangeEntity::from_db(&self.0.entity)
    }
    /// What happened.
    async fn kind(&self) -> ChangeKind {
        ChangeKind::from_db(&self.0.kind)
    }
    /// The record's global ID (`node(id:)` reads it as it is now, except for CONTACT).
    async fn entity_id(&self) -> ID {
        let entity = crate::domain::change::ChangeEntity::parse(&self.0.entity).unwrap_or(crate::domain::change::ChangeEntity::Lead);
        ID(global_id(entity.type_name(), self.0.entity_id))
    }
    /// The record's `version` after this change: pass it as `expectedVersion` to write back
    /// without overwriting a newer change.
    async fn version(&self) -> Option<i64> {
        self.0.version
    }
    /// When the change committed (UTC).
    async fn occurred_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// Who made it: `api-key:<id>`, `import`, `tracking`, `scoring-model:<id>`, ...
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// The `X-Change-Source` header of the request that made it, if it had one.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }
    /// The fields it touched, with their values before and after, as the API names and spells
    /// them (global IDs for references, money as decimal text, times in RFC 3339).
    async fn fields(&self) -> Vec<FieldChange> {
        serde_json::from_value::<ChangeData>(self.0.data.clone())
            .map(|d| {
                d.fields
                    .into_iter()
                    .map(|f| FieldChange {
                        field: f.field,
                        old: Json(f.old),
                        new: Json(f.new),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A field of a change.
#[derive(SimpleObject)]
pub struct FieldChange {
    /// The field's name in the API, e.g. `email`, `accountId`, `amount`.
    pub field: String,
    /// Its value before the change; null: none (or erased).
    pub old: Json<serde_json::Value>,
    /// Its value after the change; null: none (or erased).
    pub new: Json<serde_json::Value>,
}

/// A page of the change feed.
#[derive(SimpleObject)]
pub struct ChangePage {
    /// The changes after the cursor that the filter keeps, oldest first.
    pub changes: Vec<Change>,
    /// Where the next page starts: past every change this page looked at, including those the
    /// filter left out. Keep it and pass it as `after` next time, also when `changes` is empty.
    pub end_cursor: String,
    /// More changes follow `endCursor` now: ask again at once.
    pub has_more: bool,
}

#[derive(Default)]
pub struct ChangeQuery;

#[Object]
impl ChangeQuery {
    /// The change feed, oldest first: every change of leads, accounts, campaigns, cost lines,
    /// touchpoints, opportunities and buying-center seats after `after`. Poll it with the
    /// page's `endCursor`. Any role. A cursor older than the retention (default 30 days) is a
    /// top-level error with code CURSOR_EXPIRED: re-sync from an export, then follow on.
    #[allow(clippy::too_many_arguments)]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "A change's `cursor` or a page's `endCursor`: the changes after it. Default: from the oldest change kept. BAD_USER_INPUT for a malformed cursor or one ahead of this workspace's changes."
        )]
        after: Option<String>,
        #[graphql(default = 100, desc = "How many changes: 0 to 1,000 (larger is clamped).")] first: i32,
        #[graphql(desc = "Only changes of these kinds of record; default: all.")] entities: Option<Vec<ChangeEntity>>,
        #[graphql(desc = "Only changes of these kinds; default: all.")] kinds: Option<Vec<ChangeKind>>,
        #[graphql(desc = "Only changes that touched one of these fields (API names, e.g. `email`).")] fields: Option<Vec<String>>,
        #[graphql(
            desc = "Leave out the changes written with this `X-Change-Source` (a connector's own writes, so that a sync does not echo)."
        )]
        exclude_source: Option<String>,
    ) -> async_graphql::Result<ChangePage> {
        let p = ctx.principal()?;
        let db = &ctx.db().conn;
        let head = changes::head(db, p.workspace_id).await.gql()?;
        let after = start(after.as_deref(), head)?.unwrap_or(head.pruned);
        let filter = filter(entities, kinds, fields, exclude_source)?;
        let page = changes::page(db, p.workspace_id, after, first.clamp(0, MAX_PAGE) as u64, &filter)
            .await
            .map_err(page_error)?;
        Ok(ChangePage {
            changes: page.rows.into_iter().map(Change).collect(),
            end_cursor: change_cursor(page.end),
            has_more: page.more,
        })
    }
}

#[derive(Default)]
pub struct ChangeSubscription;

#[Subscription]
impl ChangeSubscription {
    /// The change feed live: first the stored changes after `after`, then new ones as they
    /// commit, without a gap or a duplicate (the same filters as the `changes` query). Without
    /// `after`, only changes from now on. Any role. CURSOR_EXPIRED for a cursor older than the
    /// retention.
    async fn changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "A change's `cursor` or a page's `endCursor`: replay the changes after it, then go live. Default: live changes only. BAD_USER_INPUT for a malformed cursor or one ahead of this workspace's changes."
        )]
        after: Option<String>,
        #[graphql(desc = "Only changes of these kinds of record; default: all.")] entities: Option<Vec<ChangeEntity>>,
        #[graphql(desc = "Only changes of these kinds; default: all.")] kinds: Option<Vec<ChangeKind>>,
        #[graphql(desc = "Only changes that touched one of these fields (API names, e.g. `email`).")] fields: Option<Vec<String>>,
        #[graphql(desc = "Leave out the changes written with this `X-Change-Source`.")] exclude_source: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Change>> + use<>> {
        let p = ctx.principal()?;
        let conn = ctx.db().conn.clone();
        let head = changes::head(&conn, p.workspace_id).await.gql()?;
        let after = start(after.as_deref(), head)?.unwrap_or(head.seq);
        let filter = filter(entities, kinds, fields, exclude_source)?;
        let guard = subscription_slot(ctx)?;
        let stream = ctx.data_unchecked::<Feed>().stream(conn, p.workspace_id, after, filter);
        Ok(stream.map(move |item| {
            let _held = &guard;
            item.map(Change).map_err(page_error)
        }))
    }
}

/// The number after which to read, from a cursor: checked against the workspace's feed.
fn start(after: Option<&str>, head: Head) -> async_graphql::Result<Option<i64>> {
    let Some(raw) = after else { return Ok(None) };
    let seq = parse_change_cursor(raw).ok_or_else(|| gql_error(AppError::BadInput(format!("invalid change cursor {raw:?}"))))?;
    if seq > head.seq {
        return Err(gql_error(AppError::BadInput(
            "the cursor is ahead of this workspace's changes; it belongs elsewhere".into(),
        )));
    }
    if seq < head.pruned {
        return Err(expired(head.pruned));
    }
    Ok(Some(seq))
}

/// CURSOR_EXPIRED, with the oldest cursor still kept.
fn expired(oldest: i64) -> async_graphql::Error {
    async_graphql::Error::new(
        "the changes after this cursor are past the retention and deleted: re-sync from an export (docs/export.md), then follow the feed from there",
    )
    .extend_with(|_, e| {
        e.set("code", "CURSOR_EXPIRED");
        e.set("oldestCursor", change_cursor(oldest));
    })
}

fn page_error(e: PageError) -> async_graphql::Error {
    match e {
        PageError::Expired { oldest } => expired(oldest),
        PageError::Db(e) => gql_error(e.into()),
    }
}

fn filter(
    entities: Option<Vec<ChangeEntity>>,
    kinds: Option<Vec<ChangeKind>>,
    fields: Option<Vec<String>>,
    exclude_source: Option<String>,
) -> async_graphql::Result<Filter> {
    let exclude_source = match exclude_source {
        Some(s) => Some(
            SourceTag::parse(&s)
                .map_err(|e| gql_error(AppError::BadInput(format!("excludeSource: {e}"))))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    Ok(Filter {
        entities: entities.map(|es| es.into_iter().map(Into::into).collect()),
        kinds: kinds.map(|ks| ks.into_iter().map(Into::into).collect()),
        exclude_source,
        fields,
    })
}
