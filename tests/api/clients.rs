//! The client libraries (`clients/`) and the downstream-verification examples
//! (`examples/`), run against the real service.
//!
//! The Node packages start their own sandbox service on SQLite, whatever database this run
//! uses, so they run on the SQLite pass only (`TEST_DATABASE_URL` unset) and say so on the
//! others. Without `node`/`npm` they fail in CI and are skipped, loudly, elsewhere.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn describe(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether the Node checks run here; prints why when they do not.
fn node_checks_apply() -> bool {
    if std::env::var_os("TEST_DATABASE_URL").is_some() {
        println!(
            "skipped: the Node packages start their own service on SQLite; they run on the \
             SQLite pass (TEST_DATABASE_URL unset)"
        );
        return false;
    }
    let problem = match node_major_version() {
        Some(major) if major >= 20 => {
            if npm_runs() {
                return true;
            }
            "npm is not installed".to_owned()
        }
        Some(major) => format!("node {major} is too old (the packages need Node.js 20 or later)"),
        None => "node is not installed".to_owned(),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {problem}: .ci/run installs nodejs and npm"
    );
    println!("skipped: {problem}; install Node.js 20+ and npm to run the client checks");
    false
}

fn node_major_version() -> Option<u32> {
    let output = Command::new("node").arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&output.stdout);
    version
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn npm_runs() -> bool {
    Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// In `dir` (relative to the repository): `npm ci` when node_modules is missing, then each
/// command; every one must exit 0.
fn run_node_package(dir: &str, commands: &[&[&str]]) {
    if !node_checks_apply() {
        return;
    }
    let dir = repo_path(dir);
    let run = |args: &[&str]| {
        let output = Command::new(args[0])
            .args(&args[1..])
            .current_dir(&dir)
            .env("WECHAT_AUTH_BIN", env!("CARGO_BIN_EXE_wechat-auth"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("{args:?} did not start: {error}"));
        assert!(
            output.status.success(),
            "{args:?} in {} failed\n{}",
            dir.display(),
            describe(&output)
        );
        println!("{args:?} in {}: ok", dir.display());
    };
    if !dir.join("node_modules").exists() {
        run(&["npm", "ci", "--no-audit", "--no-fund"]);
    }
    for args in commands {
        run(args);
    }
}

#[test]
fn the_mini_program_library_passes_its_tests_against_the_service() {
    run_node_package(
        "clients/miniprogram",
        &[
            &["node", "--test"],
            &["npx", "--no-install", "tsc", "--noEmit", "-p", "."],
            &["npm", "pack", "--dry-run"],
        ],
    );
}

#[test]
fn the_web_library_passes_its_tests_against_the_service() {
    run_node_package(
        "clients/web",
        &[
            &["node", "--test"],
            &["npx", "--no-install", "tsc", "--noEmit", "-p", "."],
            &["npm", "pack", "--dry-run"],
        ],
    );
}

#[test]
fn the_node_example_verifies_our_tokens_and_refuses_forged_ones() {
    run_node_package("examples/node-verify", &[&["node", "--test"]]);
}

/// `examples/verify_poem.rs` as a process; Cargo builds examples with the tests, next to
/// them, and this builds it when a runner did not.
struct PoemExample {
    child: Child,
    address: String,
}

impl PoemExample {
    async fn start(auth_url: &str) -> Self {
        let profile_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
            .expect("the test binary lives in target/<profile>/deps");
        let binary = profile_dir.join("examples").join("verify_poem");
        if !binary.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let output = Command::new(cargo)
                .args(["build", "--example", "verify_poem"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", describe(&output));
        }
        let mut child = Command::new(&binary)
            .env_clear()
            .env("WECHAT_AUTH_URL", auth_url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("{} did not start: {error}", binary.display()));
        let stdout = child.stdout.take().unwrap();
        let address = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|line| line.strip_prefix("listening on ").map(str::to_owned))
        })
        .await
        .unwrap()
        .expect("the example prints its address");
        Self {
            child,
            address: format!("http://{address}"),
        }
    }

    async fn whoami(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new().get(format!("{}/whoami", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

impl Drop for PoemExample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn key_file(name: &str) -> String {
    repo_path(&format!("tests/fixtures/keys/{name}"))
        .display()
        .to_string()
}

async fn service_signing(algorithm: &str, key: &str) -> TestApp {
    spawn_app_with(&[
        ("JWT_ALGORITHM", algorithm),
        ("JWT_PRIVATE_KEY_FILE", &key_file(key)),
        ("SESSION_KEY_ENCRYPTION_KEY", ENCRYPTION_KEY),
    ])
    .await
}

fn signed(algorithm: Algorithm, key: &str, kid: &str, claims: &Value) -> String {
    let pem = std::fs::read(key_file(key)).unwrap();
    let key = match algorithm {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_ec_pem(&pem),
    }
    .unwrap();
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

async fn check_poem_example(algorithm: Algorithm, name: &str, key: &str, other: (Algorithm, &str)) {
    let app = service_signing(name, key).await;
    let example = PoemExample::start(&app.address).await;
    let login = app.login_ok("alice-1").await;

    let response = example.whoami(Some(&login.token)).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], login.user_id.as_str());

    let jwks: Value = app.get_json("/.well-known/jwks.json").await;
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    let claims = |changes: Value| {
        let mut claims = json!({
            "iss": "wechat-auth", "aud": "wechat-miniprogram", "sub": login.user_id,
            "sid": "forged", "jti": "forged", "iat": now, "exp": now + 600,
        });
        for (field, value) in changes.as_object().unwrap() {
            claims[field] = value.clone();
        }
        claims
    };
    let refused = [
        (
            "signed with another key under our kid",
            signed(other.0, other.1, &kid, &claims(json!({}))),
        ),
        (
            "expired, with our own signature",
            signed(
                algorithm,
                key,
                &kid,
                &claims(json!({"iat": now - 7200, "exp": now - 3600})),
            ),
        ),
        (
            "another audience, with our own signature",
            signed(
                algorithm,
                key,
                &kid,
                &claims(json!({"aud": "someone-else"})),
            ),
        ),
        (
            "HS256 keyed with the published key set",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims(json!({})),
                &EncodingKey::from_secret(jwks.to_string().as_bytes()),
            )
            .unwrap(),
        ),
        ("not a token", "not.a.token".to_owned()),
    ];
    for (what, token) in refused {
        let response = example.whoami(Some(&token)).await;
        assert_eq!(response.status().as_u16(), 401, "{what}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{what}");
    }
    assert_eq!(example.whoami(None).await.status().as_u16(), 401);
}

#[tokio::test]
async fn the_poem_example_accepts_our_es256_tokens_and_refuses_forged_and_expired_ones() {
    check_poem_example(
        Algorithm::ES256,
        "ES256",
        "es256-a.pem",
        (Algorithm::ES256, "es256-b.pem"),
    )
    .await;
}

#[tokio::test]
async fn the_poem_example_accepts_our_eddsa_tokens_and_refuses_forged_and_expired_ones() {
    // There is one Ed25519 fixture key: the forgery is an ES256 token under our kid.
    check_poem_example(
        Algorithm::EdDSA,
        "EdDSA",
        "ed25519-a.pem",
        (Algorithm::ES256, "es256-b.pem"),
    )
    .await;
}
