use crate::{
    domain::{AppId, JsCode, UserId},
    store::{NewSession, Store, UserRecord},
    token::{AccessTokens, IssuedToken},
    wechat::WeChatClient,
};

use super::ServiceError;

/// Login and authentication: turns a `wx.login` code into our token, and our token back
/// into a user.
#[derive(Clone)]
pub struct AuthService {
    wechat: WeChatClient,
    store: Store,
    tokens: AccessTokens,
}

pub struct LoginOutcome {
    pub access_token: IssuedToken,
    pub new_user: bool,
    pub user: UserRecord,
}

impl AuthService {
    pub fn new(wechat: WeChatClient, store: Store, tokens: AccessTokens) -> Self {
        Self {
            wechat,
            store,
            tokens,
        }
    }

    fn appid(&self) -> &AppId {
        self.wechat.appid()
    }

    pub async fn login(&self, code: &JsCode) -> Result<LoginOutcome, ServiceError> {
        let session = self.wechat.code_to_session(code).await?;
        let record = self
            .store
            .record_login(&NewSession {
                appid: self.appid(),
                openid: &session.openid,
                session_key: &session.session_key,
                unionid: session.unionid.as_ref(),
            })
            .await?;
        let access_token = self
            .tokens
            .issue(record.user.id, crate::domain::SessionId::generate())?;
        tracing::info!(user_id = %record.user.id, new_user = record.new_user, "login");
        Ok(LoginOutcome {
            access_token,
            new_user: record.new_user,
            user: record.user,
        })
    }

    /// The user a bearer token speaks for. Every failure is the same `Unauthenticated`.
    pub fn authenticate(&self, bearer_token: &str) -> Result<UserId, ServiceError> {
        Ok(self.tokens.verify(bearer_token)?.user_id)
    }

    pub async fn current_user(&self, id: UserId) -> Result<UserRecord, ServiceError> {
        self.store
            .find_user(id, self.appid())
            .await?
            .ok_or_else(|| {
                ServiceError::Unauthenticated("the token's user no longer exists".to_owned())
            })
    }
}
