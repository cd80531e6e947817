//! `node(id:)` and `nodes(ids:)`: any object by its global ID, within the caller's workspace.
use async_graphql::{Context, ID, Interface, Object};
use entity::{account, campaign, campaign_cost, funnel_stage, lead, opportunity, persona, touchpoint, user};

use crate::error::AppError;
use crate::graphql::account::Account;
use crate::graphql::campaign::{Campaign, CampaignCost};
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, gql_error};
use crate::graphql::funnel::FunnelStage;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::Lead;
use crate::graphql::opportunity::Opportunity;
use crate::graphql::persona::Persona;
use crate::graphql::touchpoint::Touchpoint;
use crate::graphql::user::User;
use crate::store;

#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Account(Account),
    Campaign(Campaign),
    CampaignCost(CampaignCost),
    FunnelStage(FunnelStage),
    Lead(Lead),
    Opportunity(Opportunity),
    Persona(Persona),
    Touchpoint(Touchpoint),
    User(User),
}

const MAX_NODES: usize = 100;

async fn load(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<Option<Node>> {
    let p = ctx.principal()?;
    let Some((kind, num)) = ids::decode_any(id) else { return Ok(None) };
    let db = &ctx.db().conn;
    let ws = p.workspace_id;
    Ok(match kind {
        NodeType::Account => store::by_id::<account::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::Account(Account(m))),
        NodeType::Campaign => store::by_id::<campaign::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::Campaign(Campaign(m))),
        NodeType::CampaignCost => match store::by_id::<campaign_cost::Entity>(db, ws, num).await.gql()? {
            Some(c) => {
                let currency = store::by_id::<campaign::Entity>(db, ws, c.campaign_id)
                    .await
                    .gql()?
                    .map(|c| c.currency)
                    .unwrap_or_default();
                Some(Node::CampaignCost(CampaignCost(c, currency)))
            }
            None => None,
        },
        NodeType::FunnelStage => store::by_id::<funnel_stage::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::FunnelStage(FunnelStage(m))),
        NodeType::Lead => store::by_id::<lead::Entity>(db, ws, num).await.gql()?.map(|m| Node::Lead(Lead(m))),
        NodeType::Opportunity => store::by_id::<opportunity::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::Opportunity(Opportunity(m))),
        NodeType::Persona => store::by_id::<persona::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::Persona(Persona(m))),
        NodeType::Touchpoint => store::by_id::<touchpoint::Entity>(db, ws, num)
            .await
            .gql()?
            .map(|m| Node::Touchpoint(Touchpoint(m))),
        NodeType::User => store::by_id::<user::Entity>(db, ws, num).await.gql()?.map(|m| Node::User(User(m))),
    })
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global ID; null when it does not exist in your workspace.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        load(ctx, &id).await
    }

    /// Up to 100 objects by global ID, in the order asked; null where one does not exist.
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> async_graphql::Result<Vec<Option<Node>>> {
        if ids.len() > MAX_NODES {
            return Err(gql_error(AppError::BadInput(format!("at most {MAX_NODES} ids at a time"))));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(load(ctx, id).await?);
        }
        Ok(out)
    }
}
