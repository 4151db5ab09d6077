//! One shape for a failed AWS call, whatever the service: the call (service, operation and
//! resource, or what the caller was doing), and what the service answered: its error code,
//! the HTTP status and its message. The Lambda, the CLIs and the xtask print it the same way,
//! and branch on [`AwsError::code`], never on the message text.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call} failed: {}", self.answer())]
pub struct AwsError {
    /// `S3 GetObject s3://bucket/key`, `SSM GetParameterHistory /name`, or what the caller
    /// was doing (`checking bucket b`).
    pub call: String,
    /// The service's error code (`AccessDenied`, `ThrottlingException`, `ParameterNotFound`).
    pub code: Option<String>,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The service's message, or what went wrong on the way (one line).
    pub message: String,
}

impl AwsError {
    /// `service operation resource` failed with `e`.
    pub fn new<E>(
        service: &str,
        operation: &str,
        resource: &str,
        e: &SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self::doing(&format!("{service} {operation} {resource}"), e)
    }

    /// The call described by what the caller was doing.
    pub fn doing<E>(call: &str, e: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        AwsError {
            call: call.to_owned(),
            code: e.code().map(str::to_owned),
            status: e.raw_response().map(|r| r.status().as_u16()),
            // A code without a message (a HEAD's answer has no body) says it all.
            message: match (e.message(), e.code()) {
                (Some(m), _) => m.to_owned(),
                (None, Some(_)) => String::new(),
                (None, None) => one_line(e),
            },
        }
    }

    /// A call that failed before (or after) AWS answered: no code, no status.
    pub fn local(call: &str, message: impl std::fmt::Display) -> Self {
        AwsError {
            call: call.to_owned(),
            code: None,
            status: None,
            message: message.to_string(),
        }
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// `Code: message`, or the message alone.
    fn answer(&self) -> String {
        match &self.code {
            Some(code) if self.message.is_empty() => code.clone(),
            Some(code) if !self.message.contains(code.as_str()) => {
                format!("{code}: {}", self.message)
            }
            _ => self.message.clone(),
        }
    }
}

/// An error and its sources on one line (the SDK's own context dump spans many).
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_call_the_code_and_the_message_on_one_line() {
        let e = AwsError {
            call: "S3 GetObject s3://b/k".to_owned(),
            code: Some("AccessDenied".to_owned()),
            status: Some(403),
            message: "Access Denied".to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "S3 GetObject s3://b/k failed: AccessDenied: Access Denied"
        );
        assert_eq!(
            AwsError::local("reading s3://b/k", "connection reset").to_string(),
            "reading s3://b/k failed: connection reset"
        );
    }
}
