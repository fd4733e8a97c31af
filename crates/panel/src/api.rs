//! The panel's client of the REST API: each call is one request through the
//! controller's own API router, in-process (`tower::ServiceExt::oneshot`), with
//! the session's bearer token and the browser request's extensions (the client
//! address the API throttles by). Nothing is checked here: the answer is the API's.

use axum::body::Body;
use axum::Router;
use http::{header, Extensions, Method, Request, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;

/// Largest API answer the panel reads (listings are paged at 1,000 items).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// Characters escaped in a path segment built from user input.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'@');

/// `s` as one path segment of an API URL.
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// The API router, called in-process.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// An API answer: status and JSON body (`null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body as JSON.
    pub body: Value,
}

/// An API answer that is not a success, with the API's error body.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The HTTP status (401, 404, 422, 429 …).
    pub status: StatusCode,
    /// The API's error body (`error`, `message`, `field`, `rule`).
    pub error: proto::v1::ErrorBody,
}

impl Failure {
    fn from_reply(r: Reply) -> Self {
        let error = serde_json::from_value(r.body.clone()).unwrap_or(proto::v1::ErrorBody {
            error: "unexpected".into(),
            message: format!("the API answered {} with no error body", r.status),
            field: None,
            rule: None,
        });
        Failure {
            status: r.status,
            error,
        }
    }

    /// A failure of the panel itself (the API could not be called or answered
    /// something unreadable).
    pub fn internal(message: impl Into<String>) -> Self {
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: proto::v1::ErrorBody {
                error: "internal".into(),
                message: message.into(),
                field: None,
                rule: None,
            },
        }
    }
}

impl Reply {
    /// The body as `T` on a 2xx answer, the API's error otherwise.
    pub fn into_result<T: DeserializeOwned>(self) -> Result<T, Failure> {
        if !self.status.is_success() {
            return Err(Failure::from_reply(self));
        }
        serde_json::from_value(self.body)
            .map_err(|e| Failure::internal(format!("unreadable API answer: {e}")))
    }

    /// `Ok` on a 2xx answer, ignoring the body.
    pub fn ok(self) -> Result<(), Failure> {
        if self.status.is_success() {
            Ok(())
        } else {
            Err(Failure::from_reply(self))
        }
    }
}

impl Api {
    /// Call through `router`.
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    /// One API call. `ext` are the browser request's extensions, passed on so the
    /// API sees the same client address.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        ext: &Extensions,
    ) -> Reply {
        match self.try_call(method, path, token, body, ext).await {
            Ok(r) => r,
            Err(message) => Reply {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: serde_json::json!({"error": "internal", "message": message}),
            },
        }
    }

    /// One API call with a raw body of `content_type` (an archive).
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        content_type: &str,
        body: Body,
        ext: &Extensions,
    ) -> Reply {
        let result = async {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, content_type)
                .body(body)
                .map_err(|e| e.to_string())?;
            self.send(req, ext).await
        };
        match result.await {
            Ok(r) => r,
            Err(message) => Reply {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: serde_json::json!({"error": "internal", "message": message}),
            },
        }
    }

    async fn try_call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        ext: &Extensions,
    ) -> Result<Reply, String> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(v).map_err(|e| e.to_string())?)
            }
            None => Body::empty(),
        };
        let req = req.body(body).map_err(|e| e.to_string())?;
        self.send(req, ext).await
    }

    async fn send(&self, mut req: Request<Body>, ext: &Extensions) -> Result<Reply, String> {
        *req.extensions_mut() = ext.clone();
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), MAX_ANSWER)
            .await
            .map_err(|e| format!("cannot read the API's answer: {e}"))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Reply { status, body })
    }

    /// A call whose answer is a stream (server-sent events): its body as it
    /// comes, on a 2xx answer; the API's error otherwise.
    pub async fn open(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        ext: &Extensions,
    ) -> Result<Body, Failure> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let mut req = req
            .body(Body::empty())
            .map_err(|e| Failure::internal(e.to_string()))?;
        *req.extensions_mut() = ext.clone();
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| Failure::internal(e.to_string()))?;
        if res.status().is_success() {
            return Ok(res.into_body());
        }
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), MAX_ANSWER)
            .await
            .unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Err(Failure::from_reply(Reply { status, body }))
    }

    /// Every item of a paged listing (`path` without query or with one).
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        ext: &Extensions,
    ) -> Result<Vec<T>, Failure> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=1000&cursor={}", seg(c)),
                None => format!("{path}{sep}limit=1000"),
            };
            let page: proto::v1::Page<T> = self
                .call(Method::GET, &url, Some(token), None, ext)
                .await
                .into_result()?;
            items.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(items),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(seg("example.com"), "example.com");
        assert_eq!(seg("info@example.com"), "info@example.com");
        assert_eq!(seg("../v1/x?y#z"), "..%2Fv1%2Fx%3Fy%23z");
        assert_eq!(seg("bücher.de"), "b%C3%BCcher.de");
    }
}
