//! Web authorisation of the Official Account (网页授权) and the website's QR login share
//! one OAuth API: a code for an access token, and that token for the profile.

use serde::Deserialize;

use super::{WeChatClient, WeChatError};
use crate::domain::{App, AppId, JsCode, OpenId, UnionId};

/// WeChat's per-user web token. We use it once for `sns/userinfo` and forget it: it is
/// never stored, logged or printed (no `Debug`).
pub struct WebAccessToken(String);

/// What `sns/oauth2/access_token` says about the person behind a code.
pub struct OAuthGrant {
    pub access_token: WebAccessToken,
    pub openid: OpenId,
    pub scope: String,
    pub unionid: Option<UnionId>,
    /// A snapshot page's (朋友圈快照页) virtual user: its ids are not a person's.
    pub is_snapshot_user: bool,
}

impl OAuthGrant {
    /// Whether the scope lets us read the profile (`snsapi_userinfo`, `snsapi_login`).
    pub fn allows_profile(&self) -> bool {
        self.scope
            .split(',')
            .any(|scope| matches!(scope.trim(), "snsapi_userinfo" | "snsapi_login"))
    }
}

/// The profile fields we keep from `sns/userinfo`.
pub struct OAuthProfile {
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub unionid: Option<UnionId>,
}

#[derive(Deserialize)]
struct GrantWire {
    access_token: String,
    openid: String,
    #[serde(default)]
    scope: String,
    unionid: Option<String>,
    #[serde(default)]
    is_snapshotuser: i64,
}

#[derive(Deserialize)]
struct ProfileWire {
    nickname: Option<String>,
    headimgurl: Option<String>,
    unionid: Option<String>,
}

/// WeChat sends empty strings for fields it no longer fills in.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn parse_unionid(raw: Option<&str>, api: &str) -> Result<Option<UnionId>, WeChatError> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => UnionId::parse(raw)
            .map(Some)
            .map_err(|_| WeChatError::BadAnswer(format!("{api} returned a malformed unionid"))),
    }
}

impl WeChatClient {
    /// `sns/oauth2/access_token`: trades the code the browser brought back.
    pub async fn oauth_access_token(&self, code: &JsCode) -> Result<OAuthGrant, WeChatError> {
        let url = format!("{}/sns/oauth2/access_token", self.base_url);
        let wire: GrantWire = self
            .call("oauth2_access_token", || {
                self.http.get(&url).query(&[
                    ("appid", self.appid.as_str()),
                    ("secret", self.secret.expose()),
                    ("code", code.as_str()),
                    ("grant_type", "authorization_code"),
                ])
            })
            .await?;
        let bad =
            |what: &str| WeChatError::BadAnswer(format!("oauth2/access_token returned {what}"));
        if wire.access_token.is_empty() {
            return Err(bad("no access_token"));
        }
        Ok(OAuthGrant {
            access_token: WebAccessToken(wire.access_token),
            openid: OpenId::parse(&wire.openid).map_err(|_| bad("a malformed openid"))?,
            scope: wire.scope,
            unionid: parse_unionid(wire.unionid.as_deref(), "oauth2/access_token")?,
            is_snapshot_user: wire.is_snapshotuser == 1,
        })
    }

    /// `sns/userinfo`: the profile the person consented to share.
    pub async fn oauth_userinfo(
        &self,
        token: &WebAccessToken,
        openid: &OpenId,
    ) -> Result<OAuthProfile, WeChatError> {
        let url = format!("{}/sns/userinfo", self.base_url);
        let wire: ProfileWire = self
            .call("userinfo", || {
                self.http.get(&url).query(&[
                    ("access_token", token.0.as_str()),
                    ("openid", openid.as_str()),
                    ("lang", "zh_CN"),
                ])
            })
            .await?;
        Ok(OAuthProfile {
            nickname: non_empty(wire.nickname),
            avatar_url: non_empty(wire.headimgurl),
            unionid: parse_unionid(wire.unionid.as_deref(), "userinfo")?,
        })
    }
}

/// WeChat's authorise page for `app`: the OA's `connect/oauth2/authorize` (inside WeChat)
/// or the website's `connect/qrconnect` (a QR code on a computer). Parameters in WeChat's
/// order, and the `#wechat_redirect` WeChat requires.
pub fn authorize_url(
    open_base: &str,
    app: App,
    appid: &AppId,
    redirect_uri: &str,
    scope: &str,
    state: &str,
) -> String {
    let page = match app {
        App::Website => "connect/qrconnect",
        App::Miniprogram | App::OfficialAccount => "connect/oauth2/authorize",
    };
    let encode =
        |value: &str| url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    format!(
        "{open_base}/{page}?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
        encode(appid.as_str()),
        encode(redirect_uri),
        encode(scope),
        encode(state),
    )
}
