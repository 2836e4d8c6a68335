//! The sandbox's HTML: WeChat's consent page (Official Account), QR login page (website),
//! error page, the demo page at `/sandbox/` and the avatars `sns/userinfo` points at.
//! Everything that comes from a request or a setting is escaped on its way into HTML.

use std::{fmt::Write, sync::Arc};

use poem::{
    Response, handler,
    http::StatusCode,
    web::{Data, Path},
};
use sha2::{Digest, Sha256};

use super::{
    RESERVED_NAMES, Sandbox,
    oauth::{Authorization, Page, PageError, SNAPSHOT_NAME, Scope},
};
use crate::{
    api::problem::{ProblemCode, problem_response},
    domain::App,
};

/// The demo page: plain HTML and inline JavaScript, no build step.
const DEMO_PAGE: &str = include_str!("demo.html");

/// Names offered as one-click choices on WeChat's pages.
const QUICK_NAMES: [&str; 3] = ["alice", "bob", "carol"];

/// Text or an attribute value, safe inside HTML.
pub(super) fn escape(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `{base}/sandbox/avatar/{name}.svg`, the name percent-encoded as one path segment.
pub(super) fn avatar_url(public_base_url: &str, name: &str) -> String {
    let mut url = format!("{public_base_url}/sandbox/avatar/");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            let _ = write!(url, "%{byte:02X}");
        }
    }
    url.push_str(".svg");
    url
}

fn html(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header("Cache-Control", "no-store")
        // The page's own URL carries `state`; the next one carries a code or a ticket.
        .header("Referrer-Policy", "no-referrer")
        .header("X-Content-Type-Options", "nosniff")
        // A consent page inside someone else's frame is a clickjacking target.
        .header("X-Frame-Options", "DENY")
        .header("Content-Security-Policy", "frame-ancestors 'none'")
        .body(body)
}

fn document(title: &str, body_class: &str, main: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body class="{body_class}">
<div class="sandbox-bar">WeChat sandbox · a simulation for local development, not WeChat</div>
{main}
</body>
</html>
"#,
        title = escape(title),
    )
}

/// WeChat's answer to a malformed authorisation request: a page, never a redirect (the
/// site never hears of it). WeChat itself answers such pages with 200; the sandbox says
/// 400 so that scripts notice.
pub(super) fn error_page(error: &PageError) -> Response {
    let errcode = error
        .errcode
        .map(|code| format!(r#"<p class="errcode">errcode {code}</p>"#))
        .unwrap_or_default();
    let main = format!(
        r#"<main class="sheet error-page" id="wechat-error">
<h1>Oops! Something went wrong:(</h1>
{errcode}
<p class="errmsg">{message}</p>
<p>{explanation}</p>
<p class="muted">WeChat shows a page like this one instead of sending the browser back to the site.</p>
</main>"#,
        message = escape(error.message),
        explanation = escape(&error.explanation),
    );
    html(
        StatusCode::BAD_REQUEST,
        document("微信登录 · 错误", "wechat", &main),
    )
}

/// The consent page (Official Account) or the QR login page (website) for a well-formed
/// request. `name` is what the person typed last; `notice` why it was not accepted.
pub(super) fn authorization_page(
    request: &Authorization<'_>,
    name: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let status = if notice.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let name = name.unwrap_or(QUICK_NAMES[0]);
    let notice = notice
        .map(|notice| format!(r#"<p class="notice" id="notice">{}</p>"#, escape(notice)))
        .unwrap_or_default();
    let body = match request.page {
        Page::OAuth2 => consent_page(request, name, &notice),
        Page::QrConnect => qr_page(request, name, &notice),
    };
    html(status, body)
}

/// The hidden fields that send WeChat's parameters again with the person's choice.
fn hidden_fields(request: &Authorization<'_>) -> String {
    [
        ("appid", request.app.appid.as_str()),
        ("redirect_uri", request.raw_redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", request.scope.as_str()),
        ("state", request.state.as_str()),
    ]
    .iter()
    .map(|(key, value)| {
        format!(
            r#"<input type="hidden" name="{key}" value="{}">"#,
            escape(value)
        )
    })
    .collect()
}

/// One-click names: links that answer at once as that name allowing.
fn quick_names(request: &Authorization<'_>) -> String {
    let mut names: Vec<&str> = QUICK_NAMES.to_vec();
    if request.app.app == App::OfficialAccount {
        names.push(SNAPSHOT_NAME);
    }
    let link = |name: &str| {
        format!(
            r#"<a class="chip" href="?{}">{}</a>"#,
            escape(&request.query_with(&[("sandbox_user", name)])),
            escape(name)
        )
    };
    let people: String = names.iter().map(|name| link(name)).collect();
    let errors: String = RESERVED_NAMES.iter().map(|(name, ..)| link(name)).collect();
    format!(
        r#"<div class="quick"><span class="muted">One click:</span> {people}</div>
<details class="quick"><summary>Simulate a WeChat error at the code exchange</summary>{errors}
<p class="muted"><code>snapshot</code> is a snapshot page's virtual user (<code>is_snapshotuser: 1</code>).</p></details>"#
    )
}

fn name_field(name: &str) -> String {
    format!(
        r#"<input id="sandbox_user" name="sandbox_user" value="{}" maxlength="32" autocomplete="off" spellcheck="false" required>"#,
        escape(name)
    )
}

/// Where the answer goes, shown without its query (which may be long).
fn destination(request: &Authorization<'_>) -> String {
    let target = &request.redirect_uri;
    let port = target
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    escape(&format!(
        "{}://{}{port}{}",
        target.scheme(),
        target.host_str().unwrap_or_default(),
        target.path()
    ))
}

fn consent_page(request: &Authorization<'_>, name: &str, notice: &str) -> String {
    let (asks, allow_label) = match request.scope {
        Scope::UserInfo => (
            r#"<p class="asks">申请获得以下权限</p>
<ul class="scopes"><li>获得你的公开信息（昵称、头像等）<br><span class="muted">your public profile: nickname and avatar</span></li></ul>"#,
            "允许 Allow",
        ),
        _ => (
            r#"<p class="asks">静默授权 · silent sign-in (snsapi_base)</p>
<p class="muted">Inside WeChat nobody sees this page: the Official Account learns only your openid, without asking. The sandbox asks who you are.</p>"#,
            "继续 Continue",
        ),
    };
    let main = format!(
        r#"<main class="sheet" id="consent">
<div class="app-badge oa" aria-hidden="true">公</div>
<h1>Official Account</h1>
<p class="appid">{appid} · <code>{scope}</code></p>
{asks}
{notice}
<form method="get" action="" class="choose">
{hidden}
<label for="sandbox_user">Signing in as (sandbox user)</label>
{field}
{quick}
<div class="buttons">
<button type="submit" class="primary" id="allow" name="sandbox_action" value="allow">{allow_label}</button>
<button type="submit" class="secondary" id="deny" name="sandbox_action" value="deny" formnovalidate>拒绝 Deny</button>
</div>
</form>
<p class="where muted">Then WeChat sends the browser back to <code>{destination}</code></p>
</main>"#,
        appid = escape(request.app.appid.as_str()),
        scope = request.scope.as_str(),
        hidden = hidden_fields(request),
        field = name_field(name),
        quick = quick_names(request),
        destination = destination(request),
    );
    document("微信授权 · Official Account", "wechat", &main)
}

fn qr_page(request: &Authorization<'_>, name: &str, notice: &str) -> String {
    let seed = format!("{}\0{}", request.app.appid, request.state);
    let main = format!(
        r#"<main class="qr-panel" id="qrconnect">
<h1>微信登录</h1>
<div class="qr-code" id="qr-code" role="img" aria-label="QR code (simulated)">{qr}</div>
<p class="qr-hint">请使用微信扫描二维码登录<br><span class="muted">Scan with WeChat to sign in</span></p>
<p class="qr-app">“website app <code>{appid}</code>”</p>
<section class="scan">
<h2>Sandbox: be the phone that scans</h2>
{notice}
<form method="get" action="" class="choose">
{hidden}
<label for="sandbox_user">Scan as (sandbox user)</label>
{field}
{quick}
<div class="buttons">
<button type="submit" class="primary" id="allow" name="sandbox_action" value="allow">Scan and allow</button>
<button type="submit" class="secondary" id="deny" name="sandbox_action" value="deny" formnovalidate>Scan and deny</button>
</div>
</form>
<p class="where muted">Then WeChat sends this browser back to <code>{destination}</code></p>
</section>
</main>"#,
        qr = fake_qr_svg(&seed),
        appid = escape(request.app.appid.as_str()),
        hidden = hidden_fields(request),
        field = name_field(name),
        quick = quick_names(request),
        destination = destination(request),
    );
    document("微信登录 · QR login", "qr", &main)
}

/// Something that looks like a QR code (three finder squares, noise elsewhere), stable
/// for a request. It encodes nothing: there is no phone to scan it.
fn fake_qr_svg(seed: &str) -> String {
    const SIZE: usize = 29;
    let bits: Vec<u8> = (0u8..4)
        .flat_map(|round| Sha256::digest(format!("{round}\0{seed}").as_bytes()))
        .collect();
    // Each finder square: rings 0-1 dark, 2 light, 3 dark, 4 the light margin around it.
    let finder = |x: usize, y: usize| -> Option<bool> {
        [(0, 0), (SIZE - 7, 0), (0, SIZE - 7)]
            .into_iter()
            .find_map(|(fx, fy)| {
                let ring = x.abs_diff(fx + 3).max(y.abs_diff(fy + 3));
                (ring <= 4).then_some(ring <= 1 || ring == 3)
            })
    };
    let mut path = String::new();
    for y in 0..SIZE {
        for x in 0..SIZE {
            let index = y * SIZE + x;
            let dark = finder(x, y)
                .unwrap_or_else(|| bits[index / 8 % bits.len()] >> (index % 8) & 1 == 1);
            if dark {
                let _ = write!(path, "M{x} {y}h1v1h-1z");
            }
        }
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="-2 -2 {view} {view}" width="220" height="220" shape-rendering="crispEdges"><rect x="-2" y="-2" width="{view}" height="{view}" fill="#fff"/><path d="{path}" fill="#111"/></svg>"##,
        view = SIZE + 4
    )
}

#[handler]
pub(super) fn demo(sandbox: Data<&Arc<Sandbox>>) -> Response {
    let apps: String = sandbox
        .apps
        .iter()
        .map(|app| {
            format!(
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                escape(app.app.as_str()),
                escape(app.appid.as_str())
            )
        })
        .collect();
    let page = DEMO_PAGE
        .replace("{{PUBLIC_BASE_URL}}", &escape(&sandbox.public_base_url))
        .replace("{{APPS}}", &apps);
    html(StatusCode::OK, page)
}

/// A plain avatar for sandbox user NAME (`/sandbox/avatar/NAME.svg`): their initial on a
/// colour of their own.
#[handler]
pub(super) fn avatar(Path(file): Path<String>) -> Response {
    let Some(name) = file.strip_suffix(".svg").filter(|name| !name.is_empty()) else {
        return problem_response(
            ProblemCode::NotFound,
            "avatars are /sandbox/avatar/NAME.svg",
        );
    };
    let hue = u16::from_be_bytes({
        let digest = Sha256::digest(name.as_bytes());
        [digest[0], digest[1]]
    }) % 360;
    let initial: String = name
        .chars()
        .next()
        .into_iter()
        .flat_map(char::to_uppercase)
        .collect();
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="132" height="132" viewBox="0 0 132 132"><rect width="132" height="132" rx="14" fill="hsl({hue},55%,48%)"/><text x="66" y="66" dy=".35em" text-anchor="middle" font-family="system-ui,sans-serif" font-size="64" fill="#fff">{}</text></svg>"##,
        escape(&initial)
    );
    Response::builder()
        .content_type("image/svg+xml")
        .header("Cache-Control", "public, max-age=86400")
        .header("X-Content-Type-Options", "nosniff")
        // An SVG opened on its own is a document of our origin: it may run nothing.
        .header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        )
        .body(svg)
}

const STYLE: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "PingFang SC", "Microsoft YaHei", sans-serif; color: #1f2328; }
body.wechat { background: #ededed; }
body.qr { background: #f4f5f7; }
.sandbox-bar { background: #fff4e5; color: #8a5300; font-size: 12px; text-align: center; padding: 6px 12px; border-bottom: 1px solid #f3d9b1; }
.muted { color: #6a737d; font-size: 13px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; word-break: break-all; }
.sheet { max-width: 420px; margin: 24px auto; background: #fff; border-radius: 12px; padding: 28px 24px; text-align: center; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.sheet h1 { font-size: 20px; margin: 12px 0 2px; }
.appid { color: #6a737d; font-size: 13px; margin: 0 0 16px; }
.app-badge { width: 64px; height: 64px; border-radius: 14px; margin: 0 auto; display: flex; align-items: center; justify-content: center; color: #fff; font-size: 30px; background: #07c160; }
.asks { text-align: left; font-weight: 600; margin: 16px 0 8px; border-top: 1px solid #eee; padding-top: 16px; }
.scopes { text-align: left; padding-left: 20px; margin: 0 0 12px; }
.choose { text-align: left; margin-top: 16px; }
.choose label { display: block; font-size: 13px; color: #6a737d; margin-bottom: 4px; }
.choose input[type=text], .choose input:not([type]) { width: 100%; font: inherit; padding: 10px 12px; border: 1px solid #d0d7de; border-radius: 8px; }
.quick { margin: 10px 0; font-size: 13px; }
.quick summary { cursor: pointer; color: #6a737d; }
.chip { display: inline-block; margin: 4px 6px 0 0; padding: 2px 10px; border: 1px solid #d0d7de; border-radius: 999px; color: #1f2328; text-decoration: none; background: #fafafa; }
.chip:hover { border-color: #07c160; color: #07c160; }
.buttons { display: flex; flex-direction: column; gap: 10px; margin-top: 18px; }
button { font: inherit; font-size: 16px; padding: 11px; border-radius: 8px; border: 0; cursor: pointer; }
button.primary { background: #07c160; color: #fff; }
button.primary:hover { background: #06ad56; }
button.secondary { background: #f2f2f2; color: #1f2328; }
.where { margin-top: 18px; }
.notice { background: #fff1f0; color: #a8071a; border-radius: 8px; padding: 8px 12px; text-align: left; }
.error-page h1 { font-size: 22px; }
.errcode { font-family: ui-monospace, monospace; color: #a8071a; }
.errmsg { font-size: 17px; font-weight: 600; }
.qr-panel { max-width: 440px; margin: 32px auto; background: #fff; border-radius: 12px; padding: 28px; text-align: center; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.qr-panel h1 { font-size: 22px; margin: 0 0 16px; }
.qr-code { display: inline-block; padding: 8px; border: 1px solid #e5e7eb; border-radius: 4px; line-height: 0; }
.qr-hint { margin: 14px 0 4px; }
.qr-app { margin: 0 0 8px; color: #6a737d; font-size: 13px; }
.scan { margin-top: 18px; border-top: 1px dashed #d0d7de; padding-top: 14px; text-align: left; }
.scan h2 { font-size: 14px; margin: 0 0 8px; color: #8a5300; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape(r#"<script>alert('x')</script> & "q""#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn avatar_urls_encode_the_name_as_one_segment() {
        assert_eq!(
            avatar_url("http://h:1", "alice"),
            "http://h:1/sandbox/avatar/alice.svg"
        );
        assert_eq!(
            avatar_url("http://h", "a/b?张"),
            "http://h/sandbox/avatar/a%2Fb%3F%E5%BC%A0.svg"
        );
    }
}
