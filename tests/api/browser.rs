//! A real browser for the tests: headless Chromium driven over WebDriver (chromedriver +
//! fantoccini), one browser and one throwaway profile per test.
//!
//! Where Chromium or chromedriver is not installed, `Browser::start` prints
//! `skipped: <reason>` and returns `None`; with `CI` set it fails the test instead, so a
//! CI machine never passes without having run the browser.

use std::{
    net::{TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to reach an expected state; waiting is not asserting.
const PATIENCE: Duration = Duration::from_secs(20);

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    test: String,
}

/// A binary from the environment variable `variable`, else `default`, if it exists.
fn binary(variable: &str, default: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os(variable)
        .filter(|path| !path.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found (install Debian's chromium and chromium-driver, or set {variable})",
            path.display()
        ))
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free local port");
    listener.local_addr().unwrap().port()
}

impl Browser {
    /// A fresh headless Chromium for the test `test` (which names its screenshots), or
    /// `None` after printing why there is none.
    pub async fn start(test: &str) -> Option<Self> {
        let binaries = binary("CHROMIUM", CHROMIUM)
            .and_then(|chromium| Ok((chromium, binary("CHROMEDRIVER", CHROMEDRIVER)?)));
        let (chromium, chromedriver) = match binaries {
            Ok(found) => found,
            Err(reason) => {
                if std::env::var_os("CI").is_some_and(|ci| !ci.is_empty()) {
                    panic!("CI is set but the browser tests cannot run: {reason}");
                }
                eprintln!("skipped: {reason}");
                return None;
            }
        };
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that Drop ends chromedriver and every Chromium
            // process it started, even when the test panicked before closing the session.
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Self {
            client: connect(port, &chromium, profile.path()).await,
            driver,
            _profile: profile,
            test: test.to_owned(),
        };
        browser.check_driver_alive();
        Some(browser)
    }

    fn check_driver_alive(&mut self) {
        if let Ok(Some(status)) = self.driver.try_wait() {
            panic!("chromedriver exited: {status}");
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    /// Waits until an element matching `css` is on the page.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => {
                let shot = self.screenshot("timeout").await;
                let url = self.url().await;
                panic!(
                    "{css} never appeared on {url} ({error}); the page: {}",
                    shot.display()
                )
            }
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css} is not on the page: {error}"))
    }

    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.expect("click");
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// Replaces the value of the input matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.wait_for(css).await;
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("current url")
    }

    /// Saves what the page shows to `target/screenshots/<test>-<step>.png` for a person
    /// to look at; returns the path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{}-{step}.png", self.test));
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(&path, png).expect("screenshot saved");
        path
    }

    /// Ends the WebDriver session (Chromium exits); Drop then ends chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

async fn connect(port: u16, chromium: &Path, profile: &Path) -> Client {
    let driver_url = format!("http://127.0.0.1:{port}");
    // chromedriver needs a moment to listen: wait for its port, then connect.
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                // Tests talk to 127.0.0.1 only, whatever proxy the machine has.
                "--no-proxy-server",
                "--window-size=1100,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver_url)
        .await
        .expect("a WebDriver session with headless Chromium")
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The negative id names the process group (see `start`).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}
