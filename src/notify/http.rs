//! One JSON POST with a bounded time (ureq, rustls, no async runtime).

use std::time::Duration;

use super::NotifyError;

/// `scheme://host[:port]` of a URL: webhook paths (Slack's in particular)
/// are secrets and never appear in errors or logs.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "<invalid URL>".into(),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}")
}

/// POSTs `body` as `application/json`; any 2xx answer is success.
pub(crate) fn post_json(url: &str, body: &[u8], timeout: Duration) -> Result<(), NotifyError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(NotifyError::Settings(format!(
            "webhook URL {} must start with https:// or http://",
            redact(url)
        )));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("opc-store/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut resp = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .map_err(|e| NotifyError::Http {
            url: redact(url),
            cause: e.to_string(),
        })?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = resp
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    Err(NotifyError::Status {
        url: redact(url),
        status,
        body: text.trim().chars().take(200).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secrets_in_urls_are_dropped() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            redact("http://user:pw@127.0.0.1:8080/x?token=1"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(redact("nonsense"), "<invalid URL>");
    }
}
