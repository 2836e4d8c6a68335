use std::process::Command;

fn run_with(env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wechat-auth"));
    command.env_clear();
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

#[test]
fn a_missing_setting_stops_start_up_with_one_line_naming_it() {
    let output = run_with(&[
        ("WECHAT_APPID", "wx123"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WECHAT_SECRET"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn an_invalid_setting_is_named_without_echoing_secrets() {
    let output = run_with(&[
        ("WECHAT_APPID", "wx123"),
        ("WECHAT_SECRET", "the-app-secret"),
        ("JWT_SECRET", "too-short-secret"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("too-short-secret") && !stderr.contains("the-app-secret"),
        "{stderr}"
    );
}

#[test]
fn the_openapi_subcommand_prints_the_document() {
    let output = run_with(&[]);
    assert!(!output.status.success(), "no settings: start-up refuses");
    let output = Command::new(env!("CARGO_BIN_EXE_wechat-auth"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("openapi: 3."));
}

#[test]
fn a_database_url_with_an_unknown_scheme_is_named_without_its_password() {
    let output = run_with(&[
        ("WECHAT_SANDBOX", "true"),
        ("DATABASE_URL", "redis://admin:S3cretPassw0rd@cache:6379"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(
        !stderr.contains("S3cretPassw0rd") && !stderr.contains("admin:"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn an_unreachable_database_server_is_named_with_the_cause() {
    let output = run_with(&[
        ("WECHAT_SANDBOX", "true"),
        ("BIND_ADDR", "127.0.0.1:0"),
        (
            "DATABASE_URL",
            "postgres://admin:S3cretPassw0rd@127.0.0.1:1/auth",
        ),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(!stderr.contains("S3cretPassw0rd"), "{stderr}");
}

#[test]
fn every_missing_setting_is_named_at_once_with_a_hint_towards_the_sandbox() {
    let output = run_with(&[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for variable in ["WECHAT_APPID", "WECHAT_SECRET", "JWT_SECRET"] {
        assert!(stderr.contains(variable), "{stderr}");
    }
    assert!(stderr.contains("WECHAT_SANDBOX=true"), "{stderr}");
    let invalid = run_with(&[
        ("WECHAT_APPID", "wx123"),
        ("WECHAT_SECRET", "s"),
        ("JWT_SECRET", "short"),
        ("ACCESS_TOKEN_TTL_SECS", "soon"),
        ("BIND_ADDR", "nowhere"),
    ]);
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    for variable in ["JWT_SECRET", "ACCESS_TOKEN_TTL_SECS", "BIND_ADDR"] {
        assert!(stderr.contains(variable), "{stderr}");
    }
    assert!(
        !stderr.contains("WECHAT_SANDBOX=true"),
        "something was configured: {stderr}"
    );
}
