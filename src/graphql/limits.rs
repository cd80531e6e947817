//! Limits on the shape of a query that async-graphql does not enforce itself: aliases, root
//! fields, and no mutations over GET. Depth and complexity are set on the schema.
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// Marks a request that arrived over `GET`.
pub struct OverGet;

pub struct QueryLimits {
    pub max_aliases: usize,
    pub max_root_fields: usize,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExt {
            max_aliases: self.max_aliases,
            max_root_fields: self.max_root_fields,
        })
    }
}

struct QueryLimitsExt {
    max_aliases: usize,
    max_root_fields: usize,
}

pub fn too_complex(message: impl Into<String>) -> ServerError {
    let mut e = ServerError::new(message, None);
    e.extensions.get_or_insert_with(Default::default).set("code", "QUERY_TOO_COMPLEX");
    e
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => usize::from(f.node.alias.is_some()) + count_aliases(&f.node.selection_set.node),
            Selection::InlineFragment(f) => count_aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

#[async_trait::async_trait]
impl Extension for QueryLimitsExt {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let mut aliases: usize = doc.fragments.values().map(|f| count_aliases(&f.node.selection_set.node)).sum();
        for (_, op) in doc.operations.iter() {
            aliases += count_aliases(&op.node.selection_set.node);
            if op.node.selection_set.node.items.len() > self.max_root_fields {
                return Err(too_complex(format!(
                    "an operation may select at most {} root fields",
                    self.max_root_fields
                )));
            }
            if op.node.ty == OperationType::Mutation && ctx.data_opt::<OverGet>().is_some() {
                let mut e = ServerError::new("mutations are not accepted over GET; use POST", None);
                e.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
                return Err(e);
            }
        }
        if aliases > self.max_aliases {
            return Err(too_complex(format!("a query may use at most {} aliases", self.max_aliases)));
        }
        Ok(doc)
    }
}
