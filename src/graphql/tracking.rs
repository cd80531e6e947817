//! First-party capture in the API: the site key and script snippet, tracking links with their
//! personal URLs for mailings, how far hit processing has come, and `identifyVisitor`.
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use entity::{tracking_link, tracking_unknown_code};
use sea_orm::{EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::vocab::Action;
use crate::error::AppError;
use crate::graphql::campaign::Campaign;
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, UserError, gql_error, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::Lead;
use crate::graphql::loaders::{CampaignId, Loaders};
use crate::graphql::pagination::{Conn, PageArgs, TotalCount, connection};
use crate::graphql::scalars::DateTime;
use crate::ingest::Capture;
use crate::service::tracking as service;
use crate::store::page::{CursorKey, Sort, fetch_page};
use crate::store::{self, Scoped};

/// Personal URLs one request may ask for.
const MAX_PERSONAL: usize = 1_000;

fn capture<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Arc<Capture>> {
    ctx.data_opt::<Arc<Capture>>()
        .ok_or_else(|| gql_error(AppError::internal("tracking is not set up on this server")))
}

pub struct TrackingSettings {
    key: entity::tracking_key::Model,
    public_url: String,
}

/// How a site puts closedloop's script on its pages.
#[Object]
impl TrackingSettings {
    /// The publishable site key: it can only send hits for this workspace, never read, so it
    /// may appear in a page's source. `rotateSiteKey` replaces it.
    async fn site_key(&self) -> &str {
        &self.key.site_key
    }
    /// Where the script is served.
    async fn script_url(&self) -> String {
        format!("{}/t/closedloop.js", self.public_url)
    }
    /// The tag to put in every page's `<head>`.
    async fn snippet(&self) -> String {
        format!(
            "<script async src=\"{}/t/closedloop.js\" data-site-key=\"{}\"></script>",
            self.public_url, self.key.site_key
        )
    }
    /// When the site key was last made or rotated.
    async fn updated_at(&self) -> DateTime {
        self.key.updated_at.into()
    }
}

pub struct TrackingLink(pub tracking_link::Model);

impl TrackingLink {
    /// The workspace's signing secret, cached for the server's life (a page of links asks the
    /// database once, not once a link).
    async fn secret(&self, ctx: &Context<'_>) -> async_graphql::Result<Arc<str>> {
        capture(ctx)?
            .resolver
            .secret(ctx.db(), self.0.workspace_id)
            .await
            .gql()?
            .ok_or_else(|| gql_error(AppError::internal("a tracking link without its workspace's keys")))
    }
}

/// A link of a campaign to a destination: a click on its URL is recorded (EMAIL_CLICK or the
/// link's touch type) and redirected there; its pixel records an open. A mailing gives each
/// recipient a personal URL, so that the click and open are the lead's.
#[Object]
impl TrackingLink {
    /// The link's global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::TrackingLink, self.0.id)
    }
    /// The campaign its clicks and opens count for.
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        let c = ctx.data_unchecked::<Loaders>().load_one(CampaignId(self.0.campaign_id)).await?;
        Ok(c.map(Campaign))
    }
    /// Where a click is redirected (with the link's UTM parameters).
    async fn destination(&self) -> &str {
        &self.0.destination
    }
    /// The touchpoint type of a click.
    async fn touch_type(&self) -> &str {
        &self.0.touch_type
    }
    /// When the link was made (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// The URL for anyone (an ad, a social post): its clicks count for the campaign, and for
    /// the visitor once the site's script knows who it is.
    async fn url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let (click, _) = service::tokens(&self.secret(ctx).await?, &self.0, None, chrono::Utc::now());
        Ok(format!("{}/t/c/{click}", capture(ctx)?.public_url))
    }
    /// Personal URLs and open pixels for a mailing's recipients (at most 1,000 leads a
    /// request), in the order given; an ID that is not a lead of yours, or of an erased lead, is
    /// left out, and a lead merged into another gets the links of the one it was merged into. A
    /// click or open within a minute of `sentAt` is taken for a mail scanner's.
    async fn personal(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The recipients' lead IDs.")] lead_ids: Vec<ID>,
        #[graphql(desc = "When the mailing is sent (default: now).")] sent_at: Option<DateTime>,
    ) -> async_graphql::Result<Vec<PersonalLink>> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        if lead_ids.len() > MAX_PERSONAL {
            return Err(gql_error(AppError::BadInput(format!("at most {MAX_PERSONAL} leads a request"))));
        }
        let nums: Vec<i64> = lead_ids.iter().filter_map(|id| ids::decode(NodeType::Lead, id).ok()).collect();
        let found = store::lead::live_ids(&ctx.db().conn, p.workspace_id, &nums).await.gql()?;
        let secret = self.secret(ctx).await?;
        let base = &capture(ctx)?.public_url;
        let now = sent_at.map_or_else(chrono::Utc::now, |t| t.0);
        Ok(nums
            .into_iter()
            .filter_map(|n| Some((n, *found.get(&n)?)))
            .map(|(given, lead)| {
                let (click, open) = service::tokens(&secret, &self.0, Some(lead), now);
                PersonalLink {
                    lead_id: ids::encode(NodeType::Lead, given),
                    url: format!("{base}/t/c/{click}"),
                    pixel_url: format!("{base}/t/o/{open}.gif"),
                }
            })
            .collect())
    }
}

/// One recipient's link and pixel.
#[derive(SimpleObject)]
pub struct PersonalLink {
    /// The recipient.
    pub lead_id: ID,
    /// The personal click URL.
    pub url: String,
    /// The open pixel: `<img src="..." width="1" height="1" alt="">` in the mailing's HTML.
    pub pixel_url: String,
}

/// How far the processing of tracking hits has come for your workspace. A client that sent
/// hits waits until `processed` reaches the `acknowledged` it read after sending them.
#[derive(SimpleObject)]
pub struct IngestStatus {
    /// Hits acknowledged (durably stored): processed ones and those waiting.
    pub acknowledged: i64,
    /// Hits processed into visitors, hits and touchpoints.
    pub processed: i64,
    /// Processed hits that were refused (a link or campaign of another workspace, a bot's
    /// form, an unreadable hit).
    pub rejected: i64,
    /// Seconds the oldest waiting hit has waited; 0 when none waits.
    pub lag_seconds: f64,
    /// `utm_campaign` values that named no campaign's tracking code, most hits first (at most
    /// 100): give a campaign that code and later hits count for it.
    pub unknown_campaign_codes: Vec<UnknownCampaignCode>,
}

/// A `utm_campaign` value no campaign has as its tracking code.
#[derive(SimpleObject)]
pub struct UnknownCampaignCode {
    /// The `utm_campaign` value, as sent.
    pub code: String,
    /// Hits that carried it.
    pub hits: i64,
    /// The first such hit (UTC).
    pub first_seen_at: DateTime,
    /// The latest such hit (UTC).
    pub last_seen_at: DateTime,
}

#[derive(Default)]
pub struct TrackingQuery;

#[Object]
impl TrackingQuery {
    /// The site key and script snippet of your workspace (made on first ask). Any role.
    async fn tracking_settings(&self, ctx: &Context<'_>) -> async_graphql::Result<TrackingSettings> {
        let p = ctx.principal()?;
        let key = service::keys(ctx.db(), p).await.gql()?;
        Ok(TrackingSettings {
            key,
            public_url: capture(ctx)?.public_url.clone(),
        })
    }

    /// Tracking links, newest first; of one campaign with `campaignId`. Any role.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn tracking_links(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only the links of this campaign.")] campaign_id: Option<ID>,
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
    ) -> async_graphql::Result<Conn<TrackingLink>> {
        let p = ctx.principal()?;
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(None)
        .gql()?;
        let mut select = tracking_link::Entity::in_workspace(p.workspace_id);
        if let Some(c) = crate::graphql::decode_opt(NodeType::Campaign, campaign_id.as_ref())? {
            select = select.filter(sea_orm::ColumnTrait::eq(&tracking_link::Column::CampaignId, c));
        }
        let sort = Sort::by_id(tracking_link::Column::Id, true);
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        Ok(connection(
            page,
            &req,
            TotalCount::of(select),
            |l| CursorKey::id(l.id),
            TrackingLink,
        ))
    }

    /// How far hit processing has come. Any role.
    async fn ingest_status(&self, ctx: &Context<'_>) -> async_graphql::Result<IngestStatus> {
        let p = ctx.principal()?;
        let s = service::status(ctx.db(), &capture(ctx)?.inbox, p.workspace_id).await.gql()?;
        let codes = tracking_unknown_code::Entity::find()
            .filter(sea_orm::ColumnTrait::eq(
                &tracking_unknown_code::Column::WorkspaceId,
                p.workspace_id,
            ))
            .order_by_desc(tracking_unknown_code::Column::Hits)
            .order_by_asc(tracking_unknown_code::Column::Code)
            .limit(100)
            .all(&ctx.db().conn)
            .await
            .gql()?;
        Ok(IngestStatus {
            acknowledged: s.acknowledged,
            processed: s.processed,
            rejected: s.rejected,
            lag_seconds: s.lag_seconds,
            unknown_campaign_codes: codes
                .into_iter()
                .map(|c| UnknownCampaignCode {
                    code: c.code,
                    hits: c.hits,
                    first_seen_at: c.first_seen_at.into(),
                    last_seen_at: c.last_seen_at.into(),
                })
                .collect(),
        })
    }
}

/// A new tracking link.
#[derive(InputObject)]
pub struct CreateTrackingLinkInput {
    /// The campaign its clicks count for.
    pub campaign_id: ID,
    /// An absolute http(s) URL: where a click is redirected, and nowhere else.
    pub destination: String,
    /// Set on the destination as `utm_source` (and so on), replacing any it has.
    pub utm_source: Option<String>,
    /// Set on the destination as `utm_medium`.
    pub utm_medium: Option<String>,
    /// Set on the destination as `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// Set on the destination as `utm_term`.
    pub utm_term: Option<String>,
    /// Set on the destination as `utm_content`.
    pub utm_content: Option<String>,
    /// The touchpoint type of a click; default EMAIL_CLICK for a campaign of channel EMAIL,
    /// else AD_CLICK.
    pub touch_type: Option<String>,
}

/// The result of `createTrackingLink`.
#[derive(SimpleObject)]
pub struct TrackingLinkPayload {
    /// The new link; null when `userErrors` is not empty.
    pub tracking_link: Option<TrackingLink>,
    /// What the end user can fix (INVALID, NOT_FOUND, TOO_LONG); empty on success.
    pub user_errors: Vec<UserError>,
}

/// The result of `rotateSiteKey`.
#[derive(SimpleObject)]
pub struct TrackingSettingsPayload {
    /// The settings with the new site key.
    pub tracking_settings: TrackingSettings,
}

/// A visitor a backend knows to be a lead.
#[derive(InputObject)]
pub struct IdentifyVisitorInput {
    /// The visitor ID the site's script keeps (`closedloop.visitorId`).
    pub visitor_id: String,
    /// The lead's e-mail (a lead is made if none has it) ...
    pub email: Option<String>,
    /// ... or the lead's ID.
    pub lead_id: Option<ID>,
}

/// The result of `identifyVisitor`.
#[derive(SimpleObject)]
pub struct IdentifyVisitorPayload {
    /// The lead the visitor is now; null when `userErrors` is not empty.
    pub lead: Option<Lead>,
    /// Touchpoints made from the visitor's earlier hits.
    pub stitched_touchpoints: i32,
    /// What the end user can fix (INVALID, NOT_FOUND); empty on success.
    pub user_errors: Vec<UserError>,
}

#[derive(Default)]
pub struct TrackingMutation;

#[Object]
impl TrackingMutation {
    /// MARKETING or ADMIN: a tracking link of a campaign.
    async fn create_tracking_link(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The link.")] input: CreateTrackingLinkInput,
    ) -> async_graphql::Result<TrackingLinkPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let campaign_id = ids::decode(NodeType::Campaign, &input.campaign_id).unwrap_or(0);
        let utm = [
            ("utm_source", input.utm_source),
            ("utm_medium", input.utm_medium),
            ("utm_campaign", input.utm_campaign),
            ("utm_term", input.utm_term),
            ("utm_content", input.utm_content),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
        let link = service::NewLink {
            campaign_id,
            destination: input.destination,
            utm,
            touch_type: input.touch_type,
        };
        let (link, user_errors) = split(service::create_link(ctx.db(), p, link).await)?;
        Ok(TrackingLinkPayload {
            tracking_link: link.map(TrackingLink),
            user_errors,
        })
    }

    /// ADMIN: a new publishable site key; pages with the old one stop being tracked within a
    /// minute. Tracking links stay valid.
    async fn rotate_site_key(&self, ctx: &Context<'_>) -> async_graphql::Result<TrackingSettingsPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let c = capture(ctx)?;
        let key = service::rotate_site_key(ctx.db(), &c.resolver, p).await.gql()?;
        Ok(TrackingSettingsPayload {
            tracking_settings: TrackingSettings {
                key,
                public_url: c.public_url.clone(),
            },
        })
    }

    /// MARKETING, SALES or ADMIN: a visitor is a lead (by e-mail, made if new, or by ID). Its
    /// earlier hits become the lead's touchpoints at once, with the lead's scores, handoff and
    /// attribution credits brought up to date in the same transaction.
    async fn identify_visitor(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The visitor and the lead.")] input: IdentifyVisitorInput,
    ) -> async_graphql::Result<IdentifyVisitorPayload> {
        let p = ctx.allowed(Action::WriteContacts)?;
        let lead_id = input.lead_id.as_ref().map(|id| ids::decode(NodeType::Lead, id).unwrap_or(0));
        let bus = ctx.data_unchecked::<crate::events::Bus>();
        let result = service::identify_now(ctx.db(), bus, p, &input.visitor_id, input.email, lead_id).await;
        let (done, user_errors) = split(result)?;
        Ok(match done {
            Some((lead, outcome)) => IdentifyVisitorPayload {
                lead: Some(Lead(lead)),
                stitched_touchpoints: outcome.touchpoints as i32,
                user_errors,
            },
            None => IdentifyVisitorPayload {
                lead: None,
                stitched_touchpoints: 0,
                user_errors,
            },
        })
    }
}
