//! Limits on the shape of a query that async-graphql does not enforce itself: aliases, root
//! fields, and no mutations over GET. Depth and complexity are set on the schema.
//!
//! They are checked by [`Guarded`], which parses each request before the schema runs it, over
//! HTTP and over WebSocket alike. They were an async-graphql extension once; but with any
//! extension registered, async-graphql runs every field of every response through the extension
//! chain, and a page of 50 leads with their touchpoints spent about 4 % of its CPU there.
use std::sync::Arc;

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::parser::types::{OperationType, Selection, SelectionSet};
use async_graphql::{Data, Executor, Request, Response, ServerError};

use crate::graphql::AppSchema;

/// The schema behind the shape limits.
#[derive(Clone)]
pub struct Guarded {
    schema: AppSchema,
    max_aliases: usize,
    max_root_fields: usize,
}

impl Guarded {
    pub fn new(schema: AppSchema, max_aliases: usize, max_root_fields: usize) -> Self {
        Self {
            schema,
            max_aliases,
            max_root_fields,
        }
    }

    /// Runs a request once its shape is within the limits; `over_get` (a request that came as
    /// an HTTP GET) refuses mutations.
    pub async fn execute_checked(&self, mut request: Request, over_get: bool) -> Response {
        match self.check(&mut request, over_get) {
            Ok(()) => self.schema.execute(request).await,
            Err(e) => Response::from_errors(vec![e]),
        }
    }

    /// Parses the request (the schema then reuses the parsed document) and checks its shape.
    fn check(&self, request: &mut Request, over_get: bool) -> Result<(), ServerError> {
        let doc = request.parsed_query()?;
        let mut aliases: usize = doc.fragments.values().map(|f| count_aliases(&f.node.selection_set.node)).sum();
        for (_, op) in doc.operations.iter() {
            aliases += count_aliases(&op.node.selection_set.node);
            if op.node.selection_set.node.items.len() > self.max_root_fields {
                return Err(too_complex(format!(
                    "an operation may select at most {} root fields",
                    self.max_root_fields
                )));
            }
            if op.node.ty == OperationType::Mutation && over_get {
                let mut e = ServerError::new("mutations are not accepted over GET; use POST", None);
                e.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
                return Err(e);
            }
        }
        if aliases > self.max_aliases {
            return Err(too_complex(format!("a query may use at most {} aliases", self.max_aliases)));
        }
        Ok(())
    }
}

/// What the WebSocket endpoint runs operations with.
impl Executor for Guarded {
    async fn execute(&self, request: Request) -> Response {
        self.execute_checked(request, false).await
    }

    fn execute_stream(&self, mut request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        match self.check(&mut request, false) {
            Ok(()) => Executor::execute_stream(&self.schema, request, session_data),
            Err(e) => stream::once(async move { Response::from_errors(vec![e]) }).boxed(),
        }
    }
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
