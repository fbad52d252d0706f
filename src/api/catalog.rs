//! `GET /api/webhooks/events/types`: the event catalog grouped by category.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use super::{AppState, envelope};
use crate::domain::catalog::{self, Category};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/webhooks/events/types", get(types))
}

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
