//! Why a push (or a read of the archive) failed, classed from what the store answered
//! ([`PushError::exit_code`]): only what may pass by itself is temporary (exit 75: no
//! connection, a timeout, HTTP 5xx, 429, `SlowDown`); refused credentials, a bucket that does
//! not exist and an archive path that cannot be written are named, and trying again is left to
//! a person.

use crate::fsutil::PathError;
use crate::verify::VerifyError;

use super::Target;

/// Why a push (or a read of the archive) failed. [`PushError::exit_code`] classes it: only
/// what may pass by itself is temporary (exit 75, the spool left to be tried again); what
/// will not (refused credentials, a bucket that does not exist, an archive path that cannot
/// be written) names its cause and is exit 1 or 2.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    NotSealed(#[from] VerifyError),
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("archive key {key} already holds a different record; nothing was changed")]
    Conflict { key: String },
    #[error("the archived copy of {key} does not match the local seal after upload")]
    Mismatch { key: String },
    /// The archive could not be reached (connection refused or reset, a timeout, a name that
    /// did not resolve) or answered that it is failing or busy (HTTP 5xx, 429, `SlowDown`):
    /// this may pass by itself, so try again later.
    #[error("archive unreachable: {0}")]
    Unreachable(String),
    /// The archive refused the credentials (HTTP 401 or 403: an unknown key, a wrong secret,
    /// a key without access to the bucket).
    #[error("{archive} refused the credentials ({answer}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the key's access to the bucket")]
    Credentials { archive: String, answer: String },
    /// The bucket named by the target does not exist.
    #[error("the bucket {bucket:?} does not exist ({answer})")]
    NoBucket { bucket: String, answer: String },
    /// Any other failure of the archive that trying again will not mend, as it answered.
    #[error("{archive}: {answer}")]
    Refused { archive: String, answer: String },
    #[error("{key}: the archive did not keep the retention: {reason}")]
    RetentionNotKept { key: String, reason: String },
    #[error("cannot open the archive: {0}")]
    Setup(String),
}

/// EX_TEMPFAIL: a temporary failure; try again later.
pub const EXIT_TEMPORARY: u8 = 75;

impl PushError {
    /// The exit status this error calls for: [`EXIT_TEMPORARY`] (75) for what may pass by
    /// itself (the archive unreachable, failing or busy); [`crate::cli::EXIT_ERROR`] (2) when
    /// the archive cannot be used at all (it cannot be opened, the credentials are refused,
    /// the bucket does not exist), so no other record can go either; otherwise
    /// [`crate::cli::EXIT_FAILED`] (1): this record failed, the others may not.
    pub fn exit_code(&self) -> u8 {
        match self {
            PushError::Unreachable(_) => EXIT_TEMPORARY,
            PushError::Io(e) if io_temporary(e.source.kind()) => EXIT_TEMPORARY,
            PushError::Credentials { .. } | PushError::NoBucket { .. } | PushError::Setup(_) => {
                crate::cli::EXIT_ERROR
            }
            _ => crate::cli::EXIT_FAILED,
        }
    }

    /// Temporary failures (exit 75) leave everything to be tried again.
    pub fn is_temporary(&self) -> bool {
        self.exit_code() == EXIT_TEMPORARY
    }
}

/// Local I/O failures that may pass by themselves (a network file system that timed out).
fn io_temporary(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(kind, TimedOut | WouldBlock | Interrupted)
}

/// What is known of a failed request to the archive, from either client.
#[derive(Debug, Default)]
pub(super) struct Failure {
    /// The HTTP status the store answered.
    status: Option<u16>,
    /// The S3 error code (`AccessDenied`, `NoSuchBucket`, `SlowDown`, ...) and message.
    code: Option<String>,
    message: Option<String>,
    /// The request failed in transport: no connection, a timeout, a connection dropped.
    transport: bool,
    /// The first I/O error in the chain of causes.
    io: Option<std::io::ErrorKind>,
    /// The whole error, with its causes.
    detail: String,
}

impl Failure {
    /// Fill in what the causes of `err` say: the first I/O error's kind.
    fn with_causes(mut self, err: &(dyn std::error::Error + 'static)) -> Failure {
        let mut cause = Some(err);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                self.io.get_or_insert(io.kind());
            }
            cause = e.source();
        }
        self
    }

    /// From an `object_store` error: its variant, the HTTP failure kind of its cause, and the
    /// status and S3 error of the answer (which `object_store` keeps only in its message).
    pub(super) fn from_store(err: &object_store::Error) -> Failure {
        use object_store::client::{HttpError, HttpErrorKind};
        let detail = crate::cli::error_chain(err);
        let mut failure = Failure {
            status: match err {
                object_store::Error::Unauthenticated { .. } => Some(401),
                object_store::Error::PermissionDenied { .. } => Some(403),
                _ => None,
            },
            ..Failure::default()
        }
        .with_causes(err);
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cause {
            if let Some(http) = e.downcast_ref::<HttpError>() {
                failure.transport |= matches!(
                    http.kind(),
                    HttpErrorKind::Connect
                        | HttpErrorKind::Request
                        | HttpErrorKind::Timeout
                        | HttpErrorKind::Interrupted
                        | HttpErrorKind::Decode
                );
            }
            cause = e.source();
        }
        // `object_store` shows the cause of a request that failed in transport as `HTTP
        // error: ...` but hides its `HttpError` from the chain of causes (a transparent
        // wrapper forwards past it), so the message says it.
        failure.transport |= detail.contains("HTTP error: ");
        if let Some(at) = detail.find("Server returned non-2xx status code: ") {
            let digits = &detail[at + "Server returned non-2xx status code: ".len()..];
            failure.status = digits
                .get(..3)
                .and_then(|d| d.parse().ok())
                .or(failure.status);
        }
        let element = |name: &str| {
            let open = format!("<{name}>");
            let start = detail.find(&open)? + open.len();
            let len = detail[start..].find(&format!("</{name}>"))?;
            Some(detail[start..start + len].to_string())
        };
        failure.code = element("Code");
        failure.message = element("Message");
        failure.detail = detail;
        failure
    }

    /// From an AWS SDK error: its kind (dispatch, timeout, service, response) and the
    /// service's error metadata and HTTP status.
    pub(super) fn from_sdk<E>(
        err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Failure
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_s3::error::SdkError;
        let mut failure = Failure {
            detail: crate::cli::error_chain(err),
            ..Failure::default()
        }
        .with_causes(err);
        match err {
            // A request that could not be sent (no connection, a name that did not resolve);
            // one refused before sending (`is_user`: a bad endpoint) is not temporary.
            SdkError::DispatchFailure(dispatch) => failure.transport = !dispatch.is_user(),
            SdkError::TimeoutError(_) => failure.transport = true,
            SdkError::ServiceError(service) => {
                failure.status = Some(service.raw().status().as_u16());
                failure.code = service.err().code().map(str::to_string);
                failure.message = service.err().message().map(str::to_string);
            }
            SdkError::ResponseError(response) => {
                failure.status = Some(response.raw().status().as_u16())
            }
            _ => {}
        }
        failure
    }

    /// The store's answer, in short: `403 AccessDenied: Invalid signature`.
    pub(super) fn answer(&self) -> String {
        match (self.status, &self.code) {
            (None, None) => self.detail.clone(),
            (status, code) => {
                let mut answer = "the store answered".to_string();
                if let Some(status) = status {
                    answer.push_str(&format!(" {status}"));
                }
                if let Some(code) = code {
                    answer.push_str(&format!(" {code}"));
                }
                if let Some(message) = &self.message {
                    answer.push_str(&format!(": {message}"));
                }
                answer
            }
        }
    }

    /// Class the failure (see [`PushError::exit_code`]).
    pub(super) fn classify(self, target: &Target) -> PushError {
        let code = self.code.as_deref().unwrap_or_default();
        let status = self.status.unwrap_or_default();
        let archive = target.to_string();
        if code == "NoSuchBucket" {
            if let Target::S3 { bucket, .. } = target {
                return PushError::NoBucket {
                    bucket: bucket.clone(),
                    answer: self.answer(),
                };
            }
        }
        let credentials = matches!(
            code,
            "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "TokenRefreshRequired"
        );
        if status == 401 || status == 403 || credentials {
            return PushError::Credentials {
                archive,
                answer: self.answer(),
            };
        }
        let busy = matches!(
            code,
            "SlowDown"
                | "ServiceUnavailable"
                | "InternalError"
                | "RequestTimeout"
                | "Throttling"
                | "ThrottlingException"
                | "RequestThrottled"
                | "TooManyRequests"
                | "OperationAborted"
        );
        // 501 Not Implemented (an S3 feature this store lacks) does not pass by itself.
        if (status >= 500 && status != 501) || status == 429 || status == 408 || busy {
            return PushError::Unreachable(self.answer());
        }
        // A TLS failure (a certificate not trusted) does not pass by itself.
        let tls = self.io == Some(std::io::ErrorKind::InvalidData);
        if self.status.is_none() && !tls && (self.transport || self.io.is_some_and(io_temporary)) {
            return PushError::Unreachable(self.detail);
        }
        PushError::Refused {
            archive,
            answer: self.answer(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> Target {
        Target::S3 {
            bucket: "calls".into(),
            prefix: "branch".into(),
        }
    }

    fn answered(status: u16, code: &str) -> Failure {
        Failure {
            status: Some(status),
            code: Some(code.to_string()),
            message: Some("why".into()),
            detail: format!("{status} {code}"),
            ..Failure::default()
        }
    }

    #[test]
    fn only_what_may_pass_by_itself_is_temporary() {
        let code = |f: Failure| f.classify(&s3()).exit_code();
        for (status, name) in [
            (503, "SlowDown"),
            (500, "InternalError"),
            (502, ""),
            (429, "TooManyRequests"),
            (400, "RequestTimeout"),
        ] {
            assert_eq!(code(answered(status, name)), 75, "{status} {name}");
        }
        for (status, name) in [
            (403, "AccessDenied"),
            (401, ""),
            (400, "InvalidAccessKeyId"),
        ] {
            let e = answered(status, name).classify(&s3());
            assert!(matches!(e, PushError::Credentials { .. }), "{e:?}");
            assert_eq!(e.exit_code(), 2);
        }
        let e = answered(404, "NoSuchBucket").classify(&s3());
        assert!(e.to_string().contains("\"calls\" does not exist"), "{e}");
        assert_eq!(e.exit_code(), 2);
        for (status, name) in [
            (501, "NotImplemented"),
            (400, "InvalidRequest"),
            (404, "NoSuchKey"),
        ] {
            assert_eq!(code(answered(status, name)), 1, "{status} {name}");
        }
        let transport = |io| Failure {
            transport: true,
            io,
            detail: "connect".into(),
            ..Failure::default()
        };
        assert_eq!(code(transport(None)), 75);
        assert_eq!(
            code(transport(Some(std::io::ErrorKind::ConnectionRefused))),
            75
        );
        // A certificate that is not trusted does not pass by itself.
        assert_eq!(code(transport(Some(std::io::ErrorKind::InvalidData))), 1);
        let local = |kind| {
            Failure {
                io: Some(kind),
                detail: "/archive/2026: failed".into(),
                ..Failure::default()
            }
            .classify(&Target::Dir("/archive".into()))
        };
        let e = local(std::io::ErrorKind::NotADirectory);
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.to_string(), "/archive: /archive/2026: failed");
        assert_eq!(local(std::io::ErrorKind::PermissionDenied).exit_code(), 1);
        assert_eq!(local(std::io::ErrorKind::TimedOut).exit_code(), 75);
    }
}
