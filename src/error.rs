//! Errors at the edge.
//!
//! Policy: what the *end user* can fix is a [`FieldError`] returned in a payload's `userErrors`;
//! what the *caller* must fix is an [`AppError`] with a stable code (`extensions.code`).
//! Internal errors are logged with a trace id and shown as "internal error": database messages,
//! SQL and file paths never reach a client.
use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("authentication required: send `Authorization: Bearer <api key>`")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Conflict(String),
    /// A change cursor older than the change feed's retention.
    #[error("{0}")]
    CursorExpired(String),
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadInput(_) => "BAD_USER_INPUT",
            AppError::Conflict(_) => "CONFLICT",
            AppError::CursorExpired(_) => "CURSOR_EXPIRED",
            AppError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        AppError::Internal(err.to_string())
    }

    pub fn not_found(what: &str) -> Self {
        AppError::NotFound(format!("{what} not found"))
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if is_unique_violation(&err) {
            return AppError::Conflict("the record was changed concurrently; retry the request".into());
        }
        AppError::Internal(err.to_string())
    }
}

/// Whether a database error is a unique-constraint violation (SQLite and PostgreSQL).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// A problem the end user can fix, reported in a mutation payload's `userErrors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path to the input field, e.g. `["input", "items", "3", "occurredAt"]`.
    pub field: Vec<String>,
    pub message: String,
    pub code: &'static str,
    /// CONFLICT of an `expectedVersion`: the record's version now.
    pub current_version: Option<i64>,
}

impl FieldError {
    pub fn new(field: &[&str], code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.iter().map(|s| (*s).to_owned()).collect(),
            message: message.into(),
            code,
            current_version: None,
        }
    }
}

/// The outcome of a use case that failed: fixable input, or an error of the request itself.
#[derive(Debug)]
pub enum ServiceError {
    Invalid(Vec<FieldError>),
    App(AppError),
}

impl ServiceError {
    pub fn invalid(field: &[&str], code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError::new(field, code, message)])
    }

    /// An `expectedVersion` that is not the record's version (`current`): CONFLICT, with the
    /// current version, so that a sync reads the record again instead of overwriting it.
    pub fn stale(what: &str, current: i64) -> Self {
        let mut e = FieldError::new(
            &["input", "expectedVersion"],
            "CONFLICT",
            format!("the {what} changed meanwhile: it is at version {current}; read it again and retry"),
        );
        e.current_version = Some(current);
        ServiceError::Invalid(vec![e])
    }

    /// Refuses a write whose `expected` version is not `current` (no expectation: any).
    pub fn check_version(what: &str, expected: Option<i64>, current: i64) -> Result<(), Self> {
        match expected {
            Some(v) if v != current => Err(Self::stale(what, current)),
            _ => Ok(()),
        }
    }
}

impl From<AppError> for ServiceError {
    fn from(err: AppError) -> Self {
        ServiceError::App(err)
    }
}

impl From<DbErr> for ServiceError {
    fn from(err: DbErr) -> Self {
        ServiceError::App(err.into())
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Accumulates field errors so that one response names all of them.
#[derive(Debug, Default)]
pub struct Validator {
    pub errors: Vec<FieldError>,
}

impl Validator {
    pub fn push(&mut self, field: &[&str], code: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, code, message));
    }

    pub fn push_owned(&mut self, field: Vec<String>, code: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError {
            current_version: None,
            field,
            message: message.into(),
            code,
        });
    }

    pub fn finish(self) -> ServiceResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(self.errors))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}
