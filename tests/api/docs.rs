use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_served_yaml_is_the_committed_openapi_yaml() {
    let app = spawn_app().await;
    let served = app
        .http
        .get(app.url("/api/openapi.yaml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .unwrap_or_default();
    assert!(
        served == committed,
        "openapi.yaml is out of date: regenerate it with `cargo run -- openapi > openapi.yaml`"
    );
}

#[tokio::test]
async fn the_json_spec_documents_every_operation_the_bearer_scheme_and_problems() {
    let app = spawn_app().await;
    let spec: Value = app.get_json("/api/openapi.json").await;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/wechat/phone-number", "post"),
        ("/api/v1/wechat/user-info", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(
            spec["paths"][path][method].is_object(),
            "{method} {path} is undocumented"
        );
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["BearerAuth"]["scheme"],
        "bearer"
    );
    assert!(spec["paths"]["/api/v1/me"]["get"]["security"].is_array());
    assert!(spec["components"]["schemas"]["Problem"].is_object());
    let unauthorized = &spec["paths"]["/api/v1/me"]["get"]["responses"]["401"]["content"];
    assert!(unauthorized["application/problem+json"].is_object());
    assert!(
        spec["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| !p.starts_with("/sandbox"))
    );
}

#[tokio::test]
async fn the_sandbox_stays_out_of_the_spec_even_when_enabled() {
    let app = spawn_app_with(&[("WECHAT_SANDBOX", "true")]).await;
    let spec: Value = app.get_json("/api/openapi.json").await;
    assert!(
        spec["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| !p.starts_with("/sandbox"))
    );
}

#[tokio::test]
async fn interactive_docs_are_a_browser_page() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("swagger")
    );
}

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_problems() {
    let app = spawn_app().await;
    let missing = app
        .http
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_problem(missing, 404, "not_found").await;
    let wrong_method = app
        .http
        .get(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_problem(wrong_method, 405, "method_not_allowed").await;
}
