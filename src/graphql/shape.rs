//! The size of a query document, measured in time linear in its text, before anything expands
//! it: its tokens and bracket nesting before parsing, then its fields, depth, aliases and
//! directives as they would be after every fragment spread is expanded.
//!
//! async-graphql's depth, complexity and directive checks, and its validation rules, walk a
//! document with its fragments expanded in place. A document in which each fragment spreads the
//! previous one twice expands to 2^n fields: 1 KB of text kept a core busy for 35 s before it
//! was refused. Here each fragment is measured once and its measure reused wherever it is
//! spread, so that document is refused in microseconds, and the schema only ever sees documents
//! whose expansion is bounded.
use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// What a document asks for with its fragments expanded. Counts saturate, so that a fragment
/// bomb's stay at `u64::MAX` instead of wrapping round to something small.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Fields selected, counting a fragment's once for every place it is spread.
    pub fields: u64,
    /// The deepest chain of nested fields (as async-graphql's depth limit counts them), not
    /// counting introspection (`__schema`, `__type`).
    pub depth: u64,
    pub aliases: u64,
    pub directives: u64,
    /// The most directives on one field, spread or inline fragment.
    directives_on_one: u64,
}

impl Shape {
    /// `other` selected beside `self` (in the same selection set, or another definition).
    fn and(self, other: Shape) -> Shape {
        Shape {
            fields: self.fields.saturating_add(other.fields),
            depth: self.depth.max(other.depth),
            aliases: self.aliases.saturating_add(other.aliases),
            directives: self.directives.saturating_add(other.directives),
            directives_on_one: self.directives_on_one.max(other.directives_on_one),
        }
    }

    fn directives(n: usize) -> Shape {
        let n = n as u64;
        Shape {
            directives: n,
            directives_on_one: n,
            ..Shape::default()
        }
    }
}

/// A document that cannot be measured because its fragments spread each other in a circle
/// (validation refuses it too; expanding it would never end).
#[derive(Debug, PartialEq, Eq)]
pub struct FragmentCycle(pub String);

/// A document's shape: its operations' as they would run, and the fields validation walks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measured {
    /// All operations together, fragments expanded.
    pub operations: Shape,
    /// Fields of the operations and of every fragment definition, each expanded: validation
    /// checks a fragment that no operation uses as well.
    pub validated_fields: u64,
    /// The most directives on one field, spread or inline fragment anywhere in the document.
    pub directives_on_one: u64,
}

/// Measures the document without expanding it.
pub fn measure(doc: &ExecutableDocument) -> Result<Measured, FragmentCycle> {
    let measured = measure_fragments(doc)?;
    let fragments = measured.values().fold(Shape::default(), |a, s| a.and(*s));
    let operations = doc
        .operations
        .iter()
        .map(|(_, op)| selection_set(&op.node.selection_set.node, &measured).and(Shape::directives(op.node.directives.len())))
        .fold(Shape::default(), Shape::and);
    Ok(Measured {
        operations,
        validated_fields: operations.fields.saturating_add(fragments.fields),
        directives_on_one: operations.directives_on_one.max(fragments.directives_on_one),
    })
}

/// Every fragment's shape, each measured once after the fragments it spreads. The order is
/// found with an explicit stack, since a chain of fragments can be longer than a thread's stack
/// is deep.
fn measure_fragments(doc: &ExecutableDocument) -> Result<HashMap<&str, Shape>, FragmentCycle> {
    let mut measured: HashMap<&str, Shape> = HashMap::with_capacity(doc.fragments.len());
    let mut on_path: HashMap<&str, ()> = HashMap::new();
    for root in doc.fragments.keys() {
        if measured.contains_key(root.as_str()) {
            continue;
        }
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(root.as_str(), spreads(doc, root.as_str()))];
        on_path.insert(root.as_str(), ());
        while let Some((name, pending)) = stack.last_mut() {
            match pending.pop() {
                Some(next) if measured.contains_key(next) || !doc.fragments.contains_key(next) => {}
                Some(next) if on_path.contains_key(next) => return Err(FragmentCycle(next.to_owned())),
                Some(next) => {
                    on_path.insert(next, ());
                    stack.push((next, spreads(doc, next)));
                }
                None => {
                    let name = *name;
                    let fragment = &doc.fragments[name].node;
                    let shape = selection_set(&fragment.selection_set.node, &measured).and(Shape::directives(fragment.directives.len()));
                    measured.insert(name, shape);
                    on_path.remove(name);
                    stack.pop();
                }
            }
        }
    }
    Ok(measured)
}

/// The names of the fragments that fragment `name` spreads directly.
fn spreads<'a>(doc: &'a ExecutableDocument, name: &str) -> Vec<&'a str> {
    fn walk<'a>(set: &'a SelectionSet, out: &mut Vec<&'a str>) {
        for s in &set.items {
            match &s.node {
                Selection::Field(f) => walk(&f.node.selection_set.node, out),
                Selection::InlineFragment(f) => walk(&f.node.selection_set.node, out),
                Selection::FragmentSpread(f) => out.push(f.node.fragment_name.node.as_str()),
            }
        }
    }
    let mut out = Vec::new();
    if let Some(fragment) = doc.fragments.get(name) {
        walk(&fragment.node.selection_set.node, &mut out);
    }
    out
}

/// The shape of a selection set whose spreads are all in `fragments` (an unknown fragment counts
/// as empty; validation refuses it). Recursion is bounded by the parser's nesting limit.
fn selection_set(set: &SelectionSet, fragments: &HashMap<&str, Shape>) -> Shape {
    set.items.iter().fold(Shape::default(), |acc, s| {
        let one = match &s.node {
            Selection::Field(f) => {
                let inner = selection_set(&f.node.selection_set.node, fragments);
                // Introspection nests deeper than any query of ours (graphql-js's standard
                // query: 13 levels); the field limit bounds it instead.
                let introspection = f.node.name.node.starts_with("__");
                Shape {
                    fields: inner.fields.saturating_add(1),
                    depth: if introspection { 0 } else { inner.depth + 1 },
                    aliases: inner.aliases.saturating_add(u64::from(f.node.alias.is_some())),
                    ..inner
                }
                .and(Shape::directives(f.node.directives.len()))
            }
            Selection::InlineFragment(f) => {
                selection_set(&f.node.selection_set.node, fragments).and(Shape::directives(f.node.directives.len()))
            }
            Selection::FragmentSpread(f) => fragments
                .get(f.node.fragment_name.node.as_str())
                .copied()
                .unwrap_or_default()
                .and(Shape::directives(f.node.directives.len())),
        };
        acc.and(one)
    })
}

/// What the lexer sees in a query text: its tokens (names, numbers, strings, punctuators) and
/// its deepest nesting of brackets of any kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lexed {
    pub tokens: usize,
    pub nesting: usize,
}

/// Counts tokens and nesting in one pass, stopping as soon as either passes its limit (the
/// answer is then over that limit, not exact). The count follows the GraphQL lexer closely
/// enough to bound the parser's work: whitespace, commas and comments are not tokens, a string
/// or block string is one.
pub fn lex(text: &str, max_tokens: usize, max_nesting: usize) -> Lexed {
    let bytes = text.as_bytes();
    let mut out = Lexed::default();
    let mut depth = 0_usize;
    let mut i = 0;
    while i < bytes.len() && out.tokens <= max_tokens && out.nesting <= max_nesting {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                out.nesting = out.nesting.max(depth);
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'_' | b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' => {
                while i < bytes.len() && matches!(bytes[i], b'_' | b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
        out.tokens += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use async_graphql::parser::parse_query;

    use super::*;

    /// Fragment `F{n}` spreads `F{n-1}` twice, so the operation expands to 2^n fields.
    fn fragment_bomb(n: usize) -> String {
        let mut q = format!("query {{ ...F{n} }} fragment F0 on Query {{ viewer {{ role }} }}");
        for i in 1..=n {
            write!(q, " fragment F{i} on Query {{ ...F{j} ...F{j} }}", j = i - 1).expect("writes to a string");
        }
        q
    }

    fn shape(text: &str) -> Measured {
        measure(&parse_query(text).expect("parses")).expect("no cycle")
    }

    #[test]
    fn fields_depth_aliases_and_directives_are_counted_as_expanded() {
        // The operation: viewer, role (2 fields, depth 2) and the fragment twice (2 x 3 fields,
        // depth 3, 2 x 1 alias, 2 x 1 directive); validation also walks the fragment's
        // definition (3 more fields).
        let s = shape(
            "query { viewer { role } ...L ...L } \
             fragment L on Query { l: leads(first: 1) @include(if: true) { nodes { id } } }",
        );
        assert_eq!(
            s.operations,
            Shape {
                fields: 2 + 2 * 3,
                depth: 3,
                aliases: 2,
                directives: 2,
                directives_on_one: 1,
            }
        );
        assert_eq!((s.validated_fields, s.directives_on_one), (2 + 2 * 3 + 3, 1));
    }

    #[test]
    fn a_fragment_bomb_is_measured_without_expanding_it() {
        // F26 alone expands to 2^26 x 2 fields; the definitions F0..F26 add 2 x (2^27 - 1).
        let s = shape(&fragment_bomb(26));
        assert_eq!(s.operations.fields, 1 << 27);
        assert_eq!(s.validated_fields, (1 << 27) + 2 * ((1 << 27) - 1));
        assert_eq!(s.operations.depth, 2);
        // At 200 levels the count saturates instead of wrapping.
        assert_eq!(shape(&fragment_bomb(200)).validated_fields, u64::MAX);
    }

    #[test]
    fn a_long_chain_of_fragments_does_not_use_the_thread_stack() {
        let mut q = String::from("query { ...F20000 } fragment F0 on Query { viewer { role } }");
        for i in 1..=20_000 {
            write!(q, " fragment F{i} on Query {{ ...F{} }}", i - 1).expect("writes to a string");
        }
        let s = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || shape(&q))
            .expect("spawns")
            .join()
            .expect("does not overflow");
        assert_eq!(s.operations.depth, 2);
    }

    #[test]
    fn introspection_does_not_count_towards_depth() {
        let s = shape("{ viewer { role } __schema { types { fields { type { ofType { ofType { name } } } } } } }");
        assert_eq!((s.operations.depth, s.operations.fields), (2, 9));
    }

    #[test]
    fn fragments_that_spread_each_other_in_a_circle_are_refused() {
        let doc = parse_query("query { ...A } fragment A on Query { ...B } fragment B on Query { viewer { role } ...A }").expect("parses");
        assert!(matches!(measure(&doc), Err(FragmentCycle(_))));
    }

    #[test]
    fn the_most_directives_on_one_selection() {
        let s = shape("{ __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa viewer @skip(if: false) { role } }");
        assert_eq!((s.operations.directives, s.directives_on_one), (11, 10));
    }

    #[test]
    fn tokens_and_nesting() {
        let l = lex(
            "query Q($a: [Int!]) { # a comment, not tokens\n x(a: \"s, t { \\\" \", b: \"\"\"block \" \"\"\") { ...F } }",
            100,
            100,
        );
        // query Q ( $ a : [ Int ! ] ) { x ( a : "..." b : """...""" ) { ... F } }
        assert_eq!(l, Lexed { tokens: 26, nesting: 2 });
        assert_eq!(lex("{ a }", 100, 100), Lexed { tokens: 3, nesting: 1 });
        // Stops once over a limit.
        assert_eq!(lex(&"[".repeat(1_000_000), 10, 1_000_000).tokens, 11);
        assert_eq!(lex(&"[".repeat(1_000_000), 1_000_000, 64).nesting, 65);
    }
}
