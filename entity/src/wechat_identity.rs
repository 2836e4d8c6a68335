//! One WeChat app's view of a user: (appid, openid), and for the mini program its current
//! session_key.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "wechat_identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// `miniprogram`, `official_account` or `website`.
    pub app: String,
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    /// Sealed under the key named by `session_key_kid`; NULL kid: a plaintext value from
    /// before sealing, sealed by the service at start. Only mini-program identities have one.
    pub session_key: Option<StoredSessionKey>,
    pub session_key_kid: Option<String>,
    /// When WeChat handed the current key out (µs since the epoch): a slower, older
    /// exchange must never overwrite a newer key.
    pub session_key_exchanged_us: i64,
    /// The key this one replaced, tried for a grace period after a re-login.
    pub previous_session_key: Option<StoredSessionKey>,
    pub previous_session_key_kid: Option<String>,
    pub previous_session_key_exchanged_us: Option<i64>,
    pub session_key_updated_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: HasOne<super::user::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}

/// The session_key column. Its `Debug` is hand-written so that a model printed with `{:?}`
/// never carries the key into a log line.
#[derive(Clone, PartialEq, Eq, DeriveValueType)]
pub struct StoredSessionKey(pub String);

impl std::fmt::Debug for StoredSessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredSessionKey([redacted])")
    }
}
