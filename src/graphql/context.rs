//! What every resolver needs from the request: who is calling, and the database.
use async_graphql::Context;

use crate::auth::Principal;
use crate::db::Db;
use crate::domain::vocab::Action;
use crate::error::AppError;
use crate::graphql::errors::gql_error;

pub trait ContextExt {
    /// The caller; UNAUTHENTICATED without a valid key.
    fn principal(&self) -> async_graphql::Result<Principal>;
    /// The caller, if allowed to do `action`; FORBIDDEN otherwise.
    fn allowed(&self, action: Action) -> async_graphql::Result<Principal>;
    fn db(&self) -> &Db;
}

impl ContextExt for Context<'_> {
    fn principal(&self) -> async_graphql::Result<Principal> {
        self.data_opt::<Principal>()
            .copied()
            .ok_or_else(|| gql_error(AppError::Unauthenticated))
    }

    fn allowed(&self, action: Action) -> async_graphql::Result<Principal> {
        let p = self.principal()?;
        if p.role.allows(action) {
            Ok(p)
        } else {
            Err(gql_error(AppError::Forbidden(format!("the {} role may not do this", p.role))))
        }
    }

    fn db(&self) -> &Db {
        self.data_unchecked::<Db>()
    }
}
