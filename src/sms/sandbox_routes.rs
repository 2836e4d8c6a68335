//! The sandbox's phone pages, added to the `/sandbox` routes: `GET /sandbox/sms` shows
//! the last code "sent" to a number, and `GET /sandbox/phone` is a page where a signed-in
//! sandbox user proves and binds a phone number.

use poem::{
    EndpointExt, IntoResponse, Response, Route, get, handler,
    web::{Data, Html, Json, Query},
};
use serde::Deserialize;
use serde_json::json;

use super::SandboxSms;
use crate::{
    api::problem::{ProblemCode, problem_response},
    domain::PhoneNumber,
};

const PHONE_PAGE: &str = include_str!("phone.html");

/// Adds `/sms` (only when the sandbox provider sends the codes) and `/phone` to the
/// sandbox's routes.
pub fn add_routes(route: Route, outbox: Option<SandboxSms>) -> Route {
    let route = route.at("/phone", get(phone_page));
    match outbox {
        Some(outbox) => route.at("/sms", get(last_code).data(outbox)),
        None => route,
    }
}

#[derive(Deserialize)]
struct SmsQuery {
    phone_number: Option<String>,
}

#[handler]
fn last_code(query: Query<SmsQuery>, outbox: Data<&SandboxSms>) -> Response {
    let Some(phone) = query
        .phone_number
        .as_deref()
        .and_then(|raw| PhoneNumber::parse(raw).ok())
    else {
        return problem_response(
            ProblemCode::InvalidRequest,
            "phone_number must be +<country code><number> or an 11-digit mainland number",
        );
    };
    match outbox.last_code(phone.as_str()) {
        Some(code) => Json(json!({ "phone_number": phone.as_str(), "code": code })).into_response(),
        None => problem_response(ProblemCode::NotFound, "no code was sent to this number"),
    }
}

#[handler]
fn phone_page() -> Html<&'static str> {
    Html(PHONE_PAGE)
}
