//! The success envelopes: `{"success":true,"data":…}`, and for lists a
//! `pagination` object beside `data`.

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
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

/// The success envelope around data already written as JSON text (an answer built
/// from pieces kept as text, which a `Value` would copy and write again).
pub struct OkText(String);

/// `data` must be one JSON value.
pub fn ok_text(data: String) -> OkText {
    OkText(data)
}

impl IntoResponse for OkText {
    fn into_response(self) -> Response {
        let mut body = String::with_capacity(self.0.len() + 32);
        body.push_str("{\"data\":");
        body.push_str(&self.0);
        body.push_str(",\"success\":true}");
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
