use std::{sync::Arc, time::Duration};

use serde::Deserialize;

use crate::{
    crypto,
    domain::{self, AppId, EncryptedPayload, JsCode, SessionKey, UnionId, UserId},
    store::{ProfileUpdate, SessionKeys, Store},
    wechat::{AccessToken, WeChatClient, WeChatError},
};

use super::{PrincipalCache, ServiceError, access_token::WeChatAccessTokens};

/// A watermark stamped this far in the future means a wrong clock or a forged payload.
const MAX_WATERMARK_SKEW_SECS: i64 = 300;

/// The user's WeChat data: decrypts what the mini program received, or asks WeChat's
/// server APIs, and saves the result on the user.
#[derive(Clone)]
pub struct ProfileService {
    store: Store,
    wechat: WeChatClient,
    access_tokens: WeChatAccessTokens,
    appid: AppId,
    watermark_max_age: Option<Duration>,
    principals: Arc<PrincipalCache>,
}

pub struct PhoneNumber {
    pub phone_number: String,
    pub pure_phone_number: String,
    pub country_code: String,
}

pub struct UserInfo {
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub gender: Option<i64>,
    pub country: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub language: Option<String>,
    pub unionid: Option<String>,
}

/// getUserInfo's `rawData` with its `signature`, exactly as the client received them.
pub struct SignedRawData {
    pub raw_data: String,
    pub signature: String,
}

#[derive(Deserialize)]
struct Watermark {
    appid: String,
    timestamp: i64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CountryCode {
    Text(String),
    Number(u64),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhonePayload {
    phone_number: String,
    pure_phone_number: String,
    country_code: CountryCode,
    watermark: Option<Watermark>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserInfoPayload {
    open_id: Option<String>,
    nick_name: Option<String>,
    avatar_url: Option<String>,
    gender: Option<i64>,
    country: Option<String>,
    province: Option<String>,
    city: Option<String>,
    language: Option<String>,
    union_id: Option<String>,
    watermark: Option<Watermark>,
}

impl ProfileService {
    pub fn new(
        store: Store,
        wechat: WeChatClient,
        watermark_max_age: Option<Duration>,
        principals: Arc<PrincipalCache>,
    ) -> Self {
        Self {
            principals,
            access_tokens: WeChatAccessTokens::new(wechat.clone(), store.clone()),
            appid: wechat.appid().clone(),
            store,
            wechat,
            watermark_max_age,
        }
    }

    /// The phone number behind getPhoneNumber's `e.detail.code`, via
    /// `wxa/business/getuserphonenumber`; saved like a decrypted one.
    pub async fn save_phone_number_by_code(
        &self,
        user: UserId,
        code: &JsCode,
    ) -> Result<PhoneNumber, ServiceError> {
        // The number is saved for the caller's mini-program identity, as a decrypted one is.
        self.session_keys(user).await?;
        let info = self
            .with_access_token(|token| async move { self.wechat.phone_number(&token, code).await })
            .await?;
        let watermark = info
            .watermark
            .and_then(|value| serde_json::from_value::<Watermark>(value).ok());
        self.check_watermark(watermark.as_ref())?;
        let country_code = match info.country_code {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(number) => number.to_string(),
            _ => {
                return Err(WeChatError::BadAnswer(
                    "getuserphonenumber returned no countryCode".to_owned(),
                )
                .into());
            }
        };
        let e164 = domain::PhoneNumber::from_wechat(&country_code, &info.pure_phone_number).ok();
        self.store
            .save_phone_number(user, &info.phone_number, e164.as_ref())
            .await?;
        self.principals.forget_user(user);
        Ok(PhoneNumber {
            phone_number: info.phone_number,
            pure_phone_number: info.pure_phone_number,
            country_code,
        })
    }

    /// Whether WeChat still holds the stored session_key (`wxa/checksession`); `false`
    /// means the mini program should call `wx.login` again.
    pub async fn check_session(&self, user: UserId) -> Result<bool, ServiceError> {
        let keys = self.session_keys(user).await?;
        let signature = crypto::login_state_signature(&keys.current, b"");
        let (openid, signature) = (&keys.openid, signature.as_str());
        self.with_access_token(|token| async move {
            self.wechat.check_session(&token, openid, signature).await
        })
        .await
    }

    /// Runs a call that needs the access_token; when WeChat rejects the token (40001,
    /// 42001) it is replaced once and the call repeated.
    async fn with_access_token<T, F, Fut>(&self, call: F) -> Result<T, ServiceError>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: std::future::Future<Output = Result<T, WeChatError>>,
    {
        let token = self.access_tokens.current().await?;
        match call(token.clone()).await {
            Err(WeChatError::AccessTokenRejected(errcode)) => {
                tracing::warn!(errcode, "WeChat rejected the access_token; refreshing once");
                let replacement = self.access_tokens.replace_rejected(&token).await?;
                Ok(call(replacement).await?)
            }
            other => Ok(other?),
        }
    }

    pub async fn save_phone_number(
        &self,
        user: UserId,
        payload: &EncryptedPayload,
    ) -> Result<PhoneNumber, ServiceError> {
        let keys = self.session_keys(user).await?;
        let (phone, _): (PhonePayload, _) = open(&keys, payload)?;
        self.check_watermark(phone.watermark.as_ref())?;
        let country_code = match phone.country_code {
            CountryCode::Text(text) => text,
            CountryCode::Number(number) => number.to_string(),
        };
        let e164 = domain::PhoneNumber::from_wechat(&country_code, &phone.pure_phone_number).ok();
        self.store
            .save_phone_number(user, &phone.phone_number, e164.as_ref())
            .await?;
        self.principals.forget_user(user);
        Ok(PhoneNumber {
            phone_number: phone.phone_number,
            pure_phone_number: phone.pure_phone_number,
            country_code,
        })
    }

    pub async fn save_user_info(
        &self,
        user: UserId,
        payload: &EncryptedPayload,
        signed: Option<&SignedRawData>,
    ) -> Result<UserInfo, ServiceError> {
        let keys = self.session_keys(user).await?;
        let (info, key): (UserInfoPayload, _) = open(&keys, payload)?;
        // rawData was signed with the same session_key that sealed the payload.
        if let Some(signed) = signed
            && !crypto::raw_data_signature_matches(&signed.raw_data, key, &signed.signature)
        {
            return Err(ServiceError::SignatureMismatch);
        }
        self.check_watermark(info.watermark.as_ref())?;
        // getUserProfile payloads carry no openId; when one is present it must be the caller's.
        if info
            .open_id
            .as_deref()
            .is_some_and(|id| id != keys.openid.as_str())
        {
            return Err(ServiceError::OpenIdMismatch);
        }
        let unionid = non_empty(info.union_id);
        let (kept, removed) = self
            .store
            .save_profile(
                user,
                &ProfileUpdate {
                    nickname: non_empty(info.nick_name.clone()),
                    avatar_url: non_empty(info.avatar_url.clone()),
                    unionid: unionid.as_deref().and_then(|u| UnionId::parse(u).ok()),
                },
            )
            .await?;
        self.principals.forget_user(kept);
        if let Some(removed) = removed {
            self.principals.forget_user(removed);
        }
        Ok(UserInfo {
            nickname: info.nick_name,
            avatar_url: info.avatar_url,
            gender: info.gender,
            country: info.country,
            province: info.province,
            city: info.city,
            language: info.language,
            unionid,
        })
    }

    async fn session_keys(&self, user: UserId) -> Result<SessionKeys, ServiceError> {
        self.store
            .session_keys(user, &self.appid)
            .await?
            .ok_or(ServiceError::MiniprogramRequired)
    }

    fn check_watermark(&self, watermark: Option<&Watermark>) -> Result<(), ServiceError> {
        let watermark = watermark.ok_or(ServiceError::WatermarkMismatch("missing watermark"))?;
        if watermark.appid != self.appid.as_str() {
            return Err(ServiceError::WatermarkMismatch("issued for another appid"));
        }
        if let Some(max_age) = self.watermark_max_age {
            let age = chrono::Utc::now().timestamp() - watermark.timestamp;
            if age > i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX) {
                return Err(ServiceError::WatermarkMismatch("too old"));
            }
            if age < -MAX_WATERMARK_SKEW_SECS {
                return Err(ServiceError::WatermarkMismatch(
                    "timestamp is in the future",
                ));
            }
        }
        Ok(())
    }
}

/// Decrypts and parses a payload with the current session_key, then with the one it
/// replaced while that is still in its grace period. Returns the key that worked.
/// A payload that decrypts but is not the expected JSON is reported exactly like one that
/// does not decrypt.
fn open<'k, T: serde::de::DeserializeOwned>(
    keys: &'k SessionKeys,
    payload: &EncryptedPayload,
) -> Result<(T, &'k SessionKey), ServiceError> {
    let open_with = |key: &SessionKey| {
        crypto::decrypt_payload(key, payload)
            .ok()
            .and_then(|plaintext| serde_json::from_str(&plaintext).ok())
    };
    std::iter::once(&keys.current)
        .chain(keys.previous.as_ref())
        .find_map(|key| open_with(key).map(|value| (value, key)))
        .ok_or_else(|| crypto::DecryptError.into())
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}
