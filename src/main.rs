use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wechat_auth::{
    api,
    config::{Settings, database_url_from_env},
    startup::Application,
    store, telemetry,
};

/// WeChat sign-in as a service: wx.login codes in, JWT access tokens out.
///
/// Configured through the environment (see the README's Configuration section);
/// `WECHAT_SANDBOX=true` runs it against a built-in WeChat simulator.
#[derive(Parser)]
#[command(name = "wechat-auth", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default when no command is given)
    Serve,
    /// Print the OpenAPI document (YAML) to standard output
    Openapi,
    /// Change or inspect the database schema; needs only DATABASE_URL
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply every pending migration (serving does this too, at start)
    Up,
    /// Roll back the most recent migration
    Down,
    /// List the migrations, applied and pending
    Status,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Parsing first: `--help`, `--version` and unknown arguments (exit 2) never start
    // anything, whatever the environment says.
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            print!("{}", api::spec_yaml());
            ExitCode::SUCCESS
        }
        Command::Migrate { action } => {
            telemetry::init();
            migrate(action).await
        }
        Command::Serve => {
            telemetry::init();
            serve().await
        }
    }
}

async fn migrate(action: MigrateAction) -> ExitCode {
    let url = match database_url_from_env() {
        Ok(url) => url,
        Err(error) => {
            eprintln!("wechat-auth: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match action {
        MigrateAction::Up => store::migrate_up(url.expose()).await,
        MigrateAction::Down => store::migrate_down(url.expose()).await,
        MigrateAction::Status => store::migration_status(url.expose())
            .await
            .map(|migrations| {
                for (name, applied) in migrations {
                    println!("{} {name}", if applied { "applied" } else { "pending" });
                }
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wechat-auth: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> ExitCode {
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
