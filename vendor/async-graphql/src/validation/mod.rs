#[cfg(test)]
#[macro_use]
mod test_harness;

mod rules;
mod suggestion;
mod utils;
mod visitor;
mod visitors;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

pub use visitor::VisitorContext;
use visitor::{RuleError, VisitorNil, visit};

use crate::{
    CacheControl, ServerError, Variables, parser::types::ExecutableDocument, registry::Registry,
};

/// Validation results.
#[derive(Debug, Copy, Clone)]
pub struct ValidationResult {
    /// Cache control
    pub cache_control: CacheControl,

    /// Query complexity
    pub complexity: usize,

    /// Query depth
    pub depth: usize,
}

/// Validation mode
#[derive(Copy, Clone, Debug)]
pub enum ValidationMode {
    /// Execute all validation rules.
    Strict,

    /// The executor itself also has error handling, so it can improve
    /// performance, but it can lose some error messages.
    Fast,
}

// closedloop patch (vendor/README.md): the rules that do not read the variables run once per
// query text and operation name; the others (argument values, complexity) run per request.

/// What the rules that do not read the variables found for one document and operation.
struct Static {
    errors: Vec<RuleError>,
    cache_control: CacheControl,
    depth: usize,
}

/// The variable-independent validation of recent query texts, bounded by the bytes of their
/// keys (cleared when full).
#[derive(Default)]
pub(crate) struct ValidationCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    /// By query text, then by operation name (a text has one entry per operation run).
    entries: HashMap<String, Vec<(Option<String>, Arc<Static>)>>,
    bytes: usize,
}

const CACHE_BYTES: usize = 4 << 20;

impl ValidationCache {
    fn get(&self, text: &str, operation_name: Option<&str>) -> Option<Arc<Static>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let found = inner.entries.get(text)?;
        found
            .iter()
            .find(|(name, _)| name.as_deref() == operation_name)
            .map(|(_, found)| found.clone())
    }

    fn put(&self, text: &str, operation_name: Option<&str>, found: Arc<Static>) {
        let size = text.len() + operation_name.map_or(0, str::len);
        if size > CACHE_BYTES {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.bytes + size > CACHE_BYTES {
            inner.entries.clear();
            inner.bytes = 0;
        }
        let ops = inner.entries.entry(text.to_owned()).or_default();
        if ops.iter().any(|(name, _)| name.as_deref() == operation_name) {
            return;
        }
        ops.push((operation_name.map(str::to_owned), found));
        inner.bytes += size;
    }
}

/// The validation rules (7.2.1's `check_rules`), with the findings of those that do not read
/// the variables taken from `cache` when it holds them for its query text (the text `doc` was
/// parsed from).
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_rules_cached(
    cache: Option<(&ValidationCache, &str)>,
    registry: &Registry,
    doc: &ExecutableDocument,
    variables: Option<&Variables>,
    operation_name: Option<&str>,
    mode: ValidationMode,
    limit_complexity: Option<usize>,
    limit_depth: Option<usize>,
) -> Result<ValidationResult, Vec<ServerError>> {
    let cached = cache.and_then(|(cache, text)| cache.get(text, operation_name));
    let found = match cached {
        Some(found) => found,
        None => {
            let found = Arc::new(check_static(registry, doc, operation_name, mode));
            if let Some((cache, text)) = cache {
                cache.put(text, operation_name, found.clone());
            }
            found
        }
    };

    // The rules that read the variables.
    let mut complexity = 0;
    let mut ctx = VisitorContext::new(registry, doc, variables, operation_name);
    match mode {
        ValidationMode::Strict => {
            let mut visitor = VisitorNil
                .with(rules::ArgumentsOfCorrectType::default())
                .with(visitors::ComplexityCalculate::new(&mut complexity));
            visit(&mut visitor, &mut ctx, doc);
        }
        ValidationMode::Fast => {
            let mut visitor = VisitorNil.with(visitors::ComplexityCalculate::new(&mut complexity));
            visit(&mut visitor, &mut ctx, doc);
        }
    }
    let request_errors = ctx.errors;
    let depth = found.depth;

    // check limit
    if let Some(limit_complexity) = limit_complexity
        && complexity > limit_complexity
    {
        return Err(vec![ServerError::new("Query is too complex.", None)]);
    }

    if let Some(limit_depth) = limit_depth
        && depth > limit_depth
    {
        return Err(vec![ServerError::new("Query is nested too deep.", None)]);
    }

    if !found.errors.is_empty() || !request_errors.is_empty() {
        let errors = found.errors.iter().cloned().chain(request_errors);
        return Err(errors.map(Into::into).collect());
    }

    Ok(ValidationResult {
        cache_control: found.cache_control,
        complexity,
        depth,
    })
}

/// The rules and measures that do not read the variables (run without them).
fn check_static(
    registry: &Registry,
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    mode: ValidationMode,
) -> Static {
    let mut cache_control = CacheControl::default();
    let mut depth = 0;

    let mut ctx = VisitorContext::new(registry, doc, None, operation_name);
    match mode {
        ValidationMode::Strict => {
            let mut visitor = VisitorNil
                .with(rules::DefaultValuesOfCorrectType)
                .with(rules::FieldsOnCorrectType)
                .with(rules::FragmentsOnCompositeTypes)
                .with(rules::KnownArgumentNames::default())
                .with(rules::NoFragmentCycles::default())
                .with(rules::KnownFragmentNames)
                .with(rules::KnownTypeNames)
                .with(rules::NoUndefinedVariables::default())
                .with(rules::NoUnusedFragments::default())
                .with(rules::NoUnusedVariables::default())
                .with(rules::UniqueArgumentNames::default())
                .with(rules::UniqueVariableNames::default())
                .with(rules::VariablesAreInputTypes)
                .with(rules::VariableInAllowedPosition::default())
                .with(rules::ScalarLeafs)
                .with(rules::PossibleFragmentSpreads::default())
                .with(rules::ProvidedNonNullArguments)
                .with(rules::KnownDirectives::default())
                .with(rules::DirectivesUnique)
                .with(rules::OverlappingFieldsCanBeMerged)
                .with(rules::UploadFile);
            visit(&mut visitor, &mut ctx, doc);

            let mut visitor = VisitorNil
                .with(visitors::CacheControlCalculate {
                    cache_control: &mut cache_control,
                })
                .with(visitors::DepthCalculate::new(&mut depth));
            visit(&mut visitor, &mut ctx, doc);
        }
        ValidationMode::Fast => {
            let mut visitor = VisitorNil
                .with(rules::NoFragmentCycles::default())
                .with(rules::UploadFile)
                .with(visitors::CacheControlCalculate {
                    cache_control: &mut cache_control,
                })
                .with(visitors::DepthCalculate::new(&mut depth));
            visit(&mut visitor, &mut ctx, doc);
        }
    }
    Static {
        errors: ctx.errors,
        cache_control,
        depth,
    }
}
