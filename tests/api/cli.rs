//! The binary's command line: help and version without side effects, unknown arguments
//! refused, and migrations that several instances can run at the same moment.

use std::{
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use crate::helpers::TestDatabase;

fn wechat_auth(args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wechat-auth"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Waits for the process, reading its output meanwhile (an answer larger than the pipe's
/// buffer would otherwise block it); kills it and fails if it is still running after 60 s
/// (a server that was started by mistake).
fn finish(child: Child) -> Output {
    let pid = child.id();
    let (done, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match output.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("the command did not exit: it is serving");
        }
    }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    finish(wechat_auth(args, env))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn help_and_version_answer_without_starting_the_server() {
    for flag in ["--help", "-h"] {
        let output = run(
            &[flag],
            &[("WECHAT_SANDBOX", "true"), ("BIND_ADDR", "127.0.0.1:0")],
        );
        assert_eq!(output.status.code(), Some(0));
        let text = stdout(&output);
        for command in ["serve", "openapi", "migrate"] {
            assert!(
                text.contains(command),
                "{flag} does not list {command}: {text}"
            );
        }
    }
    let output = run(&["--version"], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output).trim(),
        format!("wechat-auth {}", env!("CARGO_PKG_VERSION"))
    );
    let output = run(&["migrate", "--help"], &[]);
    assert!(stdout(&output).contains("status"));
}

#[test]
fn unknown_arguments_are_refused_with_exit_code_2() {
    for args in [
        &["frobnicate"][..],
        &["--port", "80"],
        &["serve", "extra"],
        &["migrate", "sideways"],
    ] {
        let output = run(args, &[("WECHAT_SANDBOX", "true")]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty());
    }
}

#[test]
fn openapi_prints_the_committed_document() {
    let output = run(&["openapi"], &[]);
    assert_eq!(output.status.code(), Some(0));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    assert!(stdout(&output) == committed);
}

#[tokio::test]
async fn migrate_up_down_and_status_need_only_the_database_url() {
    let database = TestDatabase::create().await;
    let env = [("DATABASE_URL", database.url.as_str())];
    // (pending, total)
    let status = || {
        let output = run(&["migrate", "status"], &env);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let text = stdout(&output);
        let pending = text.lines().filter(|l| l.starts_with("pending ")).count();
        (pending, text.lines().count())
    };
    let (pending, total) = status();
    assert!(total > 0);
    assert_eq!(pending, total);
    let output = run(&["migrate", "up"], &env);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(status(), (0, total));
    let output = run(&["migrate", "down"], &env);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(status(), (1, total));
    let output = run(&["migrate", "up"], &env);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(status(), (0, total));
}

#[tokio::test]
async fn two_instances_migrating_a_fresh_database_at_once_both_succeed() {
    for _round in 0..5 {
        let database = TestDatabase::create().await;
        let env = [("DATABASE_URL", database.url.as_str())];
        let first = wechat_auth(&["migrate", "up"], &env);
        let second = wechat_auth(&["migrate", "up"], &env);
        for output in [finish(first), finish(second)] {
            assert_eq!(
                output.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let output = run(&["migrate", "status"], &env);
        let text = stdout(&output);
        assert!(!text.contains("pending"), "{text}");
    }
}
