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

#[Object]
impl Webhook {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Webhook, self.0.id)
    }
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
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Delivery attempts, newest first.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
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
        let sort = Sort {
            column: None,
            id: webhook_delivery::Column::Id,
            desc: true,
        };
        let page = fetch_page(&ctx.db().conn, select, &sort, &req).await.gql()?;
        Ok(connection(page, &req, total, key, WebhookDelivery))
    }
}

/// One event's delivery to one webhook.
pub struct WebhookDelivery(webhook_delivery::Model);

#[Object]
impl WebhookDelivery {
    /// The delivered event's cursor (also sent as the `X-Closedloop-Event-Id` header).
    async fn event_cursor(&self) -> String {
        crate::domain::ids::event_cursor(self.0.seq)
    }
    async fn seq(&self) -> i64 {
        self.0.seq
    }
    /// PENDING (waiting or retrying), DELIVERED, or FAILED (gave up after the last attempt).
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn delivered(&self) -> bool {
        self.0.status == DELIVERED
    }
    async fn failed(&self) -> bool {
        self.0.status == FAILED
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// When the next attempt is due (pending deliveries).
    async fn next_attempt_at(&self) -> DateTime {
        self.0.next_attempt_at.into()
    }
    /// The HTTP status of the last attempt, if the receiver answered.
    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn delivered_at(&self) -> Option<DateTime> {
        self.0.delivered_at.map(Into::into)
    }
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
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
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
        let sort = Sort {
            column: None,
            id: webhook::Column::Id,
            desc: false,
        };
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        Ok(connection(page, &req, TotalCount::of(select), |w| CursorKey::id(w.id), Webhook))
    }
}

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

#[derive(InputObject)]
pub struct UpdateWebhookInput {
    pub id: ID,
    pub url: Option<String>,
    pub kinds: Option<Vec<HandoffEventKind>>,
    pub secret: Option<String>,
    pub active: Option<bool>,
}

#[derive(InputObject)]
pub struct DeleteWebhookInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct WebhookPayload {
    pub webhook: Option<Webhook>,
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
    async fn create_webhook(&self, ctx: &Context<'_>, input: CreateWebhookInput) -> async_graphql::Result<WebhookPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let kinds: Vec<_> = input.kinds.into_iter().map(Into::into).collect();
        payload(service::create(ctx.db(), p, allow_list(ctx), &input.url, &kinds, &input.secret).await)
    }

    /// ADMIN: changes a webhook; `active: false` pauses it.
    async fn update_webhook(&self, ctx: &Context<'_>, input: UpdateWebhookInput) -> async_graphql::Result<WebhookPayload> {
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
    async fn delete_webhook(&self, ctx: &Context<'_>, input: DeleteWebhookInput) -> async_graphql::Result<WebhookPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let id = ids::decode(NodeType::Webhook, &input.id).gql()?;
        payload(service::delete(ctx.db(), p, id).await)
    }
}
