//! Serving a notification log over HTTP (feature `http`, on axum).
//!
//! `GET <path>/<section_id>/` (the trailing slash is optional) answers with the section's JSON
//! ([`super::NotificationLogView`]). Archived sections never change: they are sent with
//! `Cache-Control: public, max-age=31536000, immutable` and an `ETag` (a request with a
//! matching `If-None-Match` gets `304 Not Modified`); other sections with
//! `Cache-Control: no-store`. A malformed section id is `400 Bad Request`, an unknown path
//! `404 Not Found`, both with a message in the body; a failing store is `503`.
//!
//! ```no_run
//! # async fn demo(app: es_runtime::application::Application) -> es_runtime::Result<()> {
//! use es_runtime::notify::{http, NotificationLogView, RecordNotificationLog};
//! use std::sync::Arc;
//! let view = NotificationLogView::new(Arc::new(RecordNotificationLog::for_application(&app, 20)?));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await
//!     .map_err(|e| es_runtime::Error::Operational(e.to_string()))?;
//! http::serve(listener, http::router("/notifications", view)).await
//! # }
//! ```

use super::view::NotificationLogView;
use crate::error::{Error, Result};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::sync::Arc;

/// `Cache-Control` of archived sections.
pub const ARCHIVED_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of sections that can still change.
pub const CURRENT_CACHE_CONTROL: &str = "no-store";

/// A router serving `view` under `path` (`""` or `"/"` for the root, otherwise like
/// `"/notifications"`).
pub fn router<I: Serialize + Send + 'static>(path: &str, view: NotificationLogView<I>) -> Router {
    let inner = Router::new()
        .route("/{section_id}", get(section::<I>))
        .route("/{section_id}/", get(section::<I>))
        .with_state(Arc::new(view));
    let path = path.trim_end_matches('/');
    let app = if path.is_empty() {
        inner
    } else {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Router::new().nest(&path, inner)
    };
    app.fallback(not_found)
}

/// Serves `router` on `listener` until the task is dropped or the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> Result<()> {
    axum::serve(listener, router)
        .await
        .map_err(|e| Error::Operational(format!("HTTP server: {e}")))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found: GET <log path>/<section id>/ where the section id is \"current\" or \"first,last\"\n",
    )
        .into_response()
}

fn etag(body: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body.as_bytes());
    format!("\"{}\"", crate::domain::integrity::hex(&digest[..16]))
}

async fn section<I: Serialize + Send + 'static>(
    State(view): State<Arc<NotificationLogView<I>>>,
    Path(section_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let span = crate::telemetry::span!(INFO, "es.http.serve", section_id = %section_id);
    match crate::telemetry::timed(span, view.present_section(&section_id)).await {
        Ok((body, archived)) => {
            let json = HeaderValue::from_static("application/json");
            if !archived {
                return (
                    [
                        (header::CONTENT_TYPE, json),
                        (
                            header::CACHE_CONTROL,
                            HeaderValue::from_static(CURRENT_CACHE_CONTROL),
                        ),
                    ],
                    body,
                )
                    .into_response();
            }
            let tag = etag(&body);
            let cache = HeaderValue::from_static(ARCHIVED_CACHE_CONTROL);
            let tag_value = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""));
            let matches = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
            if matches {
                return (
                    StatusCode::NOT_MODIFIED,
                    [(header::ETAG, tag_value), (header::CACHE_CONTROL, cache)],
                )
                    .into_response();
            }
            (
                [
                    (header::CONTENT_TYPE, json),
                    (header::CACHE_CONTROL, cache),
                    (header::ETAG, tag_value),
                ],
                body,
            )
                .into_response()
        }
        Err(Error::BadSection(m)) => {
            (StatusCode::BAD_REQUEST, format!("bad section: {m}\n")).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}
