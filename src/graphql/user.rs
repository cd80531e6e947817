//! Users: the people in marketing and sales who own leads and deals.
use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject};
use entity::user;

use crate::domain::vocab::Action;
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::pagination::{Conn, PageArgs, TotalCount, connection};
use crate::graphql::scalars::DateTime;
use crate::store::Scoped;
use crate::store::page::{CursorKey, Sort, fetch_page};

pub struct User(pub user::Model);

#[Object]
impl User {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::User, self.0.id)
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// E.g. "Sales DACH", "Inside sales".
    async fn team(&self) -> Option<&str> {
        self.0.team.as_deref()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// Users of the workspace, by id.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<User>> {
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
        let sort = Sort {
            column: None,
            id: user::Column::Id,
            desc: false,
        };
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        Ok(connection(page, &req, TotalCount::of(select), |u| CursorKey::id(u.id), User))
    }
}

#[derive(InputObject)]
pub struct UpsertUserInput {
    /// The upsert key: the source system's ID; without it, the e-mail is matched.
    pub external_id: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub team: Option<String>,
    #[graphql(default = true)]
    pub active: bool,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct UserPayload {
    #[graphql(skip)]
    pub user: Option<user::Model>,
    pub created: bool,
    pub user_errors: Vec<UserError>,
}

#[ComplexObject]
impl UserPayload {
    async fn user(&self) -> Option<User> {
        self.user.clone().map(User)
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Creates or updates a user (ADMIN; idempotent by externalId or e-mail).
    async fn upsert_user(&self, ctx: &Context<'_>, input: UpsertUserInput) -> async_graphql::Result<UserPayload> {
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
