//! Accounts: companies, with their leads.
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use entity::account;
use futures_util::FutureExt;

use crate::domain::vocab::Action;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::LifecycleStatus;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::Lead;
use crate::graphql::loaders::{AccountLeadCount, AccountLeads};
use crate::graphql::pagination::{Conn, CursorCheck, OrderDirection, PageArgs, TotalCount, connection, is_text, is_time};
use crate::graphql::scalars::{DateTime, Decimal, Money};
use crate::graphql::{filter, loaders, patch};
use crate::service::account::AccountInput;
use crate::store::page::{CursorKey, Sort, SortValue, fetch_page};
use crate::store::{self, account::AccountFilter as StoreFilter};

pub struct Account(pub account::Model);

#[Object]
impl Account {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Account, self.0.id)
    }
    /// The source system's ID (CRM), unique in the workspace.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// Customer lifetime value at `asOf` (default now): won revenue W before it, plus W per
    /// year of tenure (at least one) times the workspace's expected remaining years
    /// (docs/kpis.md); null without a won deal.
    async fn lifetime_value(
        &self,
        ctx: &Context<'_>,
        as_of: Option<crate::graphql::scalars::DateTime>,
    ) -> async_graphql::Result<Option<crate::graphql::scalars::Money>> {
        crate::graphql::kpi::account_lifetime_value(ctx, &self.0, as_of).boxed().await
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn domain(&self) -> Option<&str> {
        self.0.domain.as_deref()
    }
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    async fn employee_count(&self) -> Option<i64> {
        self.0.employee_count
    }
    async fn annual_revenue(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        let currency = crate::graphql::workspace_currency(ctx).await?;
        Ok(self.0.annual_revenue_minor.map(|m| Money::from_minor(m, &currency)))
    }
    /// ISO 3166 alpha-2.
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }
    async fn customer_status(&self) -> LifecycleStatus {
        LifecycleStatus::from_db(&self.0.customer_status)
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// The account's leads (contacts), by id.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Lead>> {
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let req = args.request(None).gql()?;
        let total = TotalCount::Loaded(loaders::CountKey::AccountLeads(AccountLeadCount(self.0.id)));
        if req.cursor.is_none() && !req.backward {
            let rows = ctx
                .data_unchecked::<loaders::Loaders>()
                .load_one(AccountLeads {
                    account_id: self.0.id,
                    limit: req.limit + 1,
                })
                .await?
                .unwrap_or_default();
            let page = crate::store::page::PageRows::from_overfetch(rows, req.limit);
            return Ok(connection(page, &req, total, |l| CursorKey::id(l.id), Lead));
        }
        let p = ctx.principal()?;
        let filter = store::lead::LeadFilter {
            account_id: Some(self.0.id),
            ..Default::default()
        };
        let select = store::lead::select(p.workspace_id, &filter);
        let sort = Sort {
            column: None,
            id: entity::lead::Column::Id,
            desc: false,
        };
        let page = fetch_page(&ctx.db().conn, select, &sort, &req).boxed().await.gql()?;
        Ok(connection(page, &req, total, |l| CursorKey::id(l.id), Lead))
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum AccountOrderField {
    #[default]
    Id,
    Name,
    UpdatedAt,
}

#[derive(InputObject, Default)]
pub struct AccountOrder {
    pub field: AccountOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(InputObject, Default)]
pub struct AccountFilter {
    pub country: Option<Vec<String>>,
    pub industry: Option<Vec<String>>,
    pub customer_status: Option<Vec<LifecycleStatus>>,
    /// Accounts changed at or after this time (for incremental sync).
    pub updated_since: Option<DateTime>,
    /// Accounts whose name starts with this text (case-sensitive).
    pub name_prefix: Option<String>,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        filter: Option<AccountFilter>,
        order_by: Option<AccountOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Account>> {
        let p = ctx.principal()?;
        let f = filter.unwrap_or_default();
        let sf = StoreFilter {
            countries: filter::countries(&["filter", "country"], f.country)?,
            industries: f.industry,
            customer_statuses: f.customer_status.map(|v| {
                v.into_iter()
                    .map(|s| crate::domain::vocab::LifecycleStatus::from(s).as_str().to_owned())
                    .collect()
            }),
            updated_since: f.updated_since.map(|t| t.0),
            name_prefix: f.name_prefix,
        };
        let order = order_by.unwrap_or_default();
        use account::Column as C;
        let (column, expects): (Option<C>, CursorCheck) = match order.field {
            AccountOrderField::Id => (None, None),
            AccountOrderField::Name => (Some(C::Name), Some(is_text)),
            AccountOrderField::UpdatedAt => (Some(C::UpdatedAt), Some(is_time)),
        };
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let select = store::account::select(p.workspace_id, &sf);
        let sort = Sort {
            column,
            id: C::Id,
            desc: order.direction == OrderDirection::Desc,
        };
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        let field = order.field;
        Ok(connection(
            page,
            &req,
            TotalCount::of(select),
            move |a| CursorKey {
                value: match field {
                    AccountOrderField::Id => None,
                    AccountOrderField::Name => Some(SortValue::Text(a.name.clone())),
                    AccountOrderField::UpdatedAt => Some(SortValue::Time(a.updated_at)),
                },
                id: a.id,
            },
            Account,
        ))
    }

    async fn account(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Account>> {
        let p = ctx.principal()?;
        let id = ids::decode(NodeType::Account, &id).gql()?;
        Ok(store::by_id::<account::Entity>(&ctx.db().conn, p.workspace_id, id)
            .await
            .gql()?
            .map(Account))
    }

    async fn account_by_external_id(&self, ctx: &Context<'_>, external_id: String) -> async_graphql::Result<Option<Account>> {
        let p = ctx.principal()?;
        Ok(store::account::by_external_id(&ctx.db().conn, p.workspace_id, &external_id)
            .await
            .gql()?
            .map(Account))
    }
}

#[derive(InputObject)]
pub struct UpsertAccountInput {
    /// The upsert key: the source system's ID. Without it, the domain is matched.
    pub external_id: Option<String>,
    /// Required for a new account.
    pub name: Option<String>,
    pub domain: MaybeUndefined<String>,
    pub industry: MaybeUndefined<String>,
    pub employee_count: MaybeUndefined<i64>,
    pub annual_revenue: MaybeUndefined<Decimal>,
    /// ISO 3166 alpha-2, e.g. "DE".
    pub country: MaybeUndefined<String>,
    pub customer_status: Option<LifecycleStatus>,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct UpsertAccountPayload {
    #[graphql(skip)]
    pub account: Option<account::Model>,
    /// True when the account did not exist before.
    pub created: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl UpsertAccountPayload {
    async fn account(&self) -> Option<Account> {
        self.account.clone().map(Account)
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account or updates the one with the same externalId (idempotent).
    async fn upsert_account(&self, ctx: &Context<'_>, input: UpsertAccountInput) -> async_graphql::Result<UpsertAccountPayload> {
        let p = ctx.allowed(Action::WriteContacts)?;
        let input = AccountInput {
            external_id: input.external_id,
            name: input.name,
            domain: patch(input.domain),
            industry: patch(input.industry),
            employee_count: patch(input.employee_count),
            annual_revenue: patch(input.annual_revenue).map(|d| d.0),
            country: patch(input.country),
            customer_status: input.customer_status.map(Into::into),
        };
        let (result, user_errors) =
            split(crate::service::account::upsert(ctx.db(), ctx.data_unchecked::<crate::events::Bus>(), p, input).await)?;
        let created = result.as_ref().is_some_and(|(_, c)| *c);
        Ok(UpsertAccountPayload {
            account: result.map(|(a, _)| a),
            created,
            user_errors,
        })
    }
}
