//! `node(id:)` and `nodes(ids:)`: any object by its global ID, within the caller's workspace.
use async_graphql::{Context, ID, Interface, Object};
use entity::{campaign_cost, lead, persona, touchpoint, tracking_link, webhook};
use sea_orm::QueryFilter;

use crate::domain::vocab::Action;
use crate::error::AppError;
use crate::graphql::account::Account;
use crate::graphql::campaign::{Campaign, CampaignCost};
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, gql_error};
use crate::graphql::funnel::FunnelStage;
use crate::graphql::handoff::Handoff;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::Lead;
use crate::graphql::loaders::{AccountId, CampaignId, LeadId, Loaders, OpportunityId, ScoringModelId, StageId, UserId};
use crate::graphql::opportunity::Opportunity;
use crate::graphql::persona::Persona;
use crate::graphql::plan::{self, Planned};
use crate::graphql::scoring::ScoringModel;
use crate::graphql::touchpoint::Touchpoint;
use crate::graphql::tracking::TrackingLink;
use crate::graphql::user::User;
use crate::graphql::webhook::Webhook;
use crate::store::{self, Scoped};

// Short-lived (one per resolved ID), so the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
/// An object with a global ID, which `node(id:)` loads (Relay's Node).
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The global ID: opaque, stable, unique across types."))]
pub enum Node {
    Account(Account),
    Campaign(Campaign),
    CampaignCost(CampaignCost),
    FunnelStage(FunnelStage),
    Handoff(Handoff),
    Lead(Lead),
    Opportunity(Opportunity),
    Persona(Persona),
    ScoringModel(ScoringModel),
    Touchpoint(Touchpoint),
    TrackingLink(TrackingLink),
    User(User),
    Webhook(Webhook),
}

const MAX_NODES: usize = 100;

async fn load(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<Option<Node>> {
    let p = ctx.principal()?;
    let Some((kind, num)) = ids::decode_any(id) else { return Ok(None) };
    let db = &ctx.db().conn;
    let ws = p.workspace_id;
    let loaders = ctx.data_unchecked::<Loaders>();
    Ok(match kind {
        NodeType::Account => loaders.load_one(AccountId(num)).await?.map(|m| Node::Account(Account(m))),
        NodeType::Campaign => loaders.load_one(CampaignId(num)).await?.map(|m| Node::Campaign(Campaign(m))),
        NodeType::CampaignCost => match store::by_id::<campaign_cost::Entity>(db, ws, num).await.gql()? {
            Some(c) => {
                let currency = loaders
                    .load_one(CampaignId(c.campaign_id))
                    .await?
                    .map(|c| c.currency)
                    .unwrap_or_default();
                Some(Node::CampaignCost(CampaignCost(c, currency)))
            }
            None => None,
        },
        NodeType::FunnelStage => loaders.load_one(StageId(num)).await?.map(|m| Node::FunnelStage(FunnelStage(m))),
        NodeType::Lead => loaders.load_one(LeadId(num)).await?.map(|m| Node::Lead(Lead(m))),
        NodeType::Opportunity => loaders
            .load_one(OpportunityId(num))
            .await?
            .map(|m| Node::Opportunity(Opportunity(m))),
        NodeType::Persona => store::by_id::<persona::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::Persona(Persona(m))),
        NodeType::Touchpoint => store::by_id::<touchpoint::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::Touchpoint(Touchpoint(m))),
        NodeType::TrackingLink => store::by_id::<tracking_link::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::TrackingLink(TrackingLink(m))),
        NodeType::ScoringModel => loaders
            .load_one(ScoringModelId(num))
            .await?
            .map(|m| Node::ScoringModel(ScoringModel(m))),
        NodeType::User => loaders.load_one(UserId(num)).await?.map(|m| Node::User(User(m))),
        // Another user's handoff does not exist for a SALES key made for a user.
        NodeType::Handoff => crate::graphql::handoff::load_visible(ctx, num).await?.map(Node::Handoff),
        // Webhook URLs and delivery logs are ADMIN data; to anyone else they do not exist.
        NodeType::Webhook if p.role.allows(Action::Administer) => store::by_id::<webhook::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::Webhook(Webhook(m))),
        NodeType::Webhook | NodeType::RoutingRule => None,
    })
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global ID; null when it does not exist in your workspace (or, for a
    /// webhook, when you are not ADMIN). Any role.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global ID, e.g. a `Lead.id`.")] id: ID,
    ) -> async_graphql::Result<Planned<Option<Node>>> {
        if let Some((NodeType::Lead, num)) = ids::decode_any(&id) {
            let select = store::with_id::<lead::Entity>(ctx.principal()?.workspace_id, num);
            return plan::one(ctx, &plan::describe::LEAD, select, |m| Node::Lead(Lead(m))).await;
        }
        Ok(Planned::Generic(load(ctx, &id).await?))
    }

    /// Up to 100 objects by global ID, in the order asked; null where one does not exist. Any
    /// role.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 100 global IDs (BAD_USER_INPUT beyond).")] ids: Vec<ID>,
    ) -> async_graphql::Result<Planned<Vec<Option<Node>>>> {
        if ids.len() > MAX_NODES {
            return Err(gql_error(AppError::BadInput(format!("at most {MAX_NODES} ids at a time"))));
        }
        // Leads only (an ID that is none of ours reads as null): planned in one statement.
        let leads: Option<Vec<Option<i64>>> = ids
            .iter()
            .map(|id| match ids::decode_any(id) {
                Some((NodeType::Lead, num)) => Some(Some(num)),
                Some(_) => None,
                None => Some(None),
            })
            .collect();
        if let Some(leads) = leads.filter(|l| l.iter().any(Option::is_some)) {
            let wanted: Vec<i64> = leads.iter().flatten().copied().collect();
            let db = &ctx.db().conn;
            let select = lead::Entity::in_workspace(ctx.principal()?.workspace_id).filter(store::id_in(db, lead::Column::Id, &wanted));
            if let Some(json) = plan::list_by_ids(ctx, &plan::describe::LEAD, select, &leads).await? {
                return Ok(Planned::done(json));
            }
        }
        // Resolved together, so that the DataLoader batches IDs of one type into one query.
        let nodes: async_graphql::Result<Vec<Option<Node>>> = futures_util::future::join_all(ids.iter().map(|id| load(ctx, id)))
            .await
            .into_iter()
            .collect();
        Ok(Planned::Generic(nodes?))
    }
}
