//! Reading a selection set as GraphQL's CollectFields does (spec 6.3.2), for the planner.
use std::collections::HashMap;

use async_graphql::parser::types::{Directive, Field, FragmentDefinition, Selection, SelectionSet, VariableDefinition};
use async_graphql::registry::Registry;
use async_graphql::{Context, Name, Positioned, Value, Variables};

/// What a selection set is read against: the document's fragments, the request's variables
/// and the schema (for fragment type conditions on interfaces).
pub struct Env<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    variables: &'a Variables,
    definitions: &'a [Positioned<VariableDefinition>],
    registry: &'a Registry,
}

/// One response key of a selection set: the first field under that key, and the selection sets
/// of every field under it, merged in document order.
pub struct Sel<'a> {
    pub key: &'a Name,
    pub field: &'a Field,
    pub sets: Vec<&'a SelectionSet>,
}

impl<'a> Env<'a> {
    pub fn of(ctx: &'a Context<'a>) -> Self {
        Env {
            fragments: &ctx.query_env.fragments,
            variables: &ctx.query_env.variables,
            definitions: &ctx.query_env.operation.node.variable_definitions,
            registry: &ctx.schema_env.registry,
        }
    }

    /// The fields that `sets` select on an object of type `type_name`, in order. `None` when
    /// the selection is not plannable (a directive other than `@skip`/`@include`, a variable
    /// that is not given, one response key for two different fields).
    pub fn collect(&self, sets: &[&'a SelectionSet], type_name: &str) -> Option<Vec<Sel<'a>>> {
        let mut out = Vec::new();
        for set in sets {
            self.collect_into(set, type_name, &mut out)?;
        }
        Some(out)
    }

    /// The fields selected below `sel` on an object of type `type_name`, merged over every field
    /// under its response key, as async-graphql 7.2 answers them: when the first of those fields
    /// selects nothing (all left out by `@skip`/`@include`), its value is null and the later
    /// fields' selections are not merged into it (the generic path writes an empty object as
    /// null, and merges nothing into a null). Empty: the object is written as null.
    pub fn below(&self, sel: &Sel<'a>, type_name: &str) -> Option<Vec<Sel<'a>>> {
        if self.collect(&sel.sets[..1], type_name)?.is_empty() {
            return Some(Vec::new());
        }
        self.collect(&sel.sets, type_name)
    }

    fn collect_into(&self, set: &'a SelectionSet, type_name: &str, out: &mut Vec<Sel<'a>>) -> Option<()> {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    if !self.included(&field.node.directives)? {
                        continue;
                    }
                    let field = &field.node;
                    let key = &field.response_key().node;
                    match out.iter_mut().find(|s| s.key == key) {
                        Some(s) if s.field.name.node == field.name.node && s.field.arguments == field.arguments => {
                            s.sets.push(&field.selection_set.node);
                        }
                        // Validation rejects such a document; the generic path reports it.
                        Some(_) => return None,
                        None => out.push(Sel {
                            key,
                            field,
                            sets: vec![&field.selection_set.node],
                        }),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if !self.included(&spread.node.directives)? {
                        continue;
                    }
                    let fragment = self.fragments.get(&spread.node.fragment_name.node)?;
                    if self.applies(&fragment.node.type_condition.node.on.node, type_name) {
                        self.collect_into(&fragment.node.selection_set.node, type_name, out)?;
                    }
                }
                Selection::InlineFragment(inline) => {
                    if !self.included(&inline.node.directives)? {
                        continue;
                    }
                    let applies = match &inline.node.type_condition {
                        Some(c) => self.applies(&c.node.on.node, type_name),
                        None => true,
                    };
                    if applies {
                        self.collect_into(&inline.node.selection_set.node, type_name, out)?;
                    }
                }
            }
        }
        Some(())
    }

    /// Whether a fragment on `condition` applies to an object of type `type_name`: the same type,
    /// or an interface or union that the type belongs to.
    fn applies(&self, condition: &str, type_name: &str) -> bool {
        condition == type_name || self.registry.types.get(condition).is_some_and(|t| t.is_possible_type(type_name))
    }

    /// Whether `@skip` and `@include` keep the selection; `None` for any other directive.
    fn included(&self, directives: &[Positioned<Directive>]) -> Option<bool> {
        let mut keep = true;
        for d in directives {
            let skip = match d.node.name.node.as_str() {
                "skip" => true,
                "include" => false,
                _ => return None,
            };
            let Value::Boolean(condition) = self.value(&d.node.get_argument("if")?.node)? else {
                return None;
            };
            if condition == skip {
                keep = false;
            }
        }
        Some(keep)
    }

    /// An argument's value with its variables filled in (a variable's default when the request
    /// does not give it). `None` for a variable that is neither given nor defaulted.
    pub fn value(&self, value: &async_graphql_value::Value) -> Option<Value> {
        value
            .clone()
            .into_const_with(|name| {
                self.definitions
                    .iter()
                    .find(|d| d.node.name.node == name)
                    .and_then(|d| self.variables.get(&d.node.name.node).or_else(|| d.node.default_value()))
                    .cloned()
                    .ok_or(())
            })
            .ok()
    }

    /// The value of `field`'s argument `name`: `Some(None)` when absent, `None` when it cannot
    /// be read.
    pub fn argument(&self, field: &Field, name: &str) -> Option<Option<Value>> {
        match field.get_argument(name) {
            None => Some(None),
            Some(v) => self.value(&v.node).map(Some),
        }
    }
}
