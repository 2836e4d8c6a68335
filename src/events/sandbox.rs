//! `/sandbox/events`: the latest events, as the team's systems would receive them.

use poem::{IntoResponse, Response, Route, http::StatusCode, web::Html};

use crate::store::Store;

/// Events the page shows.
const SHOWN: u64 = 50;

/// Adds `/events` to the sandbox's routes.
pub fn add_routes(route: Route, store: Store) -> Route {
    route.at(
        "/events",
        poem::get(poem::endpoint::make(move |_| {
            let store = store.clone();
            async move { page(&store).await }
        })),
    )
}

async fn page(store: &Store) -> Response {
    let events = match store.latest_events(SHOWN).await {
        Ok(events) => events,
        Err(error) => {
            tracing::error!(%error, "listing events for the sandbox failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let mut rows = String::new();
    for event in &events {
        let json = serde_json::to_string_pretty(&event.to_json()).unwrap_or_default();
        rows.push_str(&format!(
            "<li><b>{}</b> <code>{}</code><pre>{}</pre></li>\n",
            escape(&event.event_type),
            escape(&event.id),
            escape(&json)
        ));
    }
    if events.is_empty() {
        rows.push_str("<li>No events yet: sign in through the sandbox to make some.</li>");
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sandbox events</title>\
         <meta http-equiv=\"refresh\" content=\"5\"></head><body>\
         <h1>Latest events</h1><p>What <code>WEBHOOK_URL</code> receives and \
         <code>GET /api/v1/server/events</code> lists, newest first (refreshes every 5 s).</p>\
         <ol>{rows}</ol></body></html>"
    ))
    .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
