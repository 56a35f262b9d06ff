//! The remote notification log (feature `http`): sections fetched from a server.

use super::section::{Section, SectionId};
use super::view::decode_section;
use super::NotificationLog;
use crate::error::{Error, Result};
use crate::record::Notification;
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::header;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::time::Duration;

/// A notification log served over HTTP by [`super::http`] or by the reference library's
/// `NotificationLogView`: `GET <base_url>/<section_id>/`.
///
/// Used like a local log (a [`super::NotificationLogReader`] reads it unchanged). A failed
/// connection, a timeout or a server error is [`Error::Operational`]; a `400`/`404` answer
/// or a body that is not a section is [`Error::BadSection`], and so is a body longer than
/// [`RemoteNotificationLog::with_max_body`] (16 MiB by default): it is refused from its
/// `Content-Length`, or as soon as that many bytes have arrived, so a server cannot make the
/// reader hold more than that in memory.
///
/// ```no_run
/// # async fn demo() -> es_runtime::Result<()> {
/// use es_runtime::notify::{NotificationLogReader, RemoteNotificationLog};
/// let log: RemoteNotificationLog = RemoteNotificationLog::new("http://127.0.0.1:8080/notifications")?;
/// let mut reader = NotificationLogReader::new(std::sync::Arc::new(log));
/// let notifications = reader.read_all().await?;
/// # let _ = notifications; Ok(()) }
/// ```
pub struct RemoteNotificationLog<I = Notification> {
    base_url: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
    max_body: usize,
    _i: PhantomData<fn() -> I>,
}

/// The default of [`RemoteNotificationLog::with_max_body`]: 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

impl<I> std::fmt::Debug for RemoteNotificationLog<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteNotificationLog")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl<I> RemoteNotificationLog<I> {
    /// The log at `base_url` (`http://host:port/path`; plain HTTP). Requests time out after
    /// 30 seconds.
    pub fn new(base_url: &str) -> Result<Self> {
        let base = base_url.trim_end_matches('/');
        let uri: hyper::Uri = base
            .parse()
            .map_err(|e| Error::Configuration(format!("notification log URL {base_url:?}: {e}")))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(Error::Configuration(format!(
                "notification log URL {base_url:?} must be http://host[:port][/path]"
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        Ok(RemoteNotificationLog {
            base_url: base.to_string(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(30),
            max_body: DEFAULT_MAX_BODY,
            _i: PhantomData,
        })
    }

    /// Sets the time limit of each request.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the size limit of a response body in bytes ([`DEFAULT_MAX_BODY`] by default): a
    /// longer body is [`Error::BadSection`], and no more of it is read.
    ///
    /// ```
    /// use es_runtime::notify::RemoteNotificationLog;
    /// let log: RemoteNotificationLog =
    ///     RemoteNotificationLog::new("http://127.0.0.1:8080/notifications")?.with_max_body(1 << 20);
    /// # let _ = log; Ok::<(), es_runtime::Error>(())
    /// ```
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The URL of a section.
    pub fn section_url(&self, section_id: &str) -> String {
        format!("{}/{}/", self.base_url, section_id)
    }

    /// The body of a section, as served.
    pub async fn get_json(&self, section_id: &str) -> Result<Bytes> {
        SectionId::parse(section_id)?;
        let url = self.section_url(section_id);
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| Error::BadSection(format!("section URL {url:?}: {e}")))?;
        let request = hyper::Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| Error::BadSection(format!("request for {url}: {e}")))?;
        let fetch = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| Error::Operational(format!("GET {url}: {e}")))?;
            let status = response.status();
            let too_long = || {
                Error::BadSection(format!(
                    "GET {url}: the body is longer than the limit of {} bytes",
                    self.max_body
                ))
            };
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.max_body as u64) {
                return Err(too_long());
            }
            let body = Limited::new(response.into_body(), self.max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        too_long()
                    } else {
                        Error::Operational(format!("GET {url}: reading the body: {e}"))
                    }
                })?
                .to_bytes();
            Ok::<_, Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, fetch)
            .await
            .map_err(|_| {
                Error::Operational(format!("GET {url}: no answer within {:?}", self.timeout))
            })??;
        let text = || {
            String::from_utf8_lossy(&body[..body.len().min(300)])
                .trim()
                .to_string()
        };
        match status.as_u16() {
            200 => Ok(body),
            400 | 404 => Err(Error::BadSection(format!(
                "GET {url}: {status}: {}",
                text()
            ))),
            _ => Err(Error::Operational(format!(
                "GET {url}: {status}: {}",
                text()
            ))),
        }
    }
}

#[async_trait]
impl<I: DeserializeOwned + Send + 'static> NotificationLog<I> for RemoteNotificationLog<I> {
    async fn section(&self, section_id: &str) -> Result<Section<I>> {
        let span = crate::telemetry::span!(INFO, "es.http.read", url = %self.base_url, section_id, notifications = tracing::field::Empty);
        let read = async { decode_section::<I>(&self.get_json(section_id).await?) };
        let section = crate::telemetry::timed(span.clone(), read).await?;
        span.record("notifications", section.items.len());
        Ok(section)
    }
}
