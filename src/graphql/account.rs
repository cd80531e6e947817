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
use crate::graphql::pagination::{Conn, OrderDirection, PageArgs, TotalCount, connection};
use crate::graphql::plan::{self, Planned};
use crate::graphql::scalars::{DateTime, Decimal, Money};
use crate::graphql::{filter, loaders, patch};
use crate::service::account::AccountInput;
use crate::store::page::{CursorKey, Sort, fetch_page};
use crate::store::{self, account::AccountFilter as StoreFilter};

pub struct Account(pub account::Model);

/// A company: the account leads (contacts) and opportunities belong to. Created and updated by
/// `upsertAccount` (frontends, CRM connectors, the CSV import).
#[Object]
impl Account {
    /// Opaque global ID (`node(id:)` resolves it).
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Account, self.0.id)
    }
    /// The source system's ID (CRM), unique in the workspace; null when none was given.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// Customer lifetime value at `asOf` (docs/kpis.md, Customer lifetime value): W + W /
    /// max(1, tenure in years) x the workspace's expected remaining years (setting
    /// `expectedRemainingYears`, default 3), where W is the amounts of the account's WON deals
    /// in the workspace currency closed before `asOf` and tenure runs from the first won close
    /// to `asOf` in days / 365.25. In the workspace currency, rounded to the cent; null without
    /// a won deal before `asOf`.
    async fn lifetime_value(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The moment the value is taken at (default now); a deal closed exactly then does not count.")] as_of: Option<
            crate::graphql::scalars::DateTime,
        >,
    ) -> async_graphql::Result<Option<crate::graphql::scalars::Money>> {
        crate::graphql::kpi::account_lifetime_value(ctx, &self.0, as_of).boxed().await
    }
    /// The company's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The company's web domain, lower-cased (e.g. "acme.example"); `upsertAccount` without an
    /// externalId matches on it. Null when unknown.
    async fn domain(&self) -> Option<&str> {
        self.0.domain.as_deref()
    }
    /// Free text as given (trimmed), e.g. "Machine building"; null when unknown.
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    /// Number of employees (not negative); null when unknown.
    async fn employee_count(&self) -> Option<i64> {
        self.0.employee_count
    }
    /// Yearly revenue of the company, in the workspace currency; null when unknown.
    async fn annual_revenue(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        let currency = crate::graphql::workspace_currency(ctx).await?;
        Ok(self.0.annual_revenue_minor.map(|m| Money::from_minor(m, &currency)))
    }
    /// ISO 3166-1 alpha-2 code, upper case, e.g. "DE"; null when unknown.
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }
    /// Whether the company buys from us already (default LEAD); set by `upsertAccount`.
    async fn customer_status(&self) -> LifecycleStatus {
        LifecycleStatus::from_db(&self.0.customer_status)
    }
    /// When the account was created here (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When a field of the account last changed (UTC); an upsert that changes nothing leaves
    /// it. `accounts(filter: {updatedSince})` selects on it for incremental sync.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Incremented by every change the change feed reports (1 when created): pass it as
    /// `expectedVersion` to write without overwriting a newer change.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The account's leads (contacts), oldest first (by ID); erased leads are left out.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start (after `after`): 0 to 100, larger is clamped to 100. Give `first` or `last`.")]
        first: Option<i32>,
        #[graphql(desc = "Cursor of this list (an edge's `cursor` or `pageInfo.endCursor`): the items after it. Only with `first`.")]
        after: Option<String>,
        #[graphql(desc = "Page size from the end (before `before`): 0 to 100, larger is clamped to 100. Give `first` or `last`.")]
        last: Option<i32>,
        #[graphql(desc = "Cursor of this list (`pageInfo.startCursor`): the items before it. Only with `last`.")] before: Option<String>,
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
        let sort = Sort::by_id(entity::lead::Column::Id, false);
        let page = fetch_page(&ctx.db().conn, select, &sort, &req).boxed().await.gql()?;
        Ok(connection(page, &req, total, |l| CursorKey::id(l.id), Lead))
    }
}

/// What `accounts` may be ordered by.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum AccountOrderField {
    /// Creation order (the default).
    #[default]
    Id,
    /// The name, by code point (case-sensitive: "Z" before "a").
    Name,
    /// The time of the last change: with ASC and `updatedSince`, a sync's order.
    UpdatedAt,
}

/// The order of `accounts`; ties are broken by ID. A cursor is valid only for the order it
/// was made with (BAD_USER_INPUT otherwise).
#[derive(InputObject, Default)]
#[graphql(name = "AccountOrderInput")]
pub struct AccountOrder {
    /// The field to order by.
    pub field: AccountOrderField,
    /// ASC (the default) or DESC.
    #[graphql(default)]
    pub direction: OrderDirection,
}

/// Which accounts `accounts` lists. Conditions combine with AND; a list matches any of its
/// values; an absent or null condition matches every account.
#[derive(InputObject, Default)]
#[graphql(name = "AccountFilterInput")]
pub struct AccountFilter {
    /// ISO 3166-1 alpha-2 codes, any case ("de" is DE). Anything else ("Germany", "DEU") is
    /// BAD_USER_INPUT with code UNKNOWN_VALUE in `extensions.fields`.
    pub country: Option<Vec<String>>,
    /// Industries, matched exactly (case-sensitive) against the stored text.
    pub industry: Option<Vec<String>>,
    /// Customer statuses.
    pub customer_status: Option<Vec<LifecycleStatus>>,
    /// Accounts changed at or after this time (for incremental sync).
    pub updated_since: Option<DateTime>,
    /// Accounts whose name starts with this text (case-sensitive); empty matches all.
    pub name_prefix: Option<String>,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The workspace's accounts, one page at a time. Any role.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which accounts (default: all).")] filter: Option<AccountFilter>,
        #[graphql(desc = "The order (default: by ID, ascending).")] order_by: Option<AccountOrder>,
        #[graphql(desc = "Page size from the start (after `after`): 0 to 100, larger is clamped to 100. Give `first` or `last`.")]
        first: Option<i32>,
        #[graphql(
            desc = "Cursor of this list and order (an edge's `cursor` or `pageInfo.endCursor`): the items after it. Only with `first`."
        )]
        after: Option<String>,
        #[graphql(desc = "Page size from the end (before `before`): 0 to 100, larger is clamped to 100. Give `first` or `last`.")]
        last: Option<i32>,
        #[graphql(desc = "Cursor of this list and order (`pageInfo.startCursor`): the items before it. Only with `last`.")] before: Option<
            String,
        >,
    ) -> async_graphql::Result<Planned<Conn<Account>>> {
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
        let (sort, expects) = plan::sort::<account::Entity>(&plan::describe::ACCOUNT, order.field, order.direction);
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(expects)
        .gql()?;
        let select = store::account::select(p.workspace_id, &sf);
        plan::page(ctx, &plan::describe::ACCOUNT, select, sort, req, Account).await
    }

    /// One account by its ID; null when no account of the workspace has it. Any role.
    async fn account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's global ID (`Account.id`); a malformed ID or one of another type is NOT_FOUND.")] id: ID,
    ) -> async_graphql::Result<Planned<Option<Account>>> {
        let p = ctx.principal()?;
        let id = ids::decode(NodeType::Account, &id).gql()?;
        let select = store::with_id::<account::Entity>(p.workspace_id, id);
        plan::one(ctx, &plan::describe::ACCOUNT, select, Account).await
    }

    /// The account with this source-system ID; null when there is none. Any role.
    async fn account_by_external_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The source system's ID (`Account.externalId`), matched exactly.")] external_id: String,
    ) -> async_graphql::Result<Planned<Option<Account>>> {
        let p = ctx.principal()?;
        let select = store::account::with_external_id(p.workspace_id, &external_id);
        plan::one(ctx, &plan::describe::ACCOUNT, select, Account).await
    }
}

/// An account to create or update. Fields left out keep their value; a field set to null is
/// cleared (where the field allows null).
#[derive(InputObject)]
pub struct UpsertAccountInput {
    /// The upsert key: the source system's ID. Without it, the account with the same `domain`
    /// is updated, and without either a new account is created.
    pub external_id: Option<String>,
    /// Required for a new account (REQUIRED otherwise); blank counts as absent.
    pub name: Option<String>,
    /// Web domain, stored lower-cased and trimmed.
    pub domain: MaybeUndefined<String>,
    /// Free text, trimmed.
    pub industry: MaybeUndefined<String>,
    /// Number of employees; not negative (INVALID).
    pub employee_count: MaybeUndefined<i64>,
    /// Yearly revenue in the workspace currency: not negative, at most 2 decimal places.
    pub annual_revenue: MaybeUndefined<Decimal>,
    /// ISO 3166-1 alpha-2 code in any case, e.g. "DE" or "de"; anything else ("Germany",
    /// "UK") is INVALID.
    pub country: MaybeUndefined<String>,
    /// Default LEAD for a new account; absent keeps the current one.
    pub customer_status: Option<LifecycleStatus>,
    /// Optimistic concurrency for two-way syncs: write only if the account is at this `version`
    /// now (a CONFLICT userError with `currentVersion` otherwise, and nothing is written); 0
    /// means "only create". Absent: write whatever the version.
    pub expected_version: Option<i64>,
}

/// The result of `upsertAccount`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct UpsertAccountPayload {
    #[graphql(skip)]
    pub account: Option<account::Model>,
    /// True when the account did not exist before.
    pub created: bool,
    /// What the caller must fix (field path, message, code: INVALID, REQUIRED); nothing is
    /// written when not empty.
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl UpsertAccountPayload {
    /// The account as stored; null when `userErrors` is not empty.
    async fn account(&self) -> Option<Account> {
        self.account.clone().map(Account)
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account or updates the one with the same externalId (or domain); sending the
    /// same input twice changes nothing the second time. ADMIN, MARKETING or SALES (ANALYST:
    /// FORBIDDEN).
    async fn upsert_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account, found by id or externalId.")] input: UpsertAccountInput,
    ) -> async_graphql::Result<UpsertAccountPayload> {
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
            expected_version: input.expected_version,
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
