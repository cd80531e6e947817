//! Limits on the size and shape of a query, checked before the schema sees it: tokens and
//! nesting of the text, then fields, depth, aliases and directives with fragments expanded
//! (measured without expanding them, `shape`), root fields, and no mutations over GET; and the
//! strings the request gives, NUL-free and bounded per field (`bounds`).
//! Complexity, which needs the schema's per-field costs, is left to the schema.
//!
//! They are checked by [`Guarded`], which parses each request before the schema runs it, over
//! HTTP and over WebSocket alike. They were an async-graphql extension once; but with any
//! extension registered, async-graphql runs every field of every response through the extension
//! chain, and a page of 50 leads with their touchpoints spent about 4 % of its CPU there.
//!
//! [`Guarded`] also keeps the documents it parsed, by query text: clients send the same few
//! queries again and again with other variables, and parsing was a third of the work of a
//! request for one lead (BENCHMARKS.md). Validation still runs for every request, since it
//! checks the variables' values too. It puts in the texts of Apollo's automatic persisted
//! queries (`persisted`) before all this, so a query sent by its hash is checked as any other.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Data, Executor, Request, Response, ServerError};

use crate::config::Limits;
use crate::graphql::AppSchema;
use crate::graphql::bounds;
use crate::graphql::errors::coded;
use crate::graphql::persisted::PersistedQueries;
use crate::graphql::shape::{self, FragmentCycle};

/// The schema behind the shape limits.
#[derive(Clone)]
pub struct Guarded {
    schema: AppSchema,
    limits: Arc<Limits>,
    documents: Arc<Documents>,
    persisted: Arc<PersistedQueries>,
}

impl Guarded {
    pub fn new(schema: AppSchema, limits: &Limits) -> Self {
        Self {
            schema,
            limits: Arc::new(limits.clone()),
            documents: Arc::new(Documents::new(KEPT_QUERY_BYTES, MAX_KEPT_QUERY_BYTES)),
            persisted: Arc::default(),
        }
    }

    /// Runs a request once its shape is within the limits.
    pub async fn execute_checked(&self, request: Request, via: Via) -> Response {
        match self.checked(request, via).await {
            Ok(request) => self.schema.execute(request).await,
            Err(e) => Response::from_errors(vec![e]),
        }
    }

    /// The request, checked, with the text of its persisted query (`persisted`) put in; a text
    /// sent with its hash by a caller with a key is registered once it has passed the checks.
    async fn checked(&self, mut request: Request, via: Via) -> Result<Request, ServerError> {
        let register = self.persisted.resolve(&mut request)?;
        let request = self.checked_text(request, via.get).await?;
        if let Some(hash) = register.filter(|_| via.authenticated) {
            self.persisted.register(hash, &request.query);
        }
        Ok(request)
    }

    /// A text too long to be kept (which no earlier request parsed for it) is lexed, parsed and
    /// measured on a blocking thread, so that a client sending large documents does not hold up
    /// the runtime's other requests meanwhile.
    async fn checked_text(&self, mut request: Request, over_get: bool) -> Result<Request, ServerError> {
        if self.documents.takes(request.query.len()) {
            return self.check(&mut request, over_get).map(|()| request);
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.check(&mut request, over_get).map(|()| request))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "checking a query failed");
                Err(coded("INTERNAL_SERVER_ERROR", "internal error"))
            })
    }

    /// Takes the document parsed for an earlier request of the same text (the schema then runs
    /// that document), or lexes, parses and measures the text; then checks what depends on the
    /// request (root fields, mutations over GET).
    fn check(&self, request: &mut Request, over_get: bool) -> Result<(), ServerError> {
        match self.documents.get(request.query.as_str()) {
            Some(doc) => request.set_parsed_query(doc),
            None => {
                self.check_text(&request.query)?;
                let kept = self.documents.takes(request.query.len());
                let doc = request.parsed_query()?;
                self.check_document(doc)?;
                if kept {
                    let doc = doc.clone();
                    self.documents.keep(request.query.as_str().into(), request.query.len(), doc);
                }
            }
        }
        let doc = request.parsed_query()?;
        for (_, op) in doc.operations.iter() {
            if op.node.selection_set.node.items.len() > self.limits.max_root_fields {
                return Err(too_complex(format!(
                    "an operation may select at most {} root fields",
                    self.limits.max_root_fields
                )));
            }
            if op.node.ty == OperationType::Mutation && over_get {
                return Err(coded("BAD_USER_INPUT", "mutations are not accepted over GET; use POST"));
            }
        }
        // Every request, since its variables are its own (the document may have been kept).
        let (variables, operation) = (std::mem::take(&mut request.variables), request.operation_name.clone());
        let checked = bounds::check(request.parsed_query()?, operation.as_deref(), &variables);
        request.variables = variables;
        checked
    }

    /// Bounds the parser's work: tokens and bracket nesting, counted in one pass over the text.
    fn check_text(&self, text: &str) -> Result<(), ServerError> {
        let l = &self.limits;
        let lexed = shape::lex(text, l.max_tokens, l.max_nesting);
        if lexed.tokens > l.max_tokens {
            return Err(too_complex(format!("a query may have at most {} tokens", l.max_tokens)));
        }
        if lexed.nesting > l.max_nesting {
            return Err(too_complex(format!("a query may nest brackets at most {} deep", l.max_nesting)));
        }
        Ok(())
    }

    /// Bounds validation's and execution's work: the document's shape with its fragments
    /// expanded, measured without expanding them. async-graphql's own depth, directive and
    /// complexity checks expand them, so they run only after this.
    fn check_document(&self, doc: &ExecutableDocument) -> Result<(), ServerError> {
        let l = &self.limits;
        let m = shape::measure(doc).map_err(|FragmentCycle(name)| {
            coded(
                "BAD_USER_INPUT",
                format!("fragment {name} spreads itself, directly or through others"),
            )
        })?;
        let over = |n: u64, max: usize| n > max as u64;
        if over(m.validated_fields, l.max_fields) {
            return Err(too_complex(format!(
                "a query may select at most {} fields with its fragments expanded",
                l.max_fields
            )));
        }
        if over(m.operations.depth, l.max_depth) {
            return Err(too_complex(format!(
                "the query is nested too deep (at most {} levels)",
                l.max_depth
            )));
        }
        if over(m.operations.aliases, l.max_aliases) {
            return Err(too_complex(format!("a query may use at most {} aliases", l.max_aliases)));
        }
        if over(m.operations.directives, l.max_directives) {
            return Err(too_complex(format!("a query may use at most {} directives", l.max_directives)));
        }
        if over(m.directives_on_one, l.max_directives_per_field) {
            return Err(too_complex(format!(
                "a field or fragment may carry at most {} directives",
                l.max_directives_per_field
            )));
        }
        Ok(())
    }
}

/// How a request came; what is refused or kept depends on it.
#[derive(Clone, Copy, Debug)]
pub struct Via {
    /// As an HTTP GET: mutations are refused.
    pub get: bool,
    /// With a valid key. Only then is a persisted query's text kept, so that callers without
    /// one cannot evict the texts of those with one.
    pub authenticated: bool,
}

impl Via {
    /// A WebSocket's operations: its `connection_init` carried a valid key.
    const WEBSOCKET: Via = Via {
        get: false,
        authenticated: true,
    };
}

/// What the WebSocket endpoint runs operations with.
impl Executor for Guarded {
    async fn execute(&self, request: Request) -> Response {
        self.execute_checked(request, Via::WEBSOCKET).await
    }

    fn execute_stream(&self, request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let this = self.clone();
        stream::once(async move { this.checked(request, Via::WEBSOCKET).await.map(|r| (this, r)) })
            .flat_map(move |checked| match checked {
                Ok((this, request)) => Executor::execute_stream(&this.schema, request, session_data.clone()),
                Err(e) => stream::once(async move { Response::from_errors(vec![e]) }).boxed(),
            })
            .boxed()
    }
}

/// How much query text [`Guarded`] keeps parsed documents for, in all and at most per text. A
/// parsed document takes 30 to 40 times the memory of its text (Q1 to Q3 of `bench/queries`:
/// 119 to 330 bytes of text, 5 to 10 KiB parsed), so this is about 10 MiB at most.
const KEPT_QUERY_BYTES: usize = 256 * 1024;
const MAX_KEPT_QUERY_BYTES: usize = 16 * 1024;

/// Values by key, each with a cost (the length of the text it stands for), at most `max_cost`
/// each and `budget` in all; when full, arbitrary ones make room for the next. It keeps the
/// parsed documents by query text, and the texts of persisted queries by hash.
pub(crate) struct Bounded<K, V> {
    kept: Mutex<Entries<K, V>>,
    budget: usize,
    max_cost: usize,
}

struct Entries<K, V> {
    by_key: HashMap<K, (usize, V)>,
    /// The sum of the costs in `by_key`.
    cost: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    pub(crate) fn new(budget: usize, max_cost: usize) -> Self {
        Self {
            kept: Mutex::new(Entries {
                by_key: HashMap::new(),
                cost: 0,
            }),
            budget,
            max_cost: max_cost.min(budget),
        }
    }

    /// A copy of the value of `key` (a parsed document is copied because each request may
    /// change its own: async-graphql drops the selections its `@skip` and `@include` leave out).
    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.by_key.get(key).map(|(_, v)| v.clone())
    }

    /// Whether a value of this cost would be kept (so that a long text's document is not
    /// copied for nothing).
    pub(crate) fn takes(&self, cost: usize) -> bool {
        cost <= self.max_cost
    }

    pub(crate) fn keep(&self, key: K, cost: usize, value: V) {
        if !self.takes(cost) {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.by_key.contains_key(&key) {
            return;
        }
        while kept.cost + cost > self.budget {
            let Some(evicted) = kept.by_key.keys().next().cloned() else {
                break;
            };
            if let Some((c, _)) = kept.by_key.remove(&evicted) {
                kept.cost -= c;
            }
        }
        kept.cost += cost;
        kept.by_key.insert(key, (cost, value));
    }

    #[cfg(test)]
    fn cost_and_len(&self) -> (usize, usize) {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        (kept.cost, kept.by_key.len())
    }
}

/// Parsed documents by query text.
type Documents = Bounded<Box<str>, ExecutableDocument>;

pub fn too_complex(message: impl Into<String>) -> ServerError {
    coded("QUERY_TOO_COMPLEX", message)
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::Documents;

    fn doc(text: &str) -> async_graphql::parser::types::ExecutableDocument {
        parse_query(text).expect("parses")
    }

    fn keep(docs: &Documents, text: &str) {
        docs.keep(text.into(), text.len(), doc(text));
    }

    #[test]
    fn a_kept_document_is_the_one_its_text_parses_to() {
        let docs = Documents::new(1024, 1024);
        let text = "query Q($id: ID!) { lead(id: $id) { id email } }";
        assert!(docs.get(text).is_none());
        keep(&docs, text);
        let kept = docs.get(text).expect("kept");
        assert_eq!(format!("{kept:?}"), format!("{:?}", doc(text)));
        assert!(docs.get("{ leads(first: 1) { totalCount } }").is_none());
    }

    #[test]
    fn at_most_the_budget_of_text_is_kept_and_long_texts_not_at_all() {
        let docs = Documents::new(60, 40);
        let mut texts = Vec::new();
        for i in 0..10 {
            let text = format!("{{ a{i}: __typename }}");
            assert_eq!(text.len(), 18);
            keep(&docs, &text);
            keep(&docs, &text);
            assert!(docs.get(text.as_str()).is_some(), "the newest document is kept");
            texts.push(text);
        }
        assert_eq!(docs.cost_and_len(), (54, 3));
        assert_eq!(texts.iter().filter(|t| docs.get(t.as_str()).is_some()).count(), 3);
        let long = format!("{{ {} }}", "__typename ".repeat(4));
        assert!(long.len() > 40);
        assert!(!docs.takes(long.len()));
        keep(&docs, &long);
        assert!(docs.get(long.as_str()).is_none());
        assert_eq!(docs.cost_and_len(), (54, 3));
    }
}
