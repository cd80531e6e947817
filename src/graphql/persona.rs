//! Buyer personas: weighted criteria over lead attributes and a match threshold.
use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use entity::{lead_persona_match, persona};

use crate::domain::vocab::Action;
use crate::graphql::context::ContextExt;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::ids::{self, NodeType};
use crate::graphql::lead::Lead;
use crate::graphql::loaders::{Loaders, PersonaCriteria, PersonaId};
use crate::graphql::pagination::{Conn, PageArgs};
use crate::graphql::plan::{self, Planned};
use crate::graphql::scalars::DateTime;
use crate::graphql::scalars::Decimal;
use crate::service::persona::{self as service, CriterionInput, PersonaInput};
use crate::store;
use crate::store::Scoped;
use crate::store::page::Sort;

pub struct Persona(pub persona::Model);

/// One weighted criterion of a persona.
#[derive(SimpleObject)]
pub struct PersonaCriterion {
    /// The lead or account attribute, e.g. jobTitle, industry, companySize.
    pub attribute: String,
    /// EQUALS, IN, RANGE, CONTAINS or EXISTS (see `PersonaOperator`).
    pub operator: String,
    /// A JSON array: the texts to compare with, RANGE's [min, max] as decimal strings (null for
    /// an open end), or [] for EXISTS.
    pub values: Json<serde_json::Value>,
    /// 1 to 1000: the criterion's share of the total weight.
    pub weight: i32,
}

/// A buyer persona, e.g. "Peter Produzent" (production manager in machine building, 50-500
/// staff): weighted criteria on lead and account attributes and a match threshold. A lead's
/// match is its matched weight over the total weight, in percent (docs/personas.md).
#[Object]
impl Persona {
    /// The persona's global ID.
    pub async fn id(&self) -> ID {
        ids::encode(NodeType::Persona, self.0.id)
    }
    /// Unique in the workspace.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Free text for people; null when none.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Percent (1 to 100) of the total weight a lead must match to belong to the persona.
    async fn match_threshold(&self) -> i32 {
        self.0.match_threshold
    }
    /// The weighted criteria, in the order given.
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
    /// When the persona was created (UTC).
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the persona was last changed (UTC).
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Leads that match the persona to at least `minMatch` percent (default: its threshold, i.e.
    /// its members), by lead ID.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Minimum match in percent, 0 to 100 (values outside are clamped); default: the persona's threshold.")]
        min_match: Option<i32>,
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
    ) -> async_graphql::Result<Planned<Conn<Lead>>> {
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
        let sort = Sort::by_id(entity::lead::Column::Id, false);
        plan::page(ctx, &plan::describe::LEAD, select, sort, req, Lead).await
    }
}

pub struct PersonaMatch(pub lead_persona_match::Model);

/// One criterion of a persona and whether the lead meets it.
#[derive(SimpleObject)]
pub struct CriterionMatch {
    /// The criterion's attribute, e.g. jobTitle.
    pub attribute: String,
    /// The criterion's operator, e.g. CONTAINS.
    pub operator: String,
    /// The criterion's weight.
    pub weight: i32,
    /// The lead meets the criterion: its weight counts in `matchedWeight`.
    pub matched: bool,
}

/// How a lead matches a persona (recomputed when the lead or the persona changes).
#[Object]
impl PersonaMatch {
    /// The persona matched.
    async fn persona(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Persona>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .load_one(PersonaId(self.0.persona_id))
            .await?
            .map(Persona))
    }
    /// matchedWeight / totalWeight x 100: a percentage from "0.00" to "100.00" as a Decimal
    /// string, two decimal places, rounded half away from zero (membership is decided exactly,
    /// before rounding).
    async fn percent(&self) -> Decimal {
        let exact = crate::domain::persona::percent(self.0.matched_weight, self.0.total_weight);
        let mut d = exact.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        d.rescale(2);
        Decimal(d)
    }
    /// The sum of the weights of the criteria the lead meets.
    async fn matched_weight(&self) -> i32 {
        self.0.matched_weight
    }
    /// The sum of the weights of all the persona's criteria.
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
    /// The workspace's personas, by ID. Any role.
    #[graphql(complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)")]
    async fn personas(
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
    ) -> async_graphql::Result<Planned<Conn<Persona>>> {
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
        let sort = Sort::by_id(persona::Column::Id, false);
        plan::page(ctx, &plan::describe::PERSONA, select, sort, req, Persona).await
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

/// One weighted criterion of a persona.
#[derive(InputObject)]
pub struct PersonaCriterionInput {
    /// jobTitle, decisionRole, industry, companySize, country, employeeCount, annualRevenue,
    /// customerStatus, email, phone, or custom.<field> (INVALID otherwise).
    pub attribute: String,
    /// How the attribute is compared with `values`.
    pub operator: PersonaOperator,
    /// Texts, or decimal numbers as strings for RANGE ([min, max], null for an open end).
    #[graphql(default)]
    pub values: Vec<Option<String>>,
    /// 1 to 1000: the criterion's share of the total weight.
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

/// A new persona.
#[derive(InputObject)]
pub struct CreatePersonaInput {
    /// Unique in the workspace (TAKEN otherwise).
    pub name: String,
    /// Free text for people.
    pub description: Option<String>,
    /// Percent (1 to 100) of the total weight a lead must match to belong to the persona
    /// (default 60).
    pub match_threshold: Option<i32>,
    /// The weighted criteria.
    pub criteria: Vec<PersonaCriterionInput>,
}

/// Changes to a persona; absent fields stay.
#[derive(InputObject)]
pub struct UpdatePersonaInput {
    /// The persona's ID.
    pub id: ID,
    /// A new name, unique in the workspace.
    pub name: Option<String>,
    /// Absent keeps it, null clears it.
    pub description: MaybeUndefined<String>,
    /// Percent, 1 to 100.
    pub match_threshold: Option<i32>,
    /// Replaces every criterion when given.
    pub criteria: Option<Vec<PersonaCriterionInput>>,
}

/// The persona to delete.
#[derive(InputObject)]
pub struct DeletePersonaInput {
    /// The persona's ID.
    pub id: ID,
}

/// The result of a persona mutation.
#[derive(SimpleObject)]
pub struct PersonaPayload {
    /// The persona as saved (as it was, for a delete); null when `userErrors` is not empty.
    pub persona: Option<Persona>,
    /// What the end user can fix, e.g. TAKEN, IN_USE; empty on success.
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
    async fn create_persona(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new persona.")] input: CreatePersonaInput,
    ) -> async_graphql::Result<PersonaPayload> {
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
    async fn update_persona(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The persona and its changes.")] input: UpdatePersonaInput,
    ) -> async_graphql::Result<PersonaPayload> {
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
    async fn delete_persona(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The persona to delete.")] input: DeletePersonaInput,
    ) -> async_graphql::Result<PersonaPayload> {
        let p = ctx.allowed(Action::WriteMarketing)?;
        let id = ids::decode(NodeType::Persona, &input.id).gql()?;
        payload(service::delete(ctx.db(), p, id).await)
    }
}
