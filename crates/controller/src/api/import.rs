//! `POST /v1/import`: bulk import of NDJSON (admins; `crate::import` does the work).

use axum::extract::State;
use axum::Json;
use proto::v1::ErrorBody;
use proto::v1_import::{ImportParams, ImportReport};

use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::state::AppState;

/// `POST /v1/import?dry_run=&first_line=`: body is NDJSON (one object per line);
/// the chunk is one transaction; the report names every line's outcome.
#[utoipa::path(post, path = "/v1/import", tag = "import", params(ImportParams),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, body = ImportReport), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ImportParams>,
    body: String,
) -> ApiResult<Json<ImportReport>> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: send NDJSON lines",
        ));
    }
    Ok(Json(
        crate::import::run(&state, &caller, &body, &params).await?,
    ))
}
