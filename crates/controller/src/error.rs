//! Every error the API answers, in one place: [`ApiError`] carries the HTTP status and
//! the JSON [`ErrorBody`]; conversions from store and validation errors, and the
//! extractors ([`ApiJson`], [`ApiQuery`], [`ApiPath`]) whose rejections become JSON
//! errors too (never axum's plain-text ones).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use model::FieldError;
use proto::v1::ErrorBody;
use serde::de::DeserializeOwned;
use store::StoreError;

/// An API error: status, JSON body, and for 429 the seconds to wait.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: ErrorBody,
    /// `Retry-After` seconds (429 only).
    pub retry_after: Option<u64>,
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A new error with a status, code and message.
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.to_owned(),
                message: message.into(),
                field: None,
                rule: None,
            },
            retry_after: None,
        }
    }

    /// Name the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// Name the rule that failed.
    pub fn with_rule(mut self, rule: impl Into<String>) -> Self {
        self.body.rule = Some(rule.into());
        self
    }

    /// 422 `invalid` naming a field and rule.
    pub fn invalid(field: impl Into<String>, rule: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            .with_field(field)
            .with_rule(rule)
    }

    /// 400 `invalid`: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    /// 401 with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 `conflict` on a field.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message).with_field(field)
    }

    /// 409 `in_use`.
    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "in_use", message)
    }

    /// 422 `infeasible`: placement cannot be satisfied.
    pub fn infeasible(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "infeasible", message)
    }

    /// 429 `too_many_requests` with `Retry-After`.
    pub fn too_many(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("too many failed authentication attempts; retry in {retry_after} s"),
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// 413 `payload_too_large`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 500 `internal`: details are logged, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the controller log has details",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.body.error,
            self.body.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(&self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::invalid(e.field, e.rule, e.message)
    }
}

/// The request field a unique-key namespace of the store corresponds to.
pub fn field_of_ns(ns: &str) -> &'static str {
    match ns {
        "ftp_account" => "username",
        "mailbox" | "mail_alias" | "mail_address" => "address",
        "hostname" => "aliases",
        "site" => "domain",
        _ => "name",
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { ns, key } => {
                let what = ns.replace('_', " ");
                Self::conflict(field_of_ns(&ns), format!("{what} `{key}` already exists"))
            }
            StoreError::NotFound { kind, .. } => {
                Self::not_found(format!("{} not found", kind.replace('_', " ")))
            }
            StoreError::InUse(msg) => Self::in_use(msg),
            other => Self::internal(other),
        }
    }
}

impl From<crate::placement::PlacementError> for ApiError {
    fn from(e: crate::placement::PlacementError) -> Self {
        match e {
            crate::placement::PlacementError::Store(e) => e.into(),
            crate::placement::PlacementError::Infeasible(e) => Self::infeasible(e.to_string()),
        }
    }
}

impl From<crate::secrets::HashError> for ApiError {
    fn from(e: crate::secrets::HashError) -> Self {
        Self::internal(e)
    }
}

/// Map a body-reading rejection (too large, broken connection).
fn bytes_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(
            "the request body is larger than the controller accepts (max_body_bytes)",
        )
    } else {
        ApiError::bad_request(format!("cannot read the request body: {}", r.body_text()))
    }
}

/// Map a serde_json error to 400 `invalid`, naming an unknown field when serde does.
pub fn json_error(e: &serde_json::Error) -> ApiError {
    let msg = e.to_string();
    let mut err = ApiError::bad_request(format!("malformed JSON body: {msg}"));
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some((field, _)) = rest.split_once('`') {
            err = err.with_field(field).with_rule("unknown_field");
        }
    } else if let Some(rest) = msg.strip_prefix("missing field `") {
        if let Some((field, _)) = rest.split_once('`') {
            err = err.with_field(field).with_rule("required");
        }
    } else if msg.starts_with("invalid type") {
        err = err.with_rule("wrong_type");
    } else {
        err = err.with_rule("syntax");
    }
    err
}

/// JSON body extractor: requires `Content-Type: application/json` (415 otherwise),
/// honours the body limit (413), and reports serde's message (400) as JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| json_error(&e))
    }
}

/// Query string extractor with JSON errors.
#[derive(Debug, Clone, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request(format!("bad query string: {}", e.body_text()))
                    .with_rule("bad_query")
            })
    }
}

/// Path parameter extractor with JSON errors.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| {
                ApiError::bad_request(format!("bad path: {}", e.body_text()))
            })
    }
}

/// Fallback for unknown routes: 404 JSON.
pub async fn not_found_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

/// Fallback for a known route with the wrong method: 405 JSON.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_statuses() {
        let e: ApiError = StoreError::Conflict {
            ns: "mail_address".into(),
            key: "a@b.c".into(),
        }
        .into();
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.body.error, "conflict");
        assert_eq!(e.body.field.as_deref(), Some("address"));
        let e: ApiError = StoreError::NotFound {
            kind: "domain",
            id: 3,
        }
        .into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e: ApiError = StoreError::InUse("x".into()).into();
        assert_eq!(
            (e.status, e.body.error.as_str()),
            (StatusCode::CONFLICT, "in_use")
        );
        let source = serde_json::from_str::<u8>("x").unwrap_err();
        let e: ApiError = StoreError::Corrupt {
            kind: "domain",
            id: 1,
            source,
        }
        .into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !e.body.message.contains("corrupt"),
            "details never leak: {}",
            e.body.message
        );
    }

    #[test]
    fn field_errors_are_422() {
        let e: ApiError = model::Invalid::new("bad_character", "no").at("name").into();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.body.field.as_deref(), Some("name"));
        assert_eq!(e.body.rule.as_deref(), Some("bad_character"));
    }

    #[test]
    fn unknown_json_field_is_named() {
        let err = serde_json::from_str::<proto::v1::CreateAlias>(
            r#"{"address":"a@b.c","destinations":[],"bogus":1}"#,
        )
        .unwrap_err();
        let e = json_error(&err);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.field.as_deref(), Some("bogus"));
        assert!(e.body.message.contains("bogus"));
    }

    #[test]
    fn responses_carry_headers() {
        let r = ApiError::unauthorized("x").into_response();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let r = ApiError::too_many(7).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }
}
