use std::process::ExitCode;

use wechat_auth::{api, config::Settings, startup::Application, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        print!("{}", api::spec_yaml());
        return ExitCode::SUCCESS;
    }
    telemetry::init();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(errors) => {
            for line in errors.to_string().lines() {
                eprintln!("wechat-auth: {line}");
            }
            return ExitCode::from(2);
        }
    };
    let application = match Application::build(settings).await {
        Ok(application) => application,
        Err(error) => {
            eprintln!("wechat-auth: {error}");
            return ExitCode::FAILURE;
        }
    };
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wechat-auth: server error: {error}");
            ExitCode::FAILURE
        }
    }
}
