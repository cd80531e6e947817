//! Turning our errors into GraphQL errors and `userErrors`.
use async_graphql::{ErrorExtensions, SimpleObject};

use crate::error::{AppError, FieldError, ServiceError};

/// A problem with the input that the end user can fix; a payload with any wrote nothing.
#[derive(SimpleObject, Debug, Clone)]
pub struct UserError {
    /// Path to the input field, e.g. ["input", "items", "3", "occurredAt"].
    pub field: Vec<String>,
    /// What is wrong, in English, for a person (show it beside the field); match on `code`,
    /// not on this text, which may change.
    pub message: String,
    /// Stable machine-readable code, e.g. INVALID, REQUIRED, TAKEN, NOT_FOUND, CONFLICT.
    pub code: String,
    /// For CONFLICT on `expectedVersion`: the record's version now (null otherwise).
    pub current_version: Option<i64>,
}

impl From<FieldError> for UserError {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.field,
            message: e.message,
            code: e.code.to_owned(),
            current_version: e.current_version,
        }
    }
}

/// A request-level error with `extensions.code`, for refusals before or around execution (limits,
/// timeouts, the HTTP layer), where no resolver's error type applies.
pub fn coded(code: &'static str, message: impl Into<String>) -> async_graphql::ServerError {
    let mut e = async_graphql::ServerError::new(message, None);
    e.extensions.get_or_insert_with(Default::default).set("code", code);
    e
}

/// Every error that reaches a client goes through here.
pub fn gql_error(err: AppError) -> async_graphql::Error {
    if let AppError::Internal(detail) = &err {
        let trace_id = trace_id();
        tracing::error!(%trace_id, %detail, "internal error");
        return async_graphql::Error::new(format!("internal error (trace id {trace_id})")).extend_with(|_, e| {
            e.set("code", "INTERNAL_SERVER_ERROR");
            e.set("traceId", trace_id.clone());
        });
    }
    let code = err.code();
    async_graphql::Error::new(err.to_string()).extend_with(|_, e| e.set("code", code))
}

fn trace_id() -> String {
    crate::auth::random_hex(8)
}

pub trait IntoGql<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T, E: Into<AppError>> IntoGql<T> for Result<T, E> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| gql_error(e.into()))
    }
}

/// A use case's result split for a payload: `Ok(Some(value))`, or `userErrors`, or a top-level error.
pub fn split<T>(result: Result<T, ServiceError>) -> async_graphql::Result<(Option<T>, Vec<UserError>)> {
    match result {
        Ok(v) => Ok((Some(v), Vec::new())),
        Err(ServiceError::Invalid(errors)) => Ok((None, errors.into_iter().map(UserError::from).collect())),
        Err(ServiceError::App(e)) => Err(gql_error(e)),
    }
}

/// A query's result: its value, or a top-level error. Invalid arguments become one
/// BAD_USER_INPUT error whose `extensions.fields` lists each field's `{field, code, message}`.
pub fn query_result<T>(result: Result<T, ServiceError>) -> async_graphql::Result<T> {
    match result {
        Ok(v) => Ok(v),
        Err(ServiceError::App(e)) => Err(gql_error(e)),
        Err(ServiceError::Invalid(errors)) => {
            let message = errors
                .iter()
                .map(|e| format!("{}: {}", e.field.join("."), e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let fields: Vec<async_graphql::Value> = errors
                .into_iter()
                .map(|e| {
                    let mut m = async_graphql::indexmap::IndexMap::new();
                    m.insert(async_graphql::Name::new("field"), async_graphql::Value::from(e.field.join(".")));
                    m.insert(async_graphql::Name::new("code"), async_graphql::Value::from(e.code));
                    m.insert(async_graphql::Name::new("message"), async_graphql::Value::from(e.message));
                    async_graphql::Value::Object(m)
                })
                .collect();
            let mut err = gql_error(AppError::BadInput(message));
            err.extensions
                .get_or_insert_with(async_graphql::ErrorExtensionValues::default)
                .set("fields", async_graphql::Value::List(fields));
            Err(err)
        }
    }
}
