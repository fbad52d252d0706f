//! `GET /api/webhooks/events/types`: the event catalog grouped by category.

use axum::Json;
use serde_json::{Value, json};

use super::openapi::Envelope;
use super::{AppState, envelope};
use crate::domain::catalog::{self, Category};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(types))
}

#[utoipa::path(get, path = "/api/webhooks/events/types", tag = "events",
    responses((status = 200, description = "Event types by category, with descriptions and actions", body = Envelope)))]
async fn types() -> Json<Value> {
    let categories: Vec<Value> = Category::ALL
        .iter()
        .map(|category| {
            let events: Vec<_> = catalog::all()
                .iter()
                .filter(|k| k.category == *category)
                .collect();
            json!({"category": category, "title": category.title(), "events": events})
        })
        .collect();
    envelope::ok(json!({"total": catalog::all().len(), "categories": categories}))
}
