//! The admin API over HTTP, as the CLI uses it.

use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::Value;

pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

/// An answer of the API: its status and JSON body (`{"error": ...}` on a 4xx).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn error(&self) -> String {
        self.body["error"]
            .as_str()
            .map_or_else(|| self.body.to_string(), str::to_owned)
    }
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout(Duration::from_secs(120))
                .build(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// Sends a request; a transport failure (no host, timeout) is an error, an HTTP status is
    /// an [`Answer`].
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Answer> {
        let request = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(error) => {
                return Err(anyhow!(error)).with_context(|| format!("{method} {path}"));
            }
        };
        let status = response.status();
        let text = response
            .into_string()
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    /// Asks one cheap authenticated question, so a wrong token or URL is reported before a
    /// file is sent (a host refusing a large body early may reset the connection instead
    /// of letting the 401 be read).
    pub fn check_token(&self) -> anyhow::Result<()> {
        let answer = self.call("GET", "/v1/audit?since=0&limit=1", None)?;
        match answer.status {
            200 => Ok(()),
            401 => Err(anyhow!("HTTP 401: {} (check --token)", answer.error())),
            status => Err(anyhow!("HTTP {status}: {}", answer.error())),
        }
    }
}
