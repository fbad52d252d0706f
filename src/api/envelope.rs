//! The success envelopes: `{"success":true,"data":…}`, and for lists a
//! `pagination` object beside `data`.

use axum::Json;
use serde::Serialize;
use serde_json::{Value, json};

pub fn ok<T: Serialize>(data: T) -> Json<Value> {
    Json(json!({"success": true, "data": data}))
}

pub fn paginated<T: Serialize>(data: T, total: u64, limit: usize, offset: usize) -> Json<Value> {
    Json(json!({
        "success": true,
        "data": data,
        "pagination": {"total": total, "limit": limit, "offset": offset},
    }))
}
