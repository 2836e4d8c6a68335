//! Access-token hot paths: issuing at login/refresh and verifying on every authenticated
//! request, for each supported algorithm (HS256, ES256, EdDSA).
//!
//! `cargo bench --bench tokens`

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use wechat_auth::{
    config::{JwtSettings, KeyFile, Secret, SigningKey},
    domain::{SessionId, UserId},
    token::AccessTokens,
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn settings(signing_key: SigningKey) -> JwtSettings {
    JwtSettings {
        signing_key,
        retired_public_keys: Vec::new(),
        issuer: "wechat-auth".to_owned(),
        audience: "wechat-miniprogram".to_owned(),
        access_token_ttl: Duration::from_secs(7200),
    }
}

fn key_file(name: &str) -> KeyFile {
    KeyFile {
        variable: "JWT_PRIVATE_KEY_FILE",
        path: name.to_owned(),
        pem: Secret::new(fixture(name)),
    }
}

fn tokens(c: &mut Criterion) {
    let algorithms = [
        (
            "HS256",
            SigningKey::Hs256(Secret::new("bench-jwt-secret-0123456789abcdef0123")),
        ),
        ("ES256", SigningKey::Es256(key_file("es256-a.pem"))),
        ("EdDSA", SigningKey::EdDsa(key_file("ed25519-a.pem"))),
    ];
    let (user, session) = (UserId::generate(), SessionId::generate());
    for (name, signing_key) in algorithms {
        let tokens = AccessTokens::new(&settings(signing_key)).expect("usable key");
        c.bench_function(&format!("jwt/{name} issue"), |b| {
            b.iter(|| tokens.issue(black_box(user), black_box(session)).unwrap())
        });
        let token = tokens.issue(user, session).unwrap().token;
        c.bench_function(&format!("jwt/{name} verify"), |b| {
            b.iter(|| tokens.verify(black_box(&token)).unwrap())
        });
    }
}

criterion_group!(benches, tokens);
criterion_main!(benches);
