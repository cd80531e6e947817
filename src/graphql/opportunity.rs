//! Opportunities (deals) with their buying centers.
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use entity::{opportunity, opportunity_contact};

use crate::domain::vocab::{Action, OpportunityStatus as DomainStatus};
use crate::graphql::account::Account;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::{CloseOutcome, OpportunityStatus};
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::{DateTimeRange, Lead};
use crate::graphql::loaders::{AccountId, BuyingCenter, LeadId, Loaders, UserId};
use crate::graphql::pagination::{Conn, OrderDirection, PageArgs, TotalCount, connection, is_time};
use crate::graphql::scalars::{Date, DateTime, Decimal, Money};
use crate::graphql::user::User;
use crate::graphql::{decode_opt, patch, patch_id};
use crate::service::opportunity::{AccountRef, Contact, UpsertOpportunity};
use crate::store::page::{CursorKey, Sort, SortValue, fetch_page};
use crate::store::{self, opportunity::OpportunityFilter as StoreFilter};

pub struct Opportunity(pub opportunity::Model);

#[Object]
impl Opportunity {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Opportunity, self.0.id)
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn amount(&self) -> Money {
        Money::from_minor(self.0.amount_minor, &self.0.currency)
    }
    async fn status(&self) -> OpportunityStatus {
        OpportunityStatus::from_db(&self.0.status)
    }
    async fn expected_close_date(&self) -> Option<Date> {
        self.0.expected_close_date.map(Date)
    }
    async fn closed_at(&self) -> Option<DateTime> {
        self.0.closed_at.map(Into::into)
    }
    /// When the deal was opened.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(AccountId(self.0.account_id))
            .await?
            .map(Account))
    }
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.owner_id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().load_one(UserId(id)).await?.map(User))
    }
    /// The buying center: the contacts involved in the deal, primary first.
    async fn contacts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BuyingCenterMember>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(BuyingCenter(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(BuyingCenterMember).collect())
    }
    /// A won deal's amount split over the touches of its path by a model (null unless won):
    /// the explanation of every number of `attribution`.
    async fn attribution(
        &self,
        ctx: &Context<'_>,
        model: crate::graphql::attribution::AttributionModelInput,
        #[graphql(desc = "Days before the close a touch may lie (default 365).")] lookback_days: Option<i64>,
    ) -> async_graphql::Result<Option<crate::graphql::attribution::OpportunityAttribution>> {
        crate::graphql::attribution::opportunity_attribution(ctx, &self.0, model, lookback_days).await
    }
}

/// A contact in an opportunity's buying center.
pub struct BuyingCenterMember(pub opportunity_contact::Model);

#[Object]
impl BuyingCenterMember {
    /// E.g. "Decision maker", "Champion", "Economic buyer", "Technical evaluator".
    async fn role(&self) -> &str {
        &self.0.role
    }
    /// The primary contact is the one whose conversion counts for W-shaped attribution.
    async fn is_primary(&self) -> bool {
        self.0.is_primary
    }
    async fn lead(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Lead>> {
        Ok(ctx.data_unchecked::<Loaders>().load_one(LeadId(self.0.lead_id)).await?.map(Lead))
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum OpportunityOrderField {
    #[default]
    Id,
    CreatedAt,
}

#[derive(InputObject, Default)]
pub struct OpportunityOrder {
    pub field: OpportunityOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(InputObject, Default)]
pub struct OpportunityFilter {
    pub status: Option<Vec<OpportunityStatus>>,
    pub account_id: Option<ID>,
    pub closed_at: Option<DateTimeRange>,
}

#[derive(Default)]
pub struct OpportunityQuery;

#[Object]
impl OpportunityQuery {
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn opportunities(
        &self,
        ctx: &Context<'_>,
        filter: Option<OpportunityFilter>,
        order_by: Option<OpportunityOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Opportunity>> {
        let p = ctx.principal()?;
        let f = filter.unwrap_or_default();
        let (closed_from, closed_to) = f.closed_at.unwrap_or_default().bounds()?;
        let sf = StoreFilter {
            statuses: f
                .status
                .map(|v| v.into_iter().map(|s| DomainStatus::from(s).as_str().to_owned()).collect()),
            account_id: decode_opt(NodeType::Account, f.account_id.as_ref())?,
            closed_from,
            closed_to,
        };
        let order = order_by.unwrap_or_default();
        let column = match order.field {
            OpportunityOrderField::Id => None,
            OpportunityOrderField::CreatedAt => Some(opportunity::Column::CreatedAt),
        };
        let expects = column.map(|_| is_time as fn(&SortValue) -> bool);
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let select = store::opportunity::select(p.workspace_id, &sf);
        let sort = Sort {
            column,
            id: opportunity::Column::Id,
            desc: order.direction == OrderDirection::Desc,
        };
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        let field = order.field;
        Ok(connection(
            page,
            &req,
            TotalCount::of(select),
            move |o| CursorKey {
                value: match field {
                    OpportunityOrderField::Id => None,
                    OpportunityOrderField::CreatedAt => Some(SortValue::Time(o.created_at)),
                },
                id: o.id,
            },
            Opportunity,
        ))
    }

    async fn opportunity(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Opportunity>> {
        let p = ctx.principal()?;
        let id = ids::decode(NodeType::Opportunity, &id).gql()?;
        Ok(store::by_id::<opportunity::Entity>(&ctx.db().conn, p.workspace_id, id)
            .await
            .gql()?
            .map(Opportunity))
    }
}

#[derive(InputObject)]
pub struct UpsertOpportunityInput {
    /// Updates this opportunity ...
    pub id: Option<ID>,
    /// ... or the one with this source-system ID (created when missing).
    pub external_id: Option<String>,
    pub account_id: Option<ID>,
    pub account_external_id: Option<String>,
    pub name: Option<String>,
    pub amount: Option<Decimal>,
    /// ISO 4217; defaults to the workspace currency.
    pub currency: Option<String>,
    pub owner_id: MaybeUndefined<ID>,
    pub expected_close_date: MaybeUndefined<Date>,
    /// When the deal was opened in the source system (default now).
    pub created_at: Option<DateTime>,
}

#[derive(InputObject)]
pub struct BuyingCenterContactInput {
    pub lead_id: ID,
    pub role: String,
    #[graphql(default)]
    pub is_primary: bool,
}

#[derive(InputObject)]
pub struct SetBuyingCenterInput {
    pub opportunity_id: ID,
    /// The whole buying center; replaces the current one.
    pub contacts: Vec<BuyingCenterContactInput>,
}

#[derive(InputObject)]
pub struct CloseOpportunityInput {
    pub id: ID,
    pub outcome: CloseOutcome,
    /// The final amount, if it differs from the current one.
    pub amount: Option<Decimal>,
    /// Default now.
    pub closed_at: Option<DateTime>,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct OpportunityPayload {
    #[graphql(skip)]
    pub opportunity: Option<opportunity::Model>,
    pub created: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl OpportunityPayload {
    async fn opportunity(&self) -> Option<Opportunity> {
        self.opportunity.clone().map(Opportunity)
    }
}

#[derive(Default)]
pub struct OpportunityMutation;

#[Object]
impl OpportunityMutation {
    /// Creates or updates an opportunity (by id or externalId; idempotent).
    async fn upsert_opportunity(&self, ctx: &Context<'_>, input: UpsertOpportunityInput) -> async_graphql::Result<OpportunityPayload> {
        let p = ctx.allowed(Action::WriteDeals)?;
        let account = match (input.account_id, input.account_external_id) {
            (Some(id), None) => Some(AccountRef::Id(ids::decode(NodeType::Account, &id).gql()?)),
            (None, Some(x)) => Some(AccountRef::ExternalId(x)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                let e = UserError {
                    field: vec!["input".into(), "accountId".into()],
                    message: "give accountId or accountExternalId, not both".into(),
                    code: "INVALID".into(),
                };
                return Ok(OpportunityPayload {
                    opportunity: None,
                    created: false,
                    user_errors: vec![e],
                });
            }
        };
        let upsert = UpsertOpportunity {
            id: decode_opt(NodeType::Opportunity, input.id.as_ref())?,
            external_id: input.external_id,
            account,
            name: input.name,
            amount: input.amount.map(|d| d.0),
            currency: input.currency,
            owner_id: patch_id(NodeType::User, input.owner_id)?,
            expected_close_date: patch(input.expected_close_date).map(|d| d.0),
            created_at: input.created_at.map(|t| t.0),
        };
        let (result, user_errors) = split(crate::service::opportunity::upsert(ctx.db(), p, upsert).await)?;
        let created = result.as_ref().is_some_and(|(_, c)| *c);
        Ok(OpportunityPayload {
            opportunity: result.map(|(o, _)| o),
            created,
            user_errors,
        })
    }

    /// Replaces the buying center of an opportunity.
    async fn set_buying_center(&self, ctx: &Context<'_>, input: SetBuyingCenterInput) -> async_graphql::Result<OpportunityPayload> {
        let p = ctx.allowed(Action::WriteDeals)?;
        let id = ids::decode(NodeType::Opportunity, &input.opportunity_id).gql()?;
        let mut contacts = Vec::with_capacity(input.contacts.len());
        for c in input.contacts {
            // An ID that does not decode cannot be a lead of this workspace: id 0 reports NOT_FOUND.
            let lead_id = ids::decode(NodeType::Lead, &c.lead_id).unwrap_or(0);
            contacts.push(Contact {
                lead_id,
                role: c.role,
                is_primary: c.is_primary,
            });
        }
        let (opportunity, user_errors) = split(crate::service::opportunity::set_buying_center(ctx.db(), p, id, contacts).await)?;
        Ok(OpportunityPayload {
            opportunity,
            created: false,
            user_errors,
        })
    }

    /// Closes an open opportunity as WON or LOST.
    async fn close_opportunity(&self, ctx: &Context<'_>, input: CloseOpportunityInput) -> async_graphql::Result<OpportunityPayload> {
        let p = ctx.allowed(Action::WriteDeals)?;
        let id = ids::decode(NodeType::Opportunity, &input.id).gql()?;
        let outcome = match input.outcome {
            CloseOutcome::Won => DomainStatus::Won,
            CloseOutcome::Lost => DomainStatus::Lost,
        };
        let result =
            crate::service::opportunity::close(ctx.db(), p, id, outcome, input.amount.map(|d| d.0), input.closed_at.map(|t| t.0)).await;
        let (opportunity, user_errors) = split(result)?;
        Ok(OpportunityPayload {
            opportunity,
            created: false,
            user_errors,
        })
    }
}
