//! The sandbox's side of computer sign-in (`WECHAT_SANDBOX=true`): a simulated
//! `wxa/getwxacodeunlimit` whose "mini-program code" is a real QR code of the sandbox's
//! phone page, that phone page (a sandbox user scans, sees who asks, confirms or denies),
//! and a computer page that starts a sign-in and long-polls it.
//!
//! The PNG is written here (stored deflate blocks, no compression): a QR code of a short
//! URL is a few KB that way, and it spares the service an image library.

use poem::{
    IntoResponse, Response, Route, handler,
    http::StatusCode,
    web::{Data, Json, Path, Query},
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    api::problem::{ProblemCode, problem_response},
    domain::QrLoginId,
};

/// Pixels per QR module, and the quiet zone in modules around the code.
const MODULE_PX: usize = 8;
const QUIET_MODULES: usize = 4;

#[derive(Clone)]
struct PublicBase(String);

/// Adds `/wxa/getwxacodeunlimit`, `/computer` and `/qr-login/:id` to the sandbox's routes.
/// `public_base_url` is how browsers (and the phone) reach this service.
pub fn add_routes(route: Route, public_base_url: &str) -> Route {
    use poem::EndpointExt;
    let base = PublicBase(public_base_url.trim_end_matches('/').to_owned());
    route
        .at(
            "/wxa/getwxacodeunlimit",
            poem::post(getwxacodeunlimit).data(base),
        )
        .at("/computer", poem::get(computer_page))
        .at("/qr-login/:id", poem::get(phone_page))
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct CodeRequest {
    scene: Option<String>,
    page: Option<String>,
}

fn wechat_error(errcode: i64, errmsg: &str) -> Response {
    Response::builder()
        .content_type("application/json; charset=UTF-8")
        .body(json!({ "errcode": errcode, "errmsg": errmsg }).to_string())
}

/// Like WeChat's: image bytes on success, JSON errcode on failure. The sandbox's access
/// tokens live in the main simulator, so any non-empty token is taken here.
#[handler]
fn getwxacodeunlimit(
    Query(query): Query<TokenQuery>,
    body: poem::Result<Json<CodeRequest>>,
    base: Data<&PublicBase>,
) -> Response {
    if query.access_token.is_none_or(|token| token.is_empty()) {
        return wechat_error(41001, "access_token missing");
    }
    let Ok(Json(request)) = body else {
        return wechat_error(47001, "data format error");
    };
    let scene = request.scene.unwrap_or_default();
    if scene.is_empty() {
        return wechat_error(40169, "invalid length for scene");
    }
    if scene.len() > 32 || scene.contains('%') {
        return wechat_error(40169, "invalid scene");
    }
    if request.page.is_some_and(|page| page.starts_with('/')) {
        return wechat_error(41030, "invalid page");
    }
    match qr_png(format!("{}/sandbox/qr-login/{scene}", base.0.0).as_bytes()) {
        Some(png) => Response::builder().content_type("image/png").body(png),
        None => wechat_error(40169, "invalid scene"),
    }
}

/// A QR code of `data` as a black-on-white 1-bit PNG.
pub fn qr_png(data: &[u8]) -> Option<Vec<u8>> {
    let code = qrcode::QrCode::new(data).ok()?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_MODULES) * MODULE_PX;
    let row_bytes = side.div_ceil(8);
    let mut raw = Vec::with_capacity(side * (row_bytes + 1));
    for y in 0..side {
        raw.push(0); // filter: none
        let mut row = vec![0xffu8; row_bytes];
        let my = (y / MODULE_PX).checked_sub(QUIET_MODULES);
        for x in 0..side {
            let mx = (x / MODULE_PX).checked_sub(QUIET_MODULES);
            let dark = match (mx, my) {
                (Some(mx), Some(my)) if mx < modules && my < modules => {
                    colors[my * modules + mx] == qrcode::Color::Dark
                }
                _ => false,
            };
            if dark {
                row[x / 8] &= !(0x80 >> (x % 8));
            }
        }
        raw.extend_from_slice(&row);
    }
    let side = u32::try_from(side).ok()?;
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&[1, 0, 0, 0, 0]); // 1 bit, greyscale, deflate, no filter, no interlace
    let mut png = crate::wechat::PNG_SIGNATURE.to_vec();
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    Some(png)
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    png.extend_from_slice(&len.to_be_bytes());
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let mut crc = Crc32::default();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(&crc.finish().to_be_bytes());
}

/// A zlib stream of uncompressed ("stored") deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    const MAX_BLOCK: usize = 65_535;
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(MAX_BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// CRC-32 (ISO-HDLC), as PNG chunks carry it.
struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Self(0xffff_ffff)
    }
}

impl Crc32 {
    fn update(&mut self, data: &[u8]) {
        for byte in data {
            self.0 ^= u32::from(*byte);
            for _ in 0..8 {
                self.0 = if self.0 & 1 == 1 {
                    (self.0 >> 1) ^ 0xedb8_8320
                } else {
                    self.0 >> 1
                };
            }
        }
    }

    fn finish(&self) -> u32 {
        !self.0
    }
}

fn html(body: String) -> Response {
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .header("Cache-Control", "no-store")
        .body(body)
}

/// The computer: starts a sign-in, shows the code, long-polls, shows who signed in.
#[handler]
fn computer_page() -> Response {
    html(format!("{PAGE_HEAD}{COMPUTER_BODY}"))
}

/// The phone: a sandbox user "scans" sign-in `id`, sees who asks, confirms or denies.
#[handler]
fn phone_page(Path(id): Path<String>) -> Response {
    let Ok(id) = QrLoginId::parse(&id) else {
        return problem_response(ProblemCode::NotFound, "no such sign-in");
    };
    // The id is [A-Za-z0-9] only, so it is safe inside the script's string literal.
    let body = PHONE_BODY.replace("__ID__", id.as_str());
    let mut response = html(format!("{PAGE_HEAD}{body}"));
    response.set_status(StatusCode::OK);
    response.into_response()
}

const PAGE_HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wechat-auth sandbox: computer sign-in</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; }
.warn { background: #fff3cd; padding: .5rem; border-radius: 4px; }
button { font-size: 1rem; padding: .4rem 1rem; margin-right: .5rem; }
pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; }
</style></head><body>
<p class="warn">SANDBOX: simulated WeChat, for local development only.</p>
"#;

const COMPUTER_BODY: &str = r#"<h1>Sign in on this computer</h1>
<p>Scan the code with the mini program (here: open the phone page), then confirm on the phone.</p>
<button id="start">Show a sign-in code</button>
<div id="code" hidden>
  <p><img id="image" alt="mini-program code" width="264" height="264"></p>
  <p>Phone page (what scanning opens): <a id="phone" target="_blank"></a></p>
</div>
<p>Status: <strong id="status">not started</strong></p>
<pre id="user" hidden></pre>
<script>
const $ = (id) => document.getElementById(id);
let run = 0;
$("start").onclick = async () => {
  const mine = ++run;
  $("user").hidden = true;
  const started = await fetch("/api/v1/qr-login", { method: "POST" });
  if (!started.ok) { $("status").textContent = "could not start: " + started.status; return; }
  const { id, secret } = await started.json();
  $("image").src = "/api/v1/qr-login/" + id + "/image";
  const phone = location.origin + "/sandbox/qr-login/" + id;
  $("phone").href = phone; $("phone").textContent = phone;
  $("code").hidden = false;
  $("status").textContent = "pending";
  // The secret goes only into this poll's query string, never into the image.
  const url = "/api/v1/qr-login/" + id + "?wait=25&secret=" + encodeURIComponent(secret);
  while (mine === run) {
    const answer = await fetch(url, { cache: "no-store" });
    if (!answer.ok) { $("status").textContent = "error " + answer.status; return; }
    const state = await answer.json();
    $("status").textContent = state.status;
    if (state.access_token) {
      const me = await fetch("/api/v1/me", { headers: { Authorization: "Bearer " + state.access_token } });
      $("user").textContent = JSON.stringify(await me.json(), null, 2);
      $("user").hidden = false;
      $("code").hidden = true;
    }
    if (["confirmed", "denied", "expired"].includes(state.status)) return;
  }
};
</script></body></html>"#;

const PHONE_BODY: &str = r#"<h1>Mini program: sign a computer in</h1>
<p><label>Sandbox user <input id="name" value="alice" autocomplete="off"></label>
<button id="scan">Scan</button></p>
<div id="ask" hidden>
  <p>A computer asks to sign in as you:</p>
  <pre id="who"></pre>
  <button id="confirm">Confirm</button><button id="deny">Deny</button>
</div>
<p>Status: <strong id="status">not scanned</strong></p>
<script>
const id = "__ID__";
const $ = (x) => document.getElementById(x);
let token = null;
const problem = async (r) => { try { const p = await r.json(); return p.code + ": " + p.detail; } catch { return "HTTP " + r.status; } };
$("scan").onclick = async () => {
  // The sandbox's wx.login: a code NAME-<random> signs sandbox user NAME in.
  const code = $("name").value.trim() + "-" + crypto.randomUUID().slice(0, 8);
  const login = await fetch("/api/v1/auth/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }) });
  if (!login.ok) { $("status").textContent = await problem(login); return; }
  token = (await login.json()).access_token;
  const scan = await fetch("/api/v1/qr-login/" + id + "/scan", { method: "POST", headers: { Authorization: "Bearer " + token } });
  if (!scan.ok) { $("status").textContent = await problem(scan); return; }
  const scanned = await scan.json();
  $("who").textContent = "IP: " + (scanned.requested_by.ip || "unknown") + "\nBrowser: " + (scanned.requested_by.user_agent || "unknown");
  $("ask").hidden = false;
  $("status").textContent = scanned.status;
};
const answer = (what) => async () => {
  const r = await fetch("/api/v1/qr-login/" + id + "/" + what, { method: "POST", headers: { Authorization: "Bearer " + token } });
  $("status").textContent = r.ok ? (await r.json()).status : await problem(r);
  $("ask").hidden = true;
};
$("confirm").onclick = answer("confirm");
$("deny").onclick = answer("deny");
</script></body></html>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_is_well_formed() {
        let png = qr_png(b"http://127.0.0.1:8080/sandbox/qr-login/abcdefghijklmnop").unwrap();
        assert!(png.starts_with(crate::wechat::PNG_SIGNATURE));
        assert_eq!(&png[12..16], b"IHDR");
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]), "IEND's CRC");
    }

    #[test]
    fn crc32_matches_the_check_value() {
        let mut crc = Crc32::default();
        crc.update(b"123456789");
        assert_eq!(crc.finish(), 0xcbf4_3926);
    }
}
