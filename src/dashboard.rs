//! The dashboard: static files under `web/`, embedded in the binary. `index.html`
//! refers to its assets by fingerprinted names (`app.<hash>.js`), so assets are cached
//! for a year and a new build is picked up at once; the modules `app.js` imports
//! (`common.js`, …) keep their names and are revalidated. Everything carries a strong
//! ETag and answers `If-None-Match` with 304. No file holds data: the page asks the API,
//! which checks access.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "README.md"]
#[exclude = "vendor/*"]
struct Assets;

/// Assets that `index.html` names through `{{file}}` placeholders.
const FINGERPRINTED: &[&str] = &["app.js", "style.css"];

const LONG_CACHE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

fn fingerprint(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..6])
}

fn fingerprinted_name(file: &str, hash: &str) -> String {
    match file.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{file}.{hash}"),
    }
}

/// `index.html` with its placeholders replaced by fingerprinted asset paths.
static INDEX: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let template = Assets::get("index.html").expect("web/index.html is embedded");
    let mut html = String::from_utf8_lossy(&template.data).into_owned();
    for file in FINGERPRINTED {
        let asset = Assets::get(file).expect("fingerprinted assets are embedded");
        let path = format!(
            "/dashboard/assets/{}",
            fingerprinted_name(file, &fingerprint(&asset.data))
        );
        html = html.replace(&format!("{{{{{file}}}}}"), &path);
    }
    html.into_bytes()
});

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/dashboard") }))
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/assets/{file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    respond(
        &headers,
        INDEX.clone(),
        "text/html; charset=utf-8",
        REVALIDATE,
    )
}

async fn asset(Path(requested): Path<String>, headers: HeaderMap) -> Response {
    // `app.<hash>.js` is `app.js` if the hash is current.
    for file in FINGERPRINTED {
        if let Some(asset) = Assets::get(file)
            && requested == fingerprinted_name(file, &fingerprint(&asset.data))
        {
            return respond(
                &headers,
                asset.data.into_owned(),
                content_type(file),
                LONG_CACHE,
            );
        }
    }
    match Assets::get(&requested) {
        Some(asset) => respond(
            &headers,
            asset.data.into_owned(),
            content_type(&requested),
            REVALIDATE,
        ),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

fn respond(
    request: &HeaderMap,
    body: Vec<u8>,
    content_type: &'static str,
    cache: &'static str,
) -> Response {
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(&body)));
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a valid header"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // No other site may frame the dashboard (clickjacking the Replay button); the
    // CSP says so to current browsers, X-Frame-Options to old ones.
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    );
    (headers, body).into_response()
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "application/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_its_assets_by_fingerprint() {
        let html = String::from_utf8(INDEX.clone()).unwrap();
        assert!(!html.contains("{{"), "every placeholder replaced");
        let js = Assets::get("app.js").unwrap();
        assert!(html.contains(&format!(
            "/dashboard/assets/app.{}.js",
            fingerprint(&js.data)
        )));
    }
}
