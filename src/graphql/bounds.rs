//! Bounds on every string a request gives: no NUL (PostgreSQL refuses it) and at most so many
//! characters, by the name of the argument or input field it is given for (a key fits a unique
//! index, a search a LIKE pattern). [`check`] walks the arguments of the operation that runs,
//! its fragments' included, with each variable read where it is used, so that a string cannot
//! reach a resolver, a service or the database past these bounds, whichever field takes it.
//!
//! A refusal is a top-level BAD_USER_INPUT naming the path, as a malformed scalar is refused:
//! `input.items.3.idempotencyKey may have at most 200 characters`, with `extensions.field`
//! `["input", "items", "3", "idempotencyKey"]` (the shape of a `userErrors` field).
use std::collections::HashSet;

use async_graphql::parser::types::{Directive, ExecutableDocument, OperationDefinition, Selection, SelectionSet};
use async_graphql::parser::{Pos, Positioned};
use async_graphql::{Name, ServerError, Variables};
use async_graphql_value::{ConstValue, Value};

use crate::domain::input::{InputError, check_text};

/// Keys a row is found or deduplicated by (they go into unique indexes), and vocabulary codes.
pub const MAX_KEY: usize = 200;
/// Names of people, companies, campaigns, stages; address parts and other short profile texts.
pub const MAX_NAME: usize = 200;
/// E-mail addresses (RFC 5321's limit for a path).
pub const MAX_EMAIL: usize = 254;
/// Search texts and prefixes (SQLite refuses LIKE patterns over 50,000 bytes).
pub const MAX_SEARCH: usize = 200;
/// URLs.
pub const MAX_URL: usize = 2_048;
/// Free texts: notes, descriptions, feedback, comments, reasons.
pub const MAX_NOTE: usize = 10_000;
/// Any other string: IDs, cursors, persona values, strings inside JSON.
pub const MAX_OTHER: usize = 1_000;

/// The most characters a string given for `field` may have.
pub fn max_chars(field: &str) -> usize {
    match field {
        "idempotencyKey" | "externalId" | "campaignExternalId" | "leadExternalId" | "accountExternalId" | "trackingCode" | "key"
        | "code" | "reasonCode" | "type" | "channel" | "stage" | "attribute" | "currency" | "country" | "industry" => MAX_KEY,
        "name" | "firstName" | "lastName" | "jobTitle" | "decisionRole" | "companySize" | "team" | "label" | "role" | "street"
        | "postalCode" | "city" | "phone" | "twitterHandle" | "domain" | "secret" => MAX_NAME,
        "email" | "leadEmail" => MAX_EMAIL,
        "search" | "namePrefix" => MAX_SEARCH,
        "url" | "linkedinUrl" | "facebookUrl" => MAX_URL,
        "note" | "description" | "feedback" | "comment" | "reason" => MAX_NOTE,
        _ => MAX_OTHER,
    }
}

/// Fields of the JSON scalar: the names inside are the caller's, so they do not pick a bound.
fn is_json(field: &str) -> bool {
    matches!(field, "consents" | "customFields")
}

/// Refuses the first string of the operation `operation` (the document's only one when `None`)
/// that holds a NUL or is longer than its field allows. An operation that is not in the
/// document is left to the schema, which refuses it.
pub fn check(doc: &ExecutableDocument, operation: Option<&str>, variables: &Variables) -> Result<(), ServerError> {
    let runs = |name: Option<&Name>| name.is_none() || operation.is_none() || name.map(Name::as_str) == operation;
    let Some((_, op)) = doc.operations.iter().find(|(name, _)| runs(*name)) else {
        return Ok(());
    };
    let mut walk = Walk {
        doc,
        op: &op.node,
        variables,
        path: Vec::new(),
        seen: HashSet::new(),
    };
    walk.directives(&op.node.directives)?;
    walk.selections(&op.node.selection_set.node)
}

/// One segment of the path to a string: an argument or field name, or a list index.
#[derive(Clone, Copy)]
enum Segment<'a> {
    Name(&'a str),
    Index(usize),
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    op: &'a OperationDefinition,
    variables: &'a Variables,
    /// Where the walk is; read only to name a refused string.
    path: Vec<Segment<'a>>,
    /// Fragments walked already (a fragment spread twice is checked once).
    seen: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn selections(&mut self, set: &'a SelectionSet) -> Result<(), ServerError> {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    self.directives(&f.node.directives)?;
                    self.arguments(&f.node.arguments)?;
                    self.selections(&f.node.selection_set.node)?;
                }
                Selection::InlineFragment(f) => {
                    self.directives(&f.node.directives)?;
                    self.selections(&f.node.selection_set.node)?;
                }
                Selection::FragmentSpread(s) => {
                    self.directives(&s.node.directives)?;
                    let name = s.node.fragment_name.node.as_str();
                    if let Some(fragment) = self.doc.fragments.get(name)
                        && self.seen.insert(name)
                    {
                        self.directives(&fragment.node.directives)?;
                        self.selections(&fragment.node.selection_set.node)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn directives(&mut self, directives: &'a [Positioned<Directive>]) -> Result<(), ServerError> {
        directives.iter().try_for_each(|d| self.arguments(&d.node.arguments))
    }

    fn arguments(&mut self, arguments: &'a [(Positioned<Name>, Positioned<Value>)]) -> Result<(), ServerError> {
        for (name, value) in arguments {
            self.path.clear();
            self.path.push(Segment::Name(name.node.as_str()));
            self.value(&value.node, name.node.as_str(), value.pos)?;
        }
        Ok(())
    }

    /// A literal, or the variable it names (given, or its default).
    fn value(&mut self, value: &'a Value, field: &'a str, pos: Pos) -> Result<(), ServerError> {
        match value {
            Value::String(s) => self.text(s, field, pos),
            Value::List(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                self.path.push(Segment::Index(i));
                self.value(item, field, pos)?;
                self.path.pop();
                Ok(())
            }),
            Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
                let inner = if is_json(field) { field } else { key.as_str() };
                self.path.push(Segment::Name(key.as_str()));
                self.text(key, field, pos)?;
                self.value(item, inner, pos)?;
                self.path.pop();
                Ok(())
            }),
            Value::Variable(name) => match self.variable(name) {
                Some(given) => self.constant(given, field, pos),
                None => Ok(()),
            },
            Value::Null | Value::Number(_) | Value::Boolean(_) | Value::Binary(_) | Value::Enum(_) => Ok(()),
        }
    }

    fn constant(&mut self, value: &'a ConstValue, field: &'a str, pos: Pos) -> Result<(), ServerError> {
        match value {
            ConstValue::String(s) => self.text(s, field, pos),
            ConstValue::List(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                self.path.push(Segment::Index(i));
                self.constant(item, field, pos)?;
                self.path.pop();
                Ok(())
            }),
            ConstValue::Object(fields) => fields.iter().try_for_each(|(key, item)| {
                let inner = if is_json(field) { field } else { key.as_str() };
                self.path.push(Segment::Name(key.as_str()));
                self.text(key, field, pos)?;
                self.constant(item, inner, pos)?;
                self.path.pop();
                Ok(())
            }),
            ConstValue::Null | ConstValue::Number(_) | ConstValue::Boolean(_) | ConstValue::Binary(_) | ConstValue::Enum(_) => Ok(()),
        }
    }

    fn variable(&self, name: &Name) -> Option<&'a ConstValue> {
        self.variables.get(name).or_else(|| {
            self.op
                .variable_definitions
                .iter()
                .find(|d| d.node.name.node == *name)
                .and_then(|d| d.node.default_value.as_ref())
                .map(|v| &v.node)
        })
    }

    fn text(&self, s: &str, field: &str, pos: Pos) -> Result<(), ServerError> {
        check_text(s, max_chars(field)).map_err(|e| self.refusal(e, pos))
    }

    fn refusal(&self, e: InputError, pos: Pos) -> ServerError {
        let field: Vec<String> = self
            .path
            .iter()
            .map(|s| match s {
                Segment::Name(n) => (*n).to_owned(),
                Segment::Index(i) => i.to_string(),
            })
            .collect();
        let mut err = ServerError::new(format!("{} {e}", field.join(".")), Some(pos));
        let ext = err.extensions.get_or_insert_with(Default::default);
        ext.set("code", "BAD_USER_INPUT");
        ext.set("field", ConstValue::List(field.into_iter().map(ConstValue::String).collect()));
        err
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use serde_json::json;

    use super::*;

    fn refusal(query: &str, operation: Option<&str>, variables: serde_json::Value) -> Option<(String, ConstValue)> {
        let doc = parse_query(query).expect("parses");
        let variables = Variables::from_json(variables);
        check(&doc, operation, &variables).err().map(|e| {
            let ext = e.extensions.expect("extensions");
            assert_eq!(ext.get("code"), Some(&ConstValue::from("BAD_USER_INPUT")));
            (e.message, ext.get("field").cloned().expect("field"))
        })
    }

    #[test]
    fn a_nul_in_a_literal_or_a_variable_deep_in_a_list_is_refused_with_its_path() {
        let (message, field) = refusal(r#"{ leads(filter: { search: "a\u0000b" }) { totalCount } }"#, None, json!({})).unwrap();
        assert_eq!(message, "filter.search must not contain a NUL character (\\u0000)");
        assert_eq!(field, ConstValue::from_json(json!(["filter", "search"])).unwrap());

        let q = "mutation($input: RecordTouchpointsInput!) { recordTouchpoints(input: $input) { recordedCount } }";
        let items = json!({ "input": { "items": [{ "type": "PAGE_VIEW" }, { "type": "PAGE_VIEW", "idempotencyKey": "k\u{0}" }] } });
        let (message, _) = refusal(q, None, items).unwrap();
        assert_eq!(message, "input.items.1.idempotencyKey must not contain a NUL character (\\u0000)");
    }

    #[test]
    fn each_field_has_its_bound_and_the_largest_allowed_passes() {
        let q = "query($s: String) { leads(filter: { search: $s }) { totalCount } }";
        assert!(refusal(q, None, json!({ "s": "x".repeat(MAX_SEARCH) })).is_none());
        let (message, _) = refusal(q, None, json!({ "s": "x".repeat(MAX_SEARCH + 1) })).unwrap();
        assert_eq!(message, "filter.search may have at most 200 characters");

        let q = "mutation($k: String) { recordTouchpoints(input: { items: [{ idempotencyKey: $k }] }) { recordedCount } }";
        assert!(refusal(q, None, json!({ "k": "k".repeat(MAX_KEY) })).is_none());
        assert!(refusal(q, None, json!({ "k": "k".repeat(1_000_000) })).is_some());
    }

    #[test]
    fn json_fields_keep_their_own_bound_for_the_names_inside() {
        let q = "mutation($f: JSON) { upsertLead(input: { customFields: $f }) { created } }";
        assert!(refusal(q, None, json!({ "f": { "email": "x".repeat(MAX_OTHER) } })).is_none());
        let (message, _) = refusal(q, None, json!({ "f": { "a\u{0}": 1 } })).unwrap();
        assert!(message.starts_with("input.customFields.a"), "{message}");
    }

    #[test]
    fn fragments_defaults_and_only_the_operation_that_runs() {
        let q = r#"query A($s: String = "a\u0000") { ...F } fragment F on Query { leads(filter: { search: $s }) { totalCount } }
                   query B { leads(filter: { search: "b\u0000" }) { totalCount } }"#;
        assert!(refusal(q, Some("A"), json!({})).is_some(), "the default");
        assert!(
            refusal(q, Some("A"), json!({ "s": "fine" })).is_none(),
            "given, the default is not used"
        );
        assert!(refusal(q, Some("B"), json!({})).is_some());
        assert!(refusal(q, Some("C"), json!({})).is_none(), "left to the schema");
    }
}
