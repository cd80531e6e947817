//! Users: the people in marketing and sales who own leads and deals.
use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject};
use entity::user;

use crate::domain::vocab::Action;
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::pagination::{Conn, PageArgs};
use crate::graphql::plan::{self, Planned};
use crate::graphql::scalars::DateTime;
use crate::store::Scoped;
use crate::store::page::Sort;

pub struct User(pub user::Model);

/// A person in marketing or sales who owns leads, deals and handoffs (not an API key).
#[Object]
impl User {
    /// The user's global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::User, self.0.id)
    }
    /// The source system's ID (CRM); null when none was given.
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Lower-cased; null when unknown.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// E.g. "Sales DACH", "Inside sales".
    async fn team(&self) -> Option<&str> {
        self.0.team.as_deref()
    }
    /// Only active users can be given handoffs (routing rules, default owner, reassignment).
    async fn active(&self) -> bool {
        self.0.active
    }
    /// When the user was created here (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// Users of the workspace, by ID. Any role.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn users(
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
    ) -> async_graphql::Result<Planned<Conn<User>>> {
        let p = ctx.principal()?;
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(None)
        .gql()?;
        let select = user::Entity::in_workspace(p.workspace_id);
        let sort = Sort::by_id(user::Column::Id, false);
        plan::page(ctx, &plan::describe::USER, select, sort, req, User).await
    }
}

/// A user to create or update.
#[derive(InputObject)]
pub struct UpsertUserInput {
    /// The upsert key: the source system's ID; without it, the e-mail is matched.
    pub external_id: Option<String>,
    /// Display name; required (REQUIRED when blank).
    pub name: String,
    /// A valid e-mail address (INVALID otherwise), stored in lower case.
    pub email: Option<String>,
    /// E.g. "Sales DACH".
    pub team: Option<String>,
    /// Default true; false keeps the user's leads and handoffs but stops new assignments.
    #[graphql(default = true)]
    pub active: bool,
}

/// The result of `upsertUser`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct UserPayload {
    #[graphql(skip)]
    pub user: Option<user::Model>,
    /// True when the mutation created the user.
    pub created: bool,
    /// What the end user can fix; empty on success.
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl UserPayload {
    /// The user as saved; null when `userErrors` is not empty.
    async fn user(&self) -> Option<User> {
        self.user.clone().map(User)
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// ADMIN: creates or updates a user (idempotent by externalId or e-mail).
    async fn upsert_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's key and fields.")] input: UpsertUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let new = crate::service::user::UserInput {
            external_id: input.external_id,
            name: input.name,
            email: input.email,
            team: input.team,
            active: input.active,
        };
        let (result, user_errors) = split(crate::service::user::upsert(ctx.db(), p, new).await)?;
        let created = result.as_ref().is_some_and(|(_, c)| *c);
        Ok(UserPayload {
            user: result.map(|(u, _)| u),
            created,
            user_errors,
        })
    }
}
