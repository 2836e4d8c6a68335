//! What a newcomer meets in the repository before running anything: the licences
//! Cargo.toml claims, a changelog, a README whose links and examples work, and deployment
//! files that do what the README says.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_licences_cargo_toml_claims_are_there() {
    assert!(read("Cargo.toml").contains(r#"license = "MIT OR Apache-2.0""#));
    let mit = read("LICENSE-MIT");
    assert!(mit.contains("Copyright (c) 2026 the wechat-auth developers"));
    assert!(mit.contains("Permission is hereby granted, free of charge"));
    let apache = read("LICENSE-APACHE");
    assert!(apache.contains("Version 2.0, January 2004"));
    assert!(apache.contains("END OF TERMS AND CONDITIONS"));
}

#[test]
fn the_changelog_keeps_an_unreleased_section_and_the_first_release() {
    let changelog = read("CHANGELOG.md");
    assert!(changelog.contains("Keep a Changelog"));
    assert!(changelog.contains("## [Unreleased]"));
    assert!(changelog.contains("## [0.1.0] - "));
}

/// Every relative link in the README points at a file in the repository, and it does not
/// send readers to a contract file the repository does not have.
#[test]
fn the_readme_refers_only_to_files_the_repository_has() {
    let readme = read("README.md");
    assert!(!readme.contains("API.md"), "the README mentions API.md");
    for link in readme.split("](").skip(1) {
        let target = link.split(')').next().unwrap_or_default();
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let file = target.split('#').next().unwrap_or_default();
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(file).exists(),
            "the README links to {target}, which does not exist"
        );
    }
}

/// The README's mini-program quick start uses the tested client library, not a
/// hand-written `wx.request` helper that each team would copy (the old one sent GET to
/// POST-only endpoints).
#[test]
fn the_readme_mini_program_quick_start_uses_the_client_library() {
    let readme = read("README.md");
    let section = readme
        .split("## Mini-program side")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a Mini-program side section");
    assert!(section.contains("createAuth("), "{section}");
    assert!(section.contains("@wechat-auth/miniprogram"), "{section}");
    assert!(
        !section.contains("wx.request({"),
        "no hand-written request helper"
    );
}

#[test]
fn compose_builds_one_image_and_keeps_metrics_off_the_public_proxy() {
    let compose = read("docker-compose.yml");
    assert_eq!(
        compose.matches("build:").count(),
        1,
        "the image is built once"
    );
    assert_eq!(compose.matches("image: wechat-auth:local").count(), 2);
    let nginx = read("deploy/nginx.conf");
    assert!(nginx.contains("location = /metrics {\n        return 404;"));
    assert!(read("Dockerfile").contains(r#"VOLUME ["/home/nonroot/data"]"#));
    let example = read(".env.example");
    for variable in [
        "WECHAT_APPID",
        "WECHAT_SECRET",
        "JWT_SECRET",
        "POSTGRES_PASSWORD",
    ] {
        assert!(
            example.contains(&format!("\n{variable}=")),
            ".env.example lacks {variable}"
        );
        assert!(
            compose.contains(&format!("${{{variable}")),
            "compose ignores {variable}"
        );
    }
}
