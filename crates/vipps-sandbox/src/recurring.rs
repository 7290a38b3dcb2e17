//! Placeholder: being written.

use axum::Router;

use crate::state::AppState;

/// The store of this API.
#[derive(Debug, Default)]
pub struct Store {}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
