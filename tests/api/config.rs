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
