//! Hot paths of the crypto module: WeChat payload decryption, the rawData and login-state
//! signatures, and the AES-GCM sealing of stored session_keys.
//!
//! `cargo bench --bench crypto`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wechat_auth::{
    crypto::{self, Sealer},
    domain::{EncryptedPayload, SessionKey},
};

/// WeChat's WXBizDataCrypt demo vector (the same one `src/crypto/wechat.rs` tests).
const SAMPLE_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
const SAMPLE_IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
const SAMPLE_DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";

/// The official rawData signature example.
const RAW_DATA: &str = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
const RAW_DATA_KEY: &str = "HyVFkGl5F5OQWJZZaNzBBg==";
const RAW_DATA_SIGNATURE: &str = "75e81ceda165f4ffa64f4068af58c64b8f54b88c";

const PHONE_PLAINTEXT: &str = r#"{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1700000000,"appid":"wxbench0123456789a"}}"#;

fn key(text: &str) -> SessionKey {
    SessionKey::parse(text).expect("a valid session_key")
}

fn payload_decrypt(c: &mut Criterion) {
    let sample_key = key(SAMPLE_KEY);
    let sample = EncryptedPayload::parse(SAMPLE_DATA, SAMPLE_IV).unwrap();
    c.bench_function("decrypt/official_sample (AES-128-CBC, 400 B)", |b| {
        b.iter(|| crypto::decrypt_payload(black_box(&sample_key), black_box(&sample)).unwrap())
    });

    let phone_key = key(SAMPLE_KEY);
    let phone = crypto::encrypt_payload(&phone_key, PHONE_PLAINTEXT.as_bytes());
    let (data, iv) = (phone.encrypted_data_base64(), phone.iv_base64());
    c.bench_function("decrypt/phone_payload (AES-128-CBC, 160 B)", |b| {
        b.iter(|| crypto::decrypt_payload(black_box(&phone_key), black_box(&phone)).unwrap())
    });
    // What the endpoint does besides the database: strict base64, decrypt, parse JSON.
    c.bench_function("decrypt/phone_payload base64+decrypt+json", |b| {
        b.iter(|| {
            let payload = EncryptedPayload::parse(black_box(&data), black_box(&iv)).unwrap();
            let text = crypto::decrypt_payload(&phone_key, &payload).unwrap();
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        })
    });
}

fn signatures(c: &mut Criterion) {
    let raw_key = key(RAW_DATA_KEY);
    c.bench_function("signature/raw_data sha1 check (constant time)", |b| {
        b.iter(|| {
            assert!(crypto::raw_data_signature_matches(
                black_box(RAW_DATA),
                black_box(&raw_key),
                black_box(RAW_DATA_SIGNATURE),
            ))
        })
    });
    let state_key = key("o0q0otL8aEzpcZL/FT9WsQ==");
    c.bench_function("signature/login_state hmac-sha256", |b| {
        b.iter(|| crypto::login_state_signature(black_box(&state_key), black_box(b"")))
    });
}

fn sealing(c: &mut Criterion) {
    let sealer = Sealer::new(&[7; 32], &[[9; 32]]);
    let context = b"session_key\0wxbench0123456789a\0o_bench-user";
    let secret = SAMPLE_KEY.as_bytes();
    c.bench_function("sealer/seal session_key (AES-256-GCM + base64)", |b| {
        b.iter(|| sealer.seal(black_box(secret), black_box(context)))
    });
    let sealed = sealer.seal(secret, context);
    c.bench_function("sealer/open session_key (AES-256-GCM + base64)", |b| {
        b.iter(|| sealer.open(black_box(&sealed), black_box(context)).unwrap())
    });
}

criterion_group!(benches, payload_decrypt, signatures, sealing);
criterion_main!(benches);
