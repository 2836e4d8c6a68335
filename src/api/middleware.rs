//! Cross-cutting HTTP concerns: request ids and access logs, and the body size limit.

use std::{sync::Arc, time::Instant};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, header},
};
use tracing::Instrument;

use super::problem::{ProblemCode, problem_response};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives every request an id (the caller's `X-Request-Id` when it is sane), runs it inside
/// a span carrying that id so every log line has it, and logs one access line.
///
/// The access line has the path but never the query string: the sandbox's
/// `jscode2session` takes the appsecret there, exactly like WeChat's.
pub async fn request_log<E: Endpoint>(
    endpoint: Arc<E>,
    request: Request,
) -> poem::Result<Response> {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);
    let started = Instant::now();
    async move {
        let mut response = match endpoint.call(request).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        };
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        tracing::info!(%method, %path, status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
        // Every routed path is a fixed string; unknown ones share one label so that
        // scanners cannot blow up the metric's cardinality.
        let route = if status == 404 {
            "unmatched".to_owned()
        } else {
            route_label(&path)
        };
        crate::metrics::http_request(method.as_str(), &route, status, elapsed);
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Collections whose next path segment is an id.
const ID_COLLECTIONS: [&str; 2] = ["qr-login", "sessions"];

/// The path with the id after each collection replaced by `{id}`, so that a route with a
/// parameter is one metric label, not one per id.
fn route_label(path: &str) -> String {
    let mut previous = "";
    path.split('/')
        .map(|segment| {
            let label = if ID_COLLECTIONS.contains(&previous) && !segment.is_empty() {
                "{id}"
            } else {
                segment
            };
            previous = segment;
            label
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Refuses bodies over the limit before they are read: by `Content-Length` when declared,
/// otherwise by reading at most `max` bytes of the chunked body.
pub async fn limit_body<E: Endpoint>(
    endpoint: Arc<E>,
    mut request: Request,
    max: usize,
) -> poem::Result<Response> {
    let too_large = || {
        problem_response(
            ProblemCode::PayloadTooLarge,
            format!("the request body must be at most {max} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > max as u64 => return Ok(too_large()),
        Some(_) => {}
        None if request.headers().contains_key(header::TRANSFER_ENCODING) => {
            let body = request.take_body();
            match body.into_bytes_limit(max).await {
                Ok(bytes) => request.set_body(bytes),
                Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large()),
                Err(_) => {
                    return Ok(problem_response(
                        ProblemCode::InvalidRequest,
                        "the request body could not be read",
                    ));
                }
            }
        }
        None => {}
    }
    Ok(endpoint.call(request).await?.into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_in_paths_share_one_label() {
        assert_eq!(
            super::route_label("/api/v1/qr-login/abcDEF1234567890/scan"),
            "/api/v1/qr-login/{id}/scan"
        );
        assert_eq!(super::route_label("/api/v1/qr-login"), "/api/v1/qr-login");
        assert_eq!(super::route_label("/api/v1/me"), "/api/v1/me");
    }
}
