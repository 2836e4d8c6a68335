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

/// An `Option` field is answered as `null` when unset (never left out), so a generated
/// client must be told: every property that is not required must be `nullable`.
#[tokio::test]
async fn every_optional_field_is_declared_nullable() {
    let app = spawn_app().await;
    let spec: Value = app.get_json("/api/openapi.json").await;
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let mut undeclared = Vec::new();
    for (name, schema) in schemas {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (property, definition) in schema["properties"].as_object().into_iter().flatten() {
            if !required.contains(&property.as_str()) && definition["nullable"] != true {
                undeclared.push(format!("{name}.{property}"));
            }
        }
    }
    assert!(undeclared.is_empty(), "not marked nullable: {undeclared:?}");
    for property in ["unionid", "phone_number", "nickname", "avatar_url"] {
        assert_eq!(schemas["User"]["properties"][property]["nullable"], true);
    }
}

#[tokio::test]
async fn request_constraints_are_declared() {
    let app = spawn_app().await;
    let spec: Value = app.get_json("/api/openapi.json").await;
    let schemas = &spec["components"]["schemas"];
    let code = &schemas["LoginRequest"]["properties"]["code"];
    assert_eq!(code["minLength"], 1);
    assert_eq!(code["maxLength"], 128);
    assert!(code["pattern"].is_string());
    for request in ["UserInfoRequest", "PhoneNumberRequest"] {
        for field in ["encrypted_data", "iv"] {
            assert!(
                schemas[request]["properties"][field]["pattern"].is_string(),
                "{request}.{field} declares no base64 pattern"
            );
        }
    }
}

/// What the document promises is what the service accepts: a canonical base64 payload of
/// the declared shape is not refused as malformed.
#[tokio::test]
async fn a_schema_valid_user_info_request_is_not_refused_as_malformed() {
    let app = spawn_app().await;
    let login = app.login_ok("alice-1").await;
    let response = app
        .http
        .post(app.url("/api/v1/wechat/user-info"))
        .bearer_auth(&login.token)
        .json(&serde_json::json!({
            "encrypted_data": "AAAAAAAAAAAAAAAAAAAAAA==",
            "iv": "AAAAAAAAAAAAAAAAAAAAAA==",
            "raw_data": null,
            "signature": null,
        }))
        .send()
        .await
        .unwrap();
    // Well-formed but not sealed with the user's key: 422, not 400.
    assert_problem(response, 422, "decrypt_failed").await;
}
