//! Buyer personas: weighted criteria over lead attributes and a match threshold.
use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use entity::{lead_persona_match, persona};

use crate::domain::vocab::Action;
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::Lead;
use crate::graphql::loaders::{Loaders, PersonaCriteria, PersonaId};
use crate::graphql::pagination::{Conn, PageArgs, TotalCount, connection};
use crate::graphql::scalars::DateTime;
use crate::graphql::scalars::Decimal;
use crate::service::persona::{self as service, CriterionInput, PersonaInput};
use crate::store;
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
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Leads that match the persona to at least `minMatch` percent (default: its threshold, i.e.
    /// its members), by lead ID.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        min_match: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Lead>> {
        let p = ctx.principal()?;
        let req = PageArgs {
            first,
            after,
            last,
            before,
        }
        .request(None)
        .gql()?;
        let filter = store::lead::LeadFilter {
            persona: Some(store::lead::PersonaMatchFilter {
                persona_id: self.0.id,
                min_match: min_match.map(|m| m.clamp(0, 100)),
            }),
            ..Default::default()
        };
        let select = store::lead::select(p.workspace_id, &filter);
        let sort = Sort {
            column: None,
            id: entity::lead::Column::Id,
            desc: false,
        };
        let page = fetch_page(&ctx.db().conn, select.clone(), &sort, &req).await.gql()?;
        Ok(connection(page, &req, TotalCount::of(select), |l| CursorKey::id(l.id), Lead))
    }
}

/// How a lead matches a persona.
pub struct PersonaMatch(pub lead_persona_match::Model);

/// One criterion of a persona and whether the lead meets it.
#[derive(SimpleObject)]
pub struct CriterionMatch {
    pub attribute: String,
    pub operator: String,
    pub weight: i32,
    pub matched: bool,
}

#[Object]
impl PersonaMatch {
    async fn persona(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Persona>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(PersonaId(self.0.persona_id))
            .await?
            .map(Persona))
    }
    /// Matched weight / total weight x 100, to two decimal places (half away from zero).
    async fn percent(&self) -> Decimal {
        let exact = crate::domain::persona::percent(self.0.matched_weight, self.0.total_weight);
        let mut d = exact.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        d.rescale(2);
        Decimal(d)
    }
    async fn matched_weight(&self) -> i32 {
        self.0.matched_weight
    }
    async fn total_weight(&self) -> i32 {
        self.0.total_weight
    }
    /// The match reaches the persona's threshold: the lead belongs to the persona.
    async fn is_member(&self) -> bool {
        self.0.is_member
    }
    /// Each criterion in order, and whether the lead meets it.
    async fn criteria(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CriterionMatch>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .load_one(PersonaCriteria(self.0.persona_id))
            .await?
            .unwrap_or_default();
        let met: Vec<bool> = serde_json::from_value(self.0.criteria_met.clone()).unwrap_or_default();
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(i, c)| CriterionMatch {
                attribute: c.attribute,
                operator: c.operator,
                weight: c.weight,
                matched: met.get(i).copied().unwrap_or(false),
            })
            .collect())
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

/// How a criterion compares the attribute with its values.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PersonaOperator {
    /// Equal to one of the values (text: case-insensitive).
    Equals,
    /// The same as EQUALS, for lists.
    In,
    /// A number between values[0] and values[1] inclusive (null: open end).
    Range,
    /// Text containing one of the values (case-insensitive).
    Contains,
    /// The attribute is present (no values).
    Exists,
}

impl PersonaOperator {
    pub fn code(self) -> &'static str {
        match self {
            PersonaOperator::Equals => "EQUALS",
            PersonaOperator::In => "IN",
            PersonaOperator::Range => "RANGE",
            PersonaOperator::Contains => "CONTAINS",
            PersonaOperator::Exists => "EXISTS",
        }
    }
}

#[derive(InputObject)]
pub struct PersonaCriterionInput {
    /// jobTitle, decisionRole, industry, companySize, country, employeeCount, annualRevenue,
    /// customerStatus, email, phone, or custom.<field>.
    pub attribute: String,
    pub operator: PersonaOperator,
    /// Texts, or decimal numbers as strings for RANGE ([min, max], null for an open end).
    #[graphql(default)]
    pub values: Vec<Option<String>>,
    /// 1 to 1000.
    pub weight: i32,
}

fn criteria(list: Vec<PersonaCriterionInput>) -> Vec<CriterionInput> {
    list.into_iter()
        .map(|c| CriterionInput {
            attribute: c.attribute,
            operator: c.operator.code().to_owned(),
            values: c.values,
            weight: c.weight,
        })
        .collect()
}

#[derive(InputObject)]
pub struct CreatePersonaInput {
    pub name: String,
    pub description: Option<String>,
    /// Percent of the total weight a lead must match to belong to the persona (default 60).
    pub match_threshold: Option<i32>,
    pub criteria: Vec<PersonaCriterionInput>,
}

#[derive(InputObject)]
pub struct UpdatePersonaInput {
    pub id: ID,
    pub name: Option<String>,
    /// Absent keeps it, null clears it.
    pub description: MaybeUndefined<String>,
    pub match_threshold: Option<i32>,
    /// Replaces every criterion when given.
    pub criteria: Option<Vec<PersonaCriterionInput>>,
}

#[derive(InputObject)]
pub struct DeletePersonaInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct PersonaPayload {
    pub persona: Option<Persona>,
    pub user_errors: Vec<UserError>,
}

fn payload(result: Result<persona::Model, crate::error::ServiceError>) -> async_graphql::Result<PersonaPayload> {
    let (persona, user_errors) = split(result)?;
    Ok(PersonaPayload {
        persona: persona.map(Persona),
        user_errors,
    })
}

#[derive(Default)]
pub struct PersonaMutation;

#[Object]
impl PersonaMutation {
    /// MARKETING or ADMIN: a persona; its matches over every lead are computed in bulk.
    async fn create_persona(&self, ctx: &Context<'_>, input: CreatePersonaInput) -> async_graphql::Result<PersonaPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let new = PersonaInput {
            name: Some(input.name),
            description: Some(input.description),
            match_threshold: input.match_threshold,
            criteria: Some(criteria(input.criteria)),
        };
        payload(service::create(ctx.db(), p, new).await)
    }

    /// MARKETING or ADMIN: changed criteria or threshold recompute the persona's matches.
    async fn update_persona(&self, ctx: &Context<'_>, input: UpdatePersonaInput) -> async_graphql::Result<PersonaPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let id = ids::decode(NodeType::Persona, &input.id).gql()?;
        let change = PersonaInput {
            name: input.name,
            description: match input.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(d)),
            },
            match_threshold: input.match_threshold,
            criteria: input.criteria.map(criteria),
        };
        payload(service::update(ctx.db(), p, id, change).await)
    }

    /// MARKETING or ADMIN: deletes a persona that no routing rule uses.
    async fn delete_persona(&self, ctx: &Context<'_>, input: DeletePersonaInput) -> async_graphql::Result<PersonaPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let id = ids::decode(NodeType::Persona, &input.id).gql()?;
        payload(service::delete(ctx.db(), p, id).await)
    }
}
