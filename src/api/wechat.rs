use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{Object, OpenApi, payload::Json};

use super::{ApiTags, AppContext, JsonString, problem::ApiError, security::BearerAuth};
use crate::{
    domain::{EncryptedPayload, JsCode},
    service::{PhoneNumber, SignedRawData, UserInfo},
};

/// rawData is a few hundred bytes of JSON; anything this large is not from WeChat.
const MAX_RAW_DATA_LEN: usize = 8 * 1024;
const MAX_SIGNATURE_LEN: usize = 128;

pub struct WeChatApi;

/// Either `code` (today's getPhoneNumber) or `encrypted_data` with `iv` (the legacy one).
#[derive(Object)]
pub struct PhoneNumberRequest {
    /// `e.detail.code` from the getPhoneNumber button; exchanged with WeChat's
    /// `getuserphonenumber`.
    #[oai(
        nullable,
        validator(min_length = 1, max_length = 128, pattern = r"^[!-~]+$")
    )]
    code: Option<JsonString>,
    /// `e.detail.encryptedData` from the getPhoneNumber button (standard base64).
    #[oai(
        nullable,
        validator(
            min_length = 1,
            max_length = 16384,
            pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
        )
    )]
    encrypted_data: Option<JsonString>,
    /// `e.detail.iv` (standard base64 of 16 bytes).
    #[oai(nullable, validator(pattern = r"^[A-Za-z0-9+/]{21}[AQgw]==$"))]
    iv: Option<JsonString>,
}

#[derive(Object)]
pub struct SessionCheckResponse {
    /// `false`: WeChat no longer holds the stored session_key; call `wx.login` again.
    valid: bool,
}

#[derive(Object)]
pub struct PhoneNumberResponse {
    /// The number as WeChat gives it (with country code for foreign numbers).
    phone_number: String,
    /// The number without country code.
    pure_phone_number: String,
    /// Country calling code, always a string.
    country_code: String,
}

#[derive(Object)]
pub struct UserInfoRequest {
    /// `encryptedData` from getUserInfo / getUserProfile (standard base64).
    #[oai(validator(
        min_length = 1,
        max_length = 16384,
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    ))]
    encrypted_data: JsonString,
    /// `iv` (standard base64 of 16 bytes).
    #[oai(validator(pattern = r"^[A-Za-z0-9+/]{21}[AQgw]==$"))]
    iv: JsonString,
    /// `rawData`, exactly as received; requires `signature`.
    #[oai(nullable, validator(max_length = 8192))]
    raw_data: Option<JsonString>,
    /// `signature` = hex(sha1(rawData + session_key)); requires `raw_data`.
    #[oai(nullable, validator(max_length = 128))]
    signature: Option<JsonString>,
}

/// Every field is `null` when the payload lacks it.
#[derive(Object)]
pub struct UserInfoResponse {
    #[oai(nullable)]
    nickname: Option<String>,
    #[oai(nullable)]
    avatar_url: Option<String>,
    /// 0 unknown, 1 male, 2 female (as WeChat reports it).
    #[oai(nullable)]
    gender: Option<i64>,
    #[oai(nullable)]
    country: Option<String>,
    #[oai(nullable)]
    province: Option<String>,
    #[oai(nullable)]
    city: Option<String>,
    #[oai(nullable)]
    language: Option<String>,
    #[oai(nullable)]
    unionid: Option<String>,
}

impl From<PhoneNumber> for PhoneNumberResponse {
    fn from(phone: PhoneNumber) -> Self {
        Self {
            phone_number: phone.phone_number,
            pure_phone_number: phone.pure_phone_number,
            country_code: phone.country_code,
        }
    }
}

impl From<UserInfo> for UserInfoResponse {
    fn from(info: UserInfo) -> Self {
        Self {
            nickname: info.nickname,
            avatar_url: info.avatar_url,
            gender: info.gender,
            country: info.country,
            province: info.province,
            city: info.city,
            language: info.language,
            unionid: info.unionid,
        }
    }
}

fn parse_payload(encrypted_data: &str, iv: &str) -> Result<EncryptedPayload, ApiError> {
    EncryptedPayload::parse(encrypted_data, iv).map_err(|e| ApiError::invalid_request(e.0))
}

fn parse_signed_raw_data(
    raw_data: Option<String>,
    signature: Option<String>,
) -> Result<Option<SignedRawData>, ApiError> {
    match (raw_data, signature) {
        (None, None) => Ok(None),
        (Some(raw_data), Some(signature)) => {
            // Characters, as the OpenAPI document's maxLength counts them.
            if raw_data.chars().count() > MAX_RAW_DATA_LEN {
                return Err(ApiError::invalid_request(format!(
                    "raw_data must be at most {MAX_RAW_DATA_LEN} bytes"
                )));
            }
            if signature.chars().count() > MAX_SIGNATURE_LEN {
                return Err(ApiError::invalid_request(format!(
                    "signature must be at most {MAX_SIGNATURE_LEN} characters"
                )));
            }
            Ok(Some(SignedRawData {
                raw_data,
                signature,
            }))
        }
        _ => Err(ApiError::invalid_request(
            "raw_data and signature must be sent together or not at all",
        )),
    }
}

#[OpenApi(tag = "ApiTags::WeChat")]
impl WeChatApi {
    /// Save the user's phone number
    ///
    /// With `code`, asks WeChat (`getuserphonenumber`); with `encrypted_data` and `iv`,
    /// decrypts with the caller's session_key. Either way the watermark is checked and the
    /// number saved on the user.
    #[oai(
        path = "/api/v1/wechat/phone-number",
        method = "post",
        operation_id = "savePhoneNumber"
    )]
    async fn phone_number(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
        body: Json<PhoneNumberRequest>,
    ) -> Result<Json<PhoneNumberResponse>, ApiError> {
        let user = auth.0.user_id;
        let phone = match body.0 {
            PhoneNumberRequest {
                code: Some(code),
                encrypted_data: None,
                iv: None,
            } => {
                let code = JsCode::parse(&code.0).map_err(|e| ApiError::invalid_request(e.0))?;
                context
                    .profiles()?
                    .save_phone_number_by_code(user, &code)
                    .await?
            }
            PhoneNumberRequest {
                code: None,
                encrypted_data: Some(encrypted_data),
                iv: Some(iv),
            } => {
                let payload = parse_payload(&encrypted_data.0, &iv.0)?;
                context
                    .profiles()?
                    .save_phone_number(user, &payload)
                    .await?
            }
            _ => {
                return Err(ApiError::invalid_request(
                    "send either code, or encrypted_data with iv",
                ));
            }
        };
        Ok(Json(phone.into()))
    }

    /// Decrypt and save the user's profile
    ///
    /// Decrypts getUserInfo's `encryptedData`, verifies `signature` over `raw_data` when
    /// given, checks the watermark and the openId, and saves nickname, avatar and unionid.
    #[oai(
        path = "/api/v1/wechat/user-info",
        method = "post",
        operation_id = "saveUserInfo"
    )]
    async fn user_info(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
        body: Json<UserInfoRequest>,
    ) -> Result<Json<UserInfoResponse>, ApiError> {
        let body = body.0;
        let payload = parse_payload(&body.encrypted_data.0, &body.iv.0)?;
        let signed =
            parse_signed_raw_data(body.raw_data.map(|r| r.0), body.signature.map(|s| s.0))?;
        let info = context
            .profiles()?
            .save_user_info(auth.0.user_id, &payload, signed.as_ref())
            .await?;
        Ok(Json(info.into()))
    }

    /// Is the WeChat session still good?
    ///
    /// Asks WeChat (`wxa/checksession`) whether it still holds the stored session_key.
    /// `valid: false` means the mini program should call `wx.login` again.
    #[oai(
        path = "/api/v1/wechat/session/check",
        method = "post",
        operation_id = "checkSession"
    )]
    async fn check_session(
        &self,
        context: Data<&Arc<AppContext>>,
        auth: BearerAuth,
    ) -> Result<Json<SessionCheckResponse>, ApiError> {
        let valid = context.profiles()?.check_session(auth.0.user_id).await?;
        Ok(Json(SessionCheckResponse { valid }))
    }
}
