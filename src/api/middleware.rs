//! Cross-cutting HTTP concerns: request ids and access logs, and the body size limit.

use std::{sync::Arc, time::Instant};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, StatusCode, header},
};
use tracing::Instrument;

use super::{
    problem::{ProblemCode, problem_response},
    routes::{OTHER, RouteTable, method_label},
};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives every request an id (the caller's `X-Request-Id` when it is sane), runs it inside
/// a span carrying that id so every log line has it, and logs one access line.
///
/// The access line has the path but never the query string: the sandbox's
/// `jscode2session` takes the appsecret there, exactly like WeChat's. Method and route
/// come from the closed set in `routes` and the path is cut short, so no request can
/// make a log line or a metric label as long as it likes. A 405 gets its `Allow` here,
/// where the route is known.
pub async fn request_log<E: Endpoint>(
    endpoint: Arc<E>,
    request: Request,
    routes: Arc<RouteTable>,
) -> poem::Result<Response> {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = method_label(request.method());
    let full_path = request.uri().path();
    let route = routes.find(full_path);
    let path = truncated(full_path, LOGGED_PATH_BYTES).to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);
    let started = Instant::now();
    async move {
        let mut response = match endpoint.call(request).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        };
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        let label = route.map_or(OTHER, |route| route.template());
        tracing::info!(method, route = label, %path, status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
        crate::metrics::http_request(method, label, status, elapsed);
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(route) = route
            && let Ok(allow) = HeaderValue::from_str(route.allow())
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Enough of a path to recognise it in a log; our own paths are far shorter.
const LOGGED_PATH_BYTES: usize = 256;

fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
