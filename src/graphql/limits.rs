//! Limits on the shape of a query that async-graphql does not enforce itself: aliases, root
//! fields, and no mutations over GET. Depth and complexity are set on the schema.
//!
//! They are checked by [`Guarded`], which parses each request before the schema runs it, over
//! HTTP and over WebSocket alike. They were an async-graphql extension once; but with any
//! extension registered, async-graphql runs every field of every response through the extension
//! chain, and a page of 50 leads with their touchpoints spent about 4 % of its CPU there.
//!
//! [`Guarded`] also keeps the documents it parsed, by query text: clients send the same few
//! queries again and again with other variables, and parsing was a third of the work of a
//! request for one lead (BENCHMARKS.md). Validation still runs for every request, since it
//! checks the variables' values too.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Data, Executor, Request, Response, ServerError};

use crate::graphql::AppSchema;

/// The schema behind the shape limits.
#[derive(Clone)]
pub struct Guarded {
    schema: AppSchema,
    max_aliases: usize,
    max_root_fields: usize,
    documents: Arc<Documents>,
}

impl Guarded {
    pub fn new(schema: AppSchema, max_aliases: usize, max_root_fields: usize) -> Self {
        Self {
            schema,
            max_aliases,
            max_root_fields,
            documents: Arc::new(Documents::new(DOCUMENTS_KEPT, MAX_KEPT_QUERY_BYTES)),
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

    /// Parses the request, or takes the document parsed for an earlier request of the same text
    /// (the schema then runs that document), and checks its shape.
    fn check(&self, request: &mut Request, over_get: bool) -> Result<(), ServerError> {
        match self.documents.get(&request.query) {
            Some(doc) => request.set_parsed_query(doc),
            None => {
                let doc = request.parsed_query()?.clone();
                self.documents.keep(&request.query, doc);
            }
        }
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

/// How many parsed documents [`Guarded`] keeps, and the longest query text it keeps one for.
const DOCUMENTS_KEPT: usize = 512;
const MAX_KEPT_QUERY_BYTES: usize = 16 * 1024;

/// Parsed documents by query text: at most `capacity` of them, each of a text of at most
/// `max_bytes` bytes; when full, an arbitrary one makes room for the next. Only documents that
/// parsed are kept, so a text that does not parse is parsed (and refused) every time.
struct Documents {
    by_text: Mutex<HashMap<Box<str>, ExecutableDocument>>,
    capacity: usize,
    max_bytes: usize,
}

impl Documents {
    fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            by_text: Mutex::new(HashMap::new()),
            capacity,
            max_bytes,
        }
    }

    /// A copy of the document of `text`, which each request may change (async-graphql drops the
    /// selections a request's `@skip` and `@include` leave out).
    fn get(&self, text: &str) -> Option<ExecutableDocument> {
        self.by_text.lock().unwrap_or_else(PoisonError::into_inner).get(text).cloned()
    }

    fn keep(&self, text: &str, doc: ExecutableDocument) {
        if text.len() > self.max_bytes || self.capacity == 0 {
            return;
        }
        let mut by_text = self.by_text.lock().unwrap_or_else(PoisonError::into_inner);
        if by_text.len() >= self.capacity && !by_text.contains_key(text) {
            let evicted = by_text.keys().next().cloned();
            if let Some(evicted) = evicted {
                by_text.remove(&evicted);
            }
        }
        by_text.insert(text.into(), doc);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_text.lock().unwrap_or_else(PoisonError::into_inner).len()
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

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::Documents;

    fn doc(text: &str) -> async_graphql::parser::types::ExecutableDocument {
        parse_query(text).expect("parses")
    }

    #[test]
    fn a_kept_document_is_the_one_its_text_parses_to() {
        let docs = Documents::new(4, 1024);
        let text = "query Q($id: ID!) { lead(id: $id) { id email } }";
        assert!(docs.get(text).is_none());
        docs.keep(text, doc(text));
        let kept = docs.get(text).expect("kept");
        assert_eq!(format!("{kept:?}"), format!("{:?}", doc(text)));
        assert!(docs.get("{ leads(first: 1) { totalCount } }").is_none());
    }

    #[test]
    fn at_most_capacity_documents_are_kept_and_long_texts_not_at_all() {
        let docs = Documents::new(3, 64);
        for i in 0..10 {
            let text = format!("{{ a{i}: __typename }}");
            docs.keep(&text, doc(&text));
            assert!(docs.get(&text).is_some(), "the newest document is kept");
        }
        assert_eq!(docs.len(), 3);
        let long = format!("{{ {} }}", "__typename ".repeat(10));
        assert!(long.len() > 64);
        docs.keep(&long, doc(&long));
        assert!(docs.get(&long).is_none());
        assert_eq!(docs.len(), 3);
    }
}
