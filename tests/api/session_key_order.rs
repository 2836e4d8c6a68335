//! Concurrent logins of one user: the stored session_key must be the one WeChat handed out
//! last, whatever order the exchanges finish in here, and the grace-period key the one
//! before it.

use std::{sync::Arc, time::Duration};

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Barrier;

use crate::helpers::{openid_of, phone_payload, seal_with, spawn_app};

const LOGINS: usize = 16;
const ROUNDS: usize = 24;
/// WeChat hands keys out in the order of these delays; they are far enough apart that the
/// answers arrive here in that order too.
const STEP: Duration = Duration::from_millis(2);

#[tokio::test]
async fn concurrent_logins_leave_the_last_key_wechat_handed_out_stored() {
    let app = Arc::new(spawn_app().await);
    let openid = openid_of("racer");
    for round in 0..ROUNDS {
        // A different permutation of delays each round, released at once by a barrier.
        let order: Vec<usize> = (0..LOGINS).map(|i| (i * 7 + round * 5) % LOGINS).collect();
        let barrier = Arc::new(Barrier::new(LOGINS));
        let mut logins = Vec::new();
        for (i, slot) in order.into_iter().enumerate() {
            let code = format!("racer-{round}-{i}");
            app.wechat
                .delay_code(&code, STEP * u32::try_from(slot).unwrap());
            let (app, barrier) = (app.clone(), barrier.clone());
            logins.push(tokio::spawn(async move {
                barrier.wait().await;
                let body: serde_json::Value = app.login(&code).await.json().await.unwrap();
                body["access_token"].as_str().unwrap().to_owned()
            }));
        }
        let mut tokens = Vec::new();
        for login in logins {
            tokens.push(login.await.unwrap());
        }
        let history = app.wechat.session_key_history(&openid);
        let (newest, before) = (&history[history.len() - 1], &history[history.len() - 2]);
        for (key, which) in [(newest, "newest"), (before, "the one before")] {
            let response = app
                .post_json(
                    "/api/v1/wechat/phone-number",
                    &seal_with(key, &phone_payload()),
                    Some(&tokens[0]),
                )
                .await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "round {round}: data sealed with {which} key must decrypt"
            );
        }
        let older = &history[history.len() - 3];
        let response = app
            .post_json(
                "/api/v1/wechat/phone-number",
                &seal_with(older, &json!({"phoneNumber": "1"})),
                Some(&tokens[0]),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "round {round}"
        );
    }
}
