//! The few gateway calls the audit makes, as an admin.

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::report::AuditReport;

/// An admin session with a gateway.
pub struct Gateway {
    http: reqwest::Client,
    base: String,
    token: String,
}

#[derive(Deserialize)]
struct Session {
    token: String,
}

/// The useful part of an RFC 9457 problem answer.
#[derive(Deserialize)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
    code: Option<String>,
}

impl Problem {
    /// `invalid username or password (UNAUTHORIZED, HTTP 401)`.
    fn explain(self, status: reqwest::StatusCode) -> String {
        let text = self.detail.or(self.title).unwrap_or_default();
        match self.code {
            Some(code) => format!("{text} ({code}, HTTP {})", status.as_u16()),
            None => format!("{text} (HTTP {})", status.as_u16()),
        }
    }
}

impl Gateway {
    /// A session with the admin token `token`.
    pub fn with_token(base: &str, token: String) -> anyhow::Result<Gateway> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Gateway { http, base: base.trim_end_matches('/').to_owned(), token })
    }

    /// Logs in as `username`.
    pub async fn login(base: &str, username: &str, password: &str) -> anyhow::Result<Gateway> {
        let mut gateway = Gateway::with_token(base, String::new())?;
        let request = gateway
            .http
            .post(gateway.url("/api/v1/users/login"))
            .json(&serde_json::json!({ "username": username, "password": password }));
        let session: Session = gateway.call(request, "logging in").await?;
        gateway.token = session.token;
        Ok(gateway)
    }

    /// The audit of every goods, or of `goods_id` only.
    pub async fn audit(&self, goods_id: Option<i64>) -> anyhow::Result<AuditReport> {
        let path = match goods_id {
            Some(id) => format!("/admin/v1/goods/{id}/audit"),
            None => "/admin/v1/audit".to_owned(),
        };
        let request = self.http.get(self.url(&path)).bearer_auth(&self.token);
        self.call(request, &format!("GET {path}")).await
    }

    /// The same gateway and admin, for the calls the sandbox's client makes (creating users).
    pub fn http(&self) -> crate::http::Http {
        crate::http::Http { client: self.http.clone(), base: self.base.clone(), admin: self.token.clone() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request`; a non-2xx answer becomes an error that says what the gateway said.
    async fn call<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<T> {
        let response =
            request.send().await.with_context(|| format!("{what}: no answer from the gateway at {}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.with_context(|| format!("{what}: unexpected answer"));
        }
        let body = response.text().await.unwrap_or_default();
        let explained = match serde_json::from_str::<Problem>(&body) {
            Ok(problem) => problem.explain(status),
            Err(_) => format!("HTTP {status}: {body}"),
        };
        anyhow::bail!("{what}: {explained}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_explained_by_its_detail_and_code() {
        let problem: Problem = serde_json::from_str(
            r#"{"type": "about:blank", "title": "Unauthorized", "status": 401,
                "detail": "invalid username or password", "code": "UNAUTHORIZED"}"#,
        )
        .unwrap();
        assert_eq!(
            problem.explain(reqwest::StatusCode::UNAUTHORIZED),
            "invalid username or password (UNAUTHORIZED, HTTP 401)"
        );
    }
}
