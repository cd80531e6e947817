//! Buyer personas: weighted criteria over lead attributes and a match threshold.
use async_graphql::{Context, ID, Json, Object, SimpleObject};
use entity::persona;

use crate::graphql::context::ContextExt;
use crate::graphql::errors::IntoGql;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::loaders::{Loaders, PersonaCriteria};
use crate::graphql::pagination::{Conn, PageArgs, TotalCount, connection};
use crate::graphql::scalars::DateTime;
use crate::store::Scoped;
use crate::store::page::{CursorKey, Sort, fetch_page};

pub struct Persona(pub persona::Model);

/// One weighted criterion of a persona.
#[derive(SimpleObject)]
pub struct PersonaCriterion {
    /// The lead or account attribute, e.g. jobTitle, industry, companySize.
    pub attribute: String,
    /// EQUALS, IN, RANGE, CONTAINS or EXISTS.
    pub operator: String,
    pub values: Json<serde_json::Value>,
    pub weight: i32,
}

#[Object]
impl Persona {
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Persona, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Percent of the total weight a lead must match to belong to the persona.
    async fn match_threshold(&self) -> i32 {
        self.0.match_threshold
    }
    async fn criteria(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PersonaCriterion>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(PersonaCriteria(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|c| PersonaCriterion {
                attribute: c.attribute,
                operator: c.operator,
                values: Json(c.values),
                weight: c.weight,
            })
            .collect())
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(Default)]
pub struct PersonaQuery;

#[Object]
impl PersonaQuery {
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn personas(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Persona>> {
        let p = ctx.principal()?;
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(None)
        .gql()?;
        let select = persona::Entity::in_workspace(p.workspace_id);
        let sort = Sort {
            column: None,
            id: persona::Column::Id,
            desc: false,
        };
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        Ok(connection(page, &req, TotalCount::of(select), |x| CursorKey::id(x.id), Persona))
    }
}
