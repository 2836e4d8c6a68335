use std::time::Duration;

use tokio::{net::TcpListener, task::JoinSet};

use crate::helpers::{TestDatabase, assert_problem, spawn_app_with};

/// A TCP relay to the database server that the test can cut, like a failed network.
struct Relay {
    port: u16,
    tasks: JoinSet<()>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, tasks }
    }

    /// Drops the listener and every relayed connection.
    fn cut(mut self) {
        self.tasks.abort_all();
    }
}

#[tokio::test]
async fn readiness_is_503_not_ready_when_the_database_is_unreachable() {
    let database = TestDatabase::create().await;
    let Some((scheme_and_auth, host_and_rest)) = database.url.split_once('@') else {
        // SQLite is in-process and cannot become unreachable; the PostgreSQL and MariaDB
        // runs of this suite (TEST_DATABASE_URL) exercise this test.
        eprintln!("skipped: needs a server database (TEST_DATABASE_URL)");
        return;
    };
    let (host, path) = host_and_rest.split_once('/').unwrap();
    let relay = Relay::start(host.to_owned()).await;
    let relayed_url = format!("{scheme_and_auth}@127.0.0.1:{}/{path}", relay.port);
    let app = spawn_app_with(&[("DATABASE_URL", &relayed_url)]).await;
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    relay.cut();

    let response = tokio::time::timeout(
        Duration::from_secs(15),
        app.http.get(app.url("/readyz")).send(),
    )
    .await
    .expect("readiness answers in bounded time")
    .unwrap();
    assert_problem(response, 503, "not_ready").await;
    let live = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        live.status().as_u16(),
        200,
        "liveness does not depend on the database"
    );
    drop(database);
}
