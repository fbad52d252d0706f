//! Scoped API tokens: `POST /api/tokens` (the token is in the answer, once),
//! `GET /api/tokens`, `DELETE /api/tokens/{name}`. Admin tokens only (see
//! `access::needed_scope`). The work is `tokens`'s; this is its HTTP face.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::body::{Expected, JsonObject};
use super::openapi::ErrorEnvelope;
use super::{ApiError, AppState, envelope};
use crate::domain::{ErrorCode, timestamp};
use crate::tokens::{TokenError, TokenRecord, TokenRequest};

impl Expected for TokenRequest {
    const EXPECTED: &'static str = "{name, scope: read|write|admin, organizations?, repositories?}";
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        let message = error.to_string();
        match error {
            TokenError::Invalid(_) => Self::new(ErrorCode::InvalidToken, message),
            TokenError::Exists(_) => Self::new(ErrorCode::TokenExists, message),
            TokenError::NotFound(_) => Self::not_found(message),
            TokenError::Store(error) => error.into(),
        }
    }
}

/// A new token's request.
#[derive(ToSchema)]
#[allow(dead_code)] // the schema of `TokenRequest`, which `tokens` owns
struct NewToken {
    /// 1 to 64 letters, digits, `.`, `_` or `-`.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", example = "ci-reader")]
    name: String,
    #[schema(inline)]
    scope: ScopeName,
    /// Organizations the token is limited to.
    #[schema(example = json!(["octo-org"]))]
    organizations: Option<Vec<String>>,
    /// Repositories (`owner/name`) the token is limited to.
    repositories: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ScopeName {
    Read,
    Write,
    Admin,
}

/// A token as listed: never the token itself.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TokenView {
    name: String,
    #[schema(inline)]
    scope: ScopeName,
    organizations: Vec<String>,
    repositories: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct TokenList {
    success: bool,
    data: Vec<TokenView>,
}

/// A new token: the view plus `token`, shown this once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedToken {
    name: String,
    #[schema(inline)]
    scope: ScopeName,
    organizations: Vec<String>,
    repositories: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
    /// The bearer token. Only its SHA-256 is kept: it cannot be shown again.
    token: String,
}

#[derive(Serialize, ToSchema)]
struct CreatedEnvelope {
    success: bool,
    data: CreatedToken,
}

fn view(record: &TokenRecord) -> Value {
    json!({
        "name": record.name,
        "scope": record.scope.as_str(),
        "organizations": record.organizations,
        "repositories": record.repositories,
        "createdAt": timestamp::to_rfc3339(record.created_at_ms),
        "lastUsedAt": record.last_used_ms.map(timestamp::to_rfc3339),
    })
}

#[utoipa::path(get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, description = "Every scoped token by name, with its last use (never the token)", body = TokenList)))]
async fn list(State(state): State<AppState>) -> Json<Value> {
    let all: Vec<Value> = state.tokens.list().iter().map(view).collect();
    envelope::ok(all)
}

#[utoipa::path(post, path = "/api/tokens", tag = "tokens",
    request_body = NewToken,
    responses((status = 201, description = "The token, in `token`: shown this once", body = CreatedEnvelope),
        (status = 400, description = "A bad name, scope, organization or repository (the message names it)", body = ErrorEnvelope),
        (status = 409, description = "A token with that name exists", body = ErrorEnvelope)))]
async fn create(
    State(state): State<AppState>,
    JsonObject(request): JsonObject<TokenRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (token, record) = state.tokens.create(request).await?;
    tracing::info!(name = %record.name, scope = record.scope.as_str(), "API token created");
    let mut answer = view(&record);
    answer["token"] = token.into();
    Ok((StatusCode::CREATED, envelope::ok(answer)))
}

#[utoipa::path(delete, path = "/api/tokens/{name}", tag = "tokens",
    params(("name" = String, Path, description = "The token's name")),
    responses((status = 200, description = "Revoked: refused from the next request on, its Socket.IO connections closed", body = super::openapi::Envelope),
        (status = 404, description = "No such token", body = ErrorEnvelope)))]
async fn revoke(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = path?;
    state.tokens.revoke(&name).await?;
    // Its open Socket.IO connections go at once, not at their next reconnect.
    let disconnected = crate::realtime::disconnect_token(&state.io, &state.hub, &name);
    tracing::info!(%name, disconnected, "API token revoked");
    Ok(envelope::ok(json!({ "revoked": name })))
}
