//! How the suite reaches what the WebSocket does not give: publishing an event (the reference
//! `POST /api/publish`, or [`Target::publish_cmd`]), minting a client token (HS256 with
//! [`Target::secret`], or [`Target::token_cmd`]), plain HTTP requests to the reference API, and
//! shell commands.

use crate::conn::Fail;
use crate::Target;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

/// Publishes one event; its seq.
///
/// # Errors
/// A failed request or command, or an answer without a seq.
pub async fn publish(t: &Target, channel: &str, event: &str, data: Value) -> Result<u64, Fail> {
    publish_body(t, json!({"channel": channel, "event": event, "data": data})).await
}

/// Publishes `body` (`{"channel","event","data"}`, maybe with `idempotency_key`); the seq.
///
/// # Errors
/// As [`publish`].
pub async fn publish_body(t: &Target, body: Value) -> Result<u64, Fail> {
    let answer = publish_answer(t, body).await?;
    answer["seq"].as_u64().or_else(|| answer.as_u64()).ok_or_else(|| format!("no seq in {answer}"))
}

/// Publishes `body`; the whole answer (`{"seq","delivered",…}`, or what the command printed).
///
/// # Errors
/// A failed request or command.
pub async fn publish_answer(t: &Target, body: Value) -> Result<Value, Fail> {
    if let Some(cmd) = &t.publish_cmd {
        let out = shell(cmd, &body.to_string()).await?;
        return serde_json::from_str(out.trim())
            .map_err(|e| format!("--publish-cmd printed {out:?}, not a seq or JSON: {e}"));
    }
    let key = format!("Bearer {}", t.publish_key.as_deref().unwrap_or_default());
    let (status, text) =
        http(t, "POST", "/api/publish", Some(&key), Some(&body.to_string())).await?;
    if status / 100 != 2 {
        return Err(format!("POST /api/publish {body}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("POST /api/publish: {e}: {text}"))
}

/// A client token with `claims`.
///
/// # Errors
/// A failed command, or no way to mint tokens.
pub async fn mint(t: &Target, claims: Value) -> Result<String, Fail> {
    if let Some(cmd) = &t.token_cmd {
        let token = shell(cmd, &claims.to_string()).await?;
        return Ok(token.trim().to_owned());
    }
    let secret = t.secret.as_deref().ok_or("no --secret and no --token-cmd")?;
    Ok(hs256(secret, &claims))
}

/// An HS256 JWT of `claims` signed with `secret`.
pub fn hs256(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// Unix time `secs` seconds from now.
pub fn exp_in(secs: i64) -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0) + secs
}

/// A name no other run uses (`prefix` + a clock reading).
pub fn uniq(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    format!("{prefix}{}x{}", n % 1_000_000_000_000, N.fetch_add(1, Ordering::Relaxed))
}

/// One HTTP request to the reference API at `path`: status and body.
///
/// # Errors
/// No HTTP base URL, or the hub cannot be reached.
pub async fn http(
    t: &Target,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), Fail> {
    let base = t.http.as_deref().ok_or("no --http")?;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let (method, auth, body) =
        (method.to_owned(), auth.map(str::to_owned), body.map(str::to_owned));
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build()
            .into();
        let resp = if method == "GET" {
            agent.get(&url).call()
        } else {
            let mut req = agent.post(&url).header("content-type", "application/json");
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            req.send(body.unwrap_or_default())
        };
        let mut resp = resp.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.body_mut().read_to_string().unwrap_or_default()))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Runs `cmd` with `sh -c`, `input` on its stdin: its stdout (status 0 required).
///
/// # Errors
/// The command could not run, failed, or took more than 30 s.
pub async fn shell(cmd: &str, input: &str) -> Result<String, Fail> {
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).await.map_err(|e| format!("{cmd}: stdin: {e}"))?;
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .map_err(|_| format!("{cmd}: no exit within 30 s"))?
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{cmd}: {}: {}", out.status, err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
