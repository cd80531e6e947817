//! The caller's workspace, its vocabularies, and who the caller is.
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};

use crate::domain::handoff::VOCAB_REJECT_REASON;
use crate::domain::vocab::{Action, VOCAB_CHANNEL, VOCAB_COST_CATEGORY, VOCAB_TOUCHPOINT_TYPE};
use crate::graphql::context::ContextExt;
use crate::graphql::enums::Role;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::loaders::{Loaders, WorkspaceKey};
use crate::store;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum VocabularyKind {
    Channel,
    TouchpointType,
    /// The reasons sales may give when it rejects a handoff.
    RejectReason,
    /// What campaign cost lines pay for.
    CostCategory,
}

impl VocabularyKind {
    fn code(self) -> &'static str {
        match self {
            VocabularyKind::Channel => VOCAB_CHANNEL,
            VocabularyKind::TouchpointType => VOCAB_TOUCHPOINT_TYPE,
            VocabularyKind::RejectReason => VOCAB_REJECT_REASON,
            VocabularyKind::CostCategory => VOCAB_COST_CATEGORY,
        }
    }
}

/// One code of a workspace vocabulary.
#[derive(SimpleObject, Clone)]
pub struct VocabularyTerm {
    pub code: String,
    pub label: String,
}

pub struct Workspace(entity::workspace::Model);

#[Object]
impl Workspace {
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// ISO 4217 code of campaign budgets and costs.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// The channels campaigns may have.
    async fn channels(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VocabularyTerm>> {
        vocabulary(ctx, self.0.id, VocabularyKind::Channel).await
    }
    /// The types touchpoints may have.
    async fn touchpoint_types(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VocabularyTerm>> {
        vocabulary(ctx, self.0.id, VocabularyKind::TouchpointType).await
    }
    /// The reason codes a rejected handoff may give.
    async fn reject_reasons(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VocabularyTerm>> {
        vocabulary(ctx, self.0.id, VocabularyKind::RejectReason).await
    }
    /// The categories campaign cost lines may have.
    async fn cost_categories(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VocabularyTerm>> {
        vocabulary(ctx, self.0.id, VocabularyKind::CostCategory).await
    }
}

async fn vocabulary(ctx: &Context<'_>, ws: i64, kind: VocabularyKind) -> async_graphql::Result<Vec<VocabularyTerm>> {
    let rows = store::workspace::vocabulary(&ctx.db().conn, ws, kind.code()).await.gql()?;
    Ok(rows
        .into_iter()
        .map(|t| VocabularyTerm {
            code: t.code,
            label: t.label,
        })
        .collect())
}

/// Who is calling.
pub struct Viewer;

#[Object]
impl Viewer {
    async fn role(&self, ctx: &Context<'_>) -> async_graphql::Result<Role> {
        Ok(ctx.principal()?.role.into())
    }
    async fn workspace(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Workspace>> {
        ctx.principal()?;
        Ok(ctx.data_unchecked::<Loaders>().load_one(WorkspaceKey).await?.map(Workspace))
    }
}

#[derive(Default)]
pub struct WorkspaceQuery;

#[Object]
impl WorkspaceQuery {
    /// The caller: its role and workspace.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        ctx.principal()?;
        Ok(Viewer)
    }
}

#[derive(InputObject)]
pub struct AddVocabularyTermInput {
    pub kind: VocabularyKind,
    /// SCREAMING_SNAKE_CASE code; spaces and dashes become underscores.
    pub code: String,
    pub label: Option<String>,
}

#[derive(SimpleObject)]
pub struct AddVocabularyTermPayload {
    pub term: Option<VocabularyTerm>,
    pub user_errors: Vec<UserError>,
}

#[derive(Default)]
pub struct WorkspaceMutation;

#[Object]
impl WorkspaceMutation {
    /// Adds a channel, touchpoint type, reject reason or cost category to the workspace's
    /// vocabulary (ADMIN).
    async fn add_vocabulary_term(
        &self,
        ctx: &Context<'_>,
        input: AddVocabularyTermInput,
    ) -> async_graphql::Result<AddVocabularyTermPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let result = crate::service::vocabulary::add(ctx.db(), p, input.kind.code(), &input.code, input.label).await;
        let (term, user_errors) = split(result)?;
        Ok(AddVocabularyTermPayload {
            term: term.map(|t| VocabularyTerm {
                code: t.code,
                label: t.label,
            }),
            user_errors,
        })
    }
}
