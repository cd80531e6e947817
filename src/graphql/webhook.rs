//! Webhooks (ADMIN): where handoff events are POSTed, and the log of every delivery.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use entity::{webhook, webhook_delivery};
use sea_orm::{ColumnTrait, QueryFilter};

use crate::domain::destination::AllowList;
use crate::domain::vocab::Action;
use crate::events::webhook::{DELIVERED, FAILED};
use crate::graphql::context::ContextExt;
use crate::graphql::enums::HandoffEventKind;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::{Loaders, WebhookDeliveries};
use crate::graphql::pagination::{Conn, PageArgs, TotalCount, connection};
use crate::graphql::scalars::DateTime;
use crate::service::webhook::{self as service, WebhookChange};
use crate::store::Scoped;
use crate::store::page::{CursorKey, PageRows, Sort, fetch_page};

pub struct Webhook(pub webhook::Model);

/// An http(s) endpoint that receives handoff events as POSTs signed with HMAC-SHA256, at least
/// once (ADMIN only; to other roles it does not exist).
#[Object]
impl Webhook {
    /// The webhook's global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Webhook, self.0.id)
    }
    /// Where events are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// The event kinds it receives; empty means all.
    async fn kinds(&self) -> Vec<HandoffEventKind> {
        self.0
            .kinds
            .as_array()
            .map(|a| a.iter().filter_map(|k| k.as_str()).map(HandoffEventKind::from_db).collect())
            .unwrap_or_default()
    }
    /// A paused webhook collects deliveries and sends them, in order, once active again.
    async fn active(&self) -> bool {
        self.0.active
    }
    /// The secret's last four characters, to tell secrets apart; the secret itself is not shown.
    async fn secret_hint(&self) -> String {
        let chars: Vec<char> = self.0.secret.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    }
    /// When the webhook was created (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the webhook was last changed (UTC).
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Deliveries (one per event), newest first.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Page size from the start (or after `after`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        first: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page starts after it. Only with `first`.")] after: Option<
            String,
        >,
        #[graphql(
            desc = "Page size from the end (or before `before`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        last: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page ends before it. Only with `last`.")] before: Option<
            String,
        >,
    ) -> async_graphql::Result<Conn<WebhookDelivery>> {
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(None)
        .gql()?;
        let select = webhook_delivery::Entity::in_workspace(self.0.workspace_id).filter(webhook_delivery::Column::WebhookId.eq(self.0.id));
        let total = TotalCount::of(select.clone());
        let key = |d: &webhook_delivery::Model| CursorKey::id(d.id);
        if req.cursor.is_none() && !req.backward {
            let rows = ctx
                .data_unchecked::<Loaders>()
                .load_one(WebhookDeliveries {
                    webhook_id: self.0.id,
                    limit: req.limit + 1,
                })
                .await?
                .unwrap_or_default();
            return Ok(connection(
                PageRows::from_overfetch(rows, req.limit),
                &req,
                total,
                key,
                WebhookDelivery,
            ));
        }
        let sort = Sort::by_id(webhook_delivery::Column::Id, true);
        let page = fetch_page(&ctx.db().conn, select, &sort, &req).await.gql()?;
        Ok(connection(page, &req, total, key, WebhookDelivery))
    }
}

pub struct WebhookDelivery(webhook_delivery::Model);

/// One event's delivery to one webhook. A failed attempt is retried after 2 s, 4 s, 8 s ...
/// (at most an hour apart) until the server's attempt limit (10 by default).
#[Object]
impl WebhookDelivery {
    /// The delivered event's cursor (also sent as the `X-Closedloop-Event-Id` header).
    async fn event_cursor(&self) -> String {
        crate::domain::ids::event_cursor(self.0.seq)
    }
    /// The delivered event's `seq`.
    async fn seq(&self) -> i64 {
        self.0.seq
    }
    /// PENDING (waiting or retrying), DELIVERED, or FAILED (gave up after the last attempt).
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// `status` is DELIVERED: the receiver answered 2xx.
    async fn delivered(&self) -> bool {
        self.0.status == DELIVERED
    }
    /// `status` is FAILED: no more attempts will be made.
    async fn failed(&self) -> bool {
        self.0.status == FAILED
    }
    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// When the next attempt is due (UTC); meaningful while PENDING.
    async fn next_attempt_at(&self) -> DateTime {
        self.0.next_attempt_at.into()
    }
    /// The HTTP status of the last attempt, if the receiver answered.
    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }
    /// What went wrong in the last attempt (HTTP status or network error); null when none.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When the receiver accepted it (UTC); null until DELIVERED.
    async fn delivered_at(&self) -> Option<DateTime> {
        self.0.delivered_at.map(Into::into)
    }
    /// When the delivery was queued (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// ADMIN: the workspace's webhooks, oldest first.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Page size from the start (or after `after`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        first: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page starts after it. Only with `first`.")] after: Option<
            String,
        >,
        #[graphql(
            desc = "Page size from the end (or before `before`): 0 to 100, larger is clamped to 100. Give `first` or `last`, not both."
        )]
        last: Option<i32>,
        #[graphql(desc = "An edge's cursor from this list in the same order: the page ends before it. Only with `last`.")] before: Option<
            String,
        >,
    ) -> async_graphql::Result<Conn<Webhook>> {
        let p = ctx.allowed(Action::Administer)?;
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(None)
        .gql()?;
        let select = webhook::Entity::in_workspace(p.workspace_id);
        let sort = Sort::by_id(webhook::Column::Id, false);
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        Ok(connection(page, &req, TotalCount::of(select), |w| CursorKey::id(w.id), Webhook))
    }
}

/// A new webhook.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// An http(s) URL to a public address (or a network the server allow-lists), without
    /// credentials; refused with DESTINATION_NOT_ALLOWED or CREDENTIALS_NOT_ALLOWED.
    pub url: String,
    /// The kinds to send; empty or absent means all.
    #[graphql(default)]
    pub kinds: Vec<HandoffEventKind>,
    /// The HMAC-SHA256 key of the `X-Closedloop-Signature` header (at least 16 characters).
    pub secret: String,
}

/// Changes to a webhook; absent fields stay.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    /// The webhook's ID.
    pub id: ID,
    /// A new URL, checked as on create.
    pub url: Option<String>,
    /// The kinds to send; empty means all.
    pub kinds: Option<Vec<HandoffEventKind>>,
    /// A new signing key (at least 16 characters).
    pub secret: Option<String>,
    /// false pauses the webhook; true resumes it.
    pub active: Option<bool>,
}

/// The webhook to delete.
#[derive(InputObject)]
pub struct DeleteWebhookInput {
    /// The webhook's ID.
    pub id: ID,
}

/// The result of a webhook mutation.
#[derive(SimpleObject)]
pub struct WebhookPayload {
    /// The webhook as saved (as it was, for a delete); null when `userErrors` is not empty.
    pub webhook: Option<Webhook>,
    /// What the end user can fix, e.g. DESTINATION_NOT_ALLOWED; empty on success.
    pub user_errors: Vec<UserError>,
}

fn payload(result: Result<webhook::Model, crate::error::ServiceError>) -> async_graphql::Result<WebhookPayload> {
    let (hook, user_errors) = split(result)?;
    Ok(WebhookPayload {
        webhook: hook.map(Webhook),
        user_errors,
    })
}

/// The server's `--webhook-allow`; none (public addresses only) if the schema was built without.
fn allow_list<'a>(ctx: &'a Context<'_>) -> &'a AllowList {
    static NONE: AllowList = AllowList::EMPTY;
    ctx.data_opt::<AllowList>().unwrap_or(&NONE)
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// ADMIN: POST every handoff event of `kinds` to `url`, signed with `secret`.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new webhook.")] input: CreateWebhookInput,
    ) -> async_graphql::Result<WebhookPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let kinds: Vec<_> = input.kinds.into_iter().map(Into::into).collect();
        payload(service::create(ctx.db(), p, allow_list(ctx), &input.url, &kinds, &input.secret).await)
    }

    /// ADMIN: changes a webhook; `active: false` pauses it.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook and its changes.")] input: UpdateWebhookInput,
    ) -> async_graphql::Result<WebhookPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let id = ids::decode(NodeType::Webhook, &input.id).gql()?;
        let change = WebhookChange {
            url: input.url,
            kinds: input.kinds.map(|k| k.into_iter().map(Into::into).collect()),
            secret: input.secret,
            active: input.active,
        };
        payload(service::update(ctx.db(), p, allow_list(ctx), id, change).await)
    }

    /// ADMIN: deletes a webhook and its delivery log.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook to delete.")] input: DeleteWebhookInput,
    ) -> async_graphql::Result<WebhookPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let id = ids::decode(NodeType::Webhook, &input.id).gql()?;
        payload(service::delete(ctx.db(), p, id).await)
    }
}
