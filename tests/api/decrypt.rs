use serde_json::{Value, json};
use wechat_auth::domain::SessionKey;

use crate::helpers::{
    APPID, LoggedIn, TestApp, assert_problem, seal_with, sealed_body, spawn_app, spawn_app_with,
    watermark,
};

const PHONE: &str = "/api/v1/wechat/phone-number";
const USER_INFO: &str = "/api/v1/wechat/user-info";

fn phone_payload(country_code: Value) -> Value {
    json!({
        "phoneNumber": "+8613800138000",
        "purePhoneNumber": "13800138000",
        "countryCode": country_code,
        "watermark": watermark(APPID),
    })
}

fn profile_payload(openid: &str) -> Value {
    json!({
        "openId": openid,
        "nickName": "Alice 🌸",
        "gender": 2,
        "language": "zh_CN",
        "city": "Hangzhou",
        "province": "Zhejiang",
        "country": "China",
        "avatarUrl": "https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132",
        "unionId": "oU_alice_from_payload",
        "watermark": watermark(APPID),
    })
}

async fn logged_in(app: &TestApp) -> LoggedIn {
    app.login_ok("alice-1").await
}

#[tokio::test]
async fn a_phone_number_is_decrypted_returned_and_saved_on_the_user() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;

    let response = app
        .post_json(
            PHONE,
            &app.seal(&alice.openid, &phone_payload(json!("86"))),
            Some(&alice.token),
        )
        .await;

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"phone_number": "+8613800138000", "pure_phone_number": "13800138000", "country_code": "86"})
    );
    let me: Value = app.me(&alice.token).await.json().await.unwrap();
    assert_eq!(me["phone_number"], "+8613800138000");
}

#[tokio::test]
async fn a_numeric_country_code_is_answered_as_a_string() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;
    let response = app
        .post_json(
            PHONE,
            &app.seal(&alice.openid, &phone_payload(json!(86))),
            Some(&alice.token),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["country_code"], "86");
}

#[tokio::test]
async fn a_profile_is_decrypted_and_nickname_avatar_and_unionid_are_saved() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;

    let response = app
        .post_json(
            USER_INFO,
            &app.seal(&alice.openid, &profile_payload(&alice.openid)),
            Some(&alice.token),
        )
        .await;

    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "nickname": "Alice 🌸", "avatar_url": "https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132",
            "gender": 2, "country": "China", "province": "Zhejiang", "city": "Hangzhou",
            "language": "zh_CN", "unionid": "oU_alice_from_payload",
        })
    );
    let me: Value = app.me(&alice.token).await.json().await.unwrap();
    assert_eq!(me["nickname"], "Alice 🌸");
    assert_eq!(
        me["avatar_url"],
        "https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132"
    );
    assert_eq!(me["unionid"], "oU_alice_from_payload");
}

#[tokio::test]
async fn absent_profile_fields_are_null_and_a_payload_without_openid_is_accepted() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;
    let payload = json!({"nickName": "微信用户", "watermark": watermark(APPID)});
    let response = app
        .post_json(
            USER_INFO,
            &app.seal(&alice.openid, &payload),
            Some(&alice.token),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["nickname"], "微信用户");
    for field in [
        "avatar_url",
        "gender",
        "country",
        "province",
        "city",
        "language",
        "unionid",
    ] {
        assert!(body[field].is_null(), "{field}: {body}");
    }
}

#[tokio::test]
async fn the_official_wechat_sample_decrypts_through_the_api() {
    let app = spawn_app_with(&[
        ("WECHAT_APPID", "wx4f4bc4dec97d474b"),
        ("WECHAT_WATERMARK_MAX_AGE_SECS", "0"),
    ])
    .await;
    // The sample's user and session_key, as WeChat would have issued them.
    app.wechat.script(
        "sample",
        vec![crate::helpers::Reply::Json(json!({
            "openid": "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
            "session_key": "tiihtNczf5v6AKRyjwEUhQ==",
        }))],
    );
    let login = app.login_ok("sample").await;
    let body = json!({
        "encrypted_data": "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==",
        "iv": "r7BXXKkLb8qrSNn05n0qiA==",
    });
    let response = app.post_json(USER_INFO, &body, Some(&login.token)).await;
    assert_eq!(response.status().as_u16(), 200);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["nickname"], "Band");
    assert_eq!(info["city"], "Guangzhou");
    assert_eq!(info["unionid"], "ocMvos6NjeKLIBqg5Mr9QjxrP1FA");
    let me: Value = app.me(&login.token).await.json().await.unwrap();
    assert_eq!(me["unionid"], "ocMvos6NjeKLIBqg5Mr9QjxrP1FA");
}

#[tokio::test]
async fn a_matching_raw_data_signature_is_accepted_and_a_wrong_one_refused() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;
    let key = app.wechat.session_key(&alice.openid);
    let raw_data = r#"{"nickName":"Alice","gender":2,"is_demote":true}"#;
    let signature = wechat_auth::crypto::raw_data_signature(raw_data, &key);
    let mut body = app.seal(&alice.openid, &profile_payload(&alice.openid));
    body["raw_data"] = json!(raw_data);
    body["signature"] = json!(signature);
    assert_eq!(
        app.post_json(USER_INFO, &body, Some(&alice.token))
            .await
            .status()
            .as_u16(),
        200
    );

    body["raw_data"] = json!(format!("{raw_data} "));
    let response = app.post_json(USER_INFO, &body, Some(&alice.token)).await;
    assert_problem(response, 422, "signature_mismatch").await;
}

#[tokio::test]
async fn raw_data_without_signature_or_the_reverse_is_an_invalid_request() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;
    for (field, value) in [("raw_data", "{}"), ("signature", "abc")] {
        let mut body = app.seal(&alice.openid, &profile_payload(&alice.openid));
        body[field] = json!(value);
        let response = app.post_json(USER_INFO, &body, Some(&alice.token)).await;
        assert_problem(response, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn a_profile_of_another_openid_is_refused() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;
    let response = app
        .post_json(
            USER_INFO,
            &app.seal(&alice.openid, &profile_payload("o_mallory")),
            Some(&alice.token),
        )
        .await;
    assert_problem(response, 422, "openid_mismatch").await;
    let me: Value = app.me(&alice.token).await.json().await.unwrap();
    assert!(
        me["nickname"].is_null(),
        "nothing is saved from a refused payload"
    );
}

#[tokio::test]
async fn watermarks_of_another_app_too_old_from_the_future_or_missing_are_refused() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;
    let now = chrono::Utc::now().timestamp();
    // 30 s clear of the 600 s age and 300 s future limits: a loaded machine may take a
    // second or more between here and the service's check.
    for mark in [
        Some(json!({"appid": "wxsomeoneelse00000", "timestamp": now})),
        Some(json!({"appid": APPID, "timestamp": now - 630})),
        Some(json!({"appid": APPID, "timestamp": now + 330})),
        None,
    ] {
        let mut payload = phone_payload(json!("86"));
        match mark {
            Some(mark) => payload["watermark"] = mark,
            None => {
                payload.as_object_mut().unwrap().remove("watermark");
            }
        }
        let response = app
            .post_json(
                PHONE,
                &app.seal(&alice.openid, &payload),
                Some(&alice.token),
            )
            .await;
        assert_problem(response, 422, "watermark_mismatch").await;
    }
    let me: Value = app.me(&alice.token).await.json().await.unwrap();
    assert!(me["phone_number"].is_null());
}

#[tokio::test]
async fn a_zero_max_age_turns_off_the_timestamp_checks_but_not_the_appid_check() {
    let app = spawn_app_with(&[("WECHAT_WATERMARK_MAX_AGE_SECS", "0")]).await;
    let alice = logged_in(&app).await;
    let mut payload = phone_payload(json!("86"));
    payload["watermark"] = json!({"appid": APPID, "timestamp": 1_477_314_187});
    let old = app
        .post_json(
            PHONE,
            &app.seal(&alice.openid, &payload),
            Some(&alice.token),
        )
        .await;
    assert_eq!(old.status().as_u16(), 200);
    payload["watermark"] = json!({"appid": "wxsomeoneelse00000", "timestamp": 1_477_314_187});
    let foreign = app
        .post_json(
            PHONE,
            &app.seal(&alice.openid, &payload),
            Some(&alice.token),
        )
        .await;
    assert_problem(foreign, 422, "watermark_mismatch").await;
}

#[tokio::test]
async fn every_decrypt_failure_gets_the_same_status_code_and_text() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;
    let key = app.wechat.session_key(&alice.openid);
    let sealed_bytes =
        |bytes: &[u8]| sealed_body(&wechat_auth::crypto::encrypt_payload(&key, bytes));
    let valid = app.seal(&alice.openid, &phone_payload(json!("86")));
    let mut wrong_iv = valid.clone();
    wrong_iv["iv"] = json!("AAAAAAAAAAAAAAAAAAAAAA==");

    let cases = [
        (
            "wrong key",
            seal_with(&SessionKey::generate(), &phone_payload(json!("86"))),
        ),
        ("wrong iv breaks the padding", wrong_iv),
        ("not utf-8", sealed_bytes(&[0xff, 0xfe, 0xfd])),
        ("not json", sealed_bytes(b"phone=13800138000")),
        (
            "json of another shape",
            sealed_bytes(br#"{"hello":"world"}"#),
        ),
        (
            "not whole blocks",
            json!({"encrypted_data": "AAAAAAAAAAAAAAAAAAAA", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        ),
    ];
    let mut details = Vec::new();
    for (case, body) in cases {
        let response = app.post_json(PHONE, &body, Some(&alice.token)).await;
        assert_eq!(response.status().as_u16(), 422, "{case}");
        let problem = assert_problem(response, 422, "decrypt_failed").await;
        details.push((
            problem["title"].clone(),
            problem["detail"].clone(),
            problem["type"].clone(),
        ));
    }
    details.dedup();
    assert_eq!(details.len(), 1, "answers differ: {details:?}");
}

#[tokio::test]
async fn format_errors_are_invalid_requests_found_before_decryption() {
    let app = spawn_app().await;
    let alice = logged_in(&app).await;
    let good_iv = "r7BXXKkLb8qrSNn05n0qiA==";
    for body in [
        json!({"encrypted_data": "not base64!", "iv": good_iv}),
        json!({"encrypted_data": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAA"}),
        json!({"encrypted_data": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "%%%%"}),
        json!({"encrypted_data": "", "iv": good_iv}),
        json!({"encrypted_data": "A".repeat(20_000), "iv": good_iv}),
        json!({"encrypted_data": "AAAA AAAA", "iv": good_iv}),
        json!({"iv": good_iv}),
        json!({"encrypted_data": "AAAAAAAAAAAAAAAAAAAAAA=="}),
    ] {
        for path in [PHONE, USER_INFO] {
            let response = app.post_json(path, &body, Some(&alice.token)).await;
            assert_problem(response, 400, "invalid_request").await;
        }
    }
}
