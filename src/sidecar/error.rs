//! Dapr's error responses. Legacy errors are a status and `{"errorCode": "ERR_...", "message":
//! "..."}`; the errors Dapr builds with `dapr/kit` also carry google.rpc details (an `ErrorInfo`
//! whose `reason` is the `DAPR_*` code, often a `ResourceInfo`, sometimes a `BadRequest`),
//! listed under `details` over HTTP and sent as `grpc-status-details-bin` over gRPC, where the
//! Python SDK's `DaprGrpcError.error_code()` reads the reason.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tonic::Code;

/// The domain of every `ErrorInfo` Dapr sends.
const DOMAIN: &str = "dapr.io";

/// An error as the Dapr HTTP and gRPC APIs report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The gRPC code, where Dapr sets one of its own (kit errors); otherwise it follows `status`.
    pub grpc: Option<Code>,
    /// google.rpc details in the order Dapr adds them; empty for legacy errors.
    pub details: Vec<Detail>,
}

/// One google.rpc error detail, as dapr/kit builds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// `metadata: None` is Go's nil map: `null` in JSON, as Dapr sends it.
    ErrorInfo {
        reason: &'static str,
        metadata: Option<BTreeMap<String, String>>,
    },
    ResourceInfo {
        kind: &'static str,
        name: String,
        description: String,
    },
    FieldViolation {
        field: String,
        description: String,
    },
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            grpc: None,
            details: Vec::new(),
        }
    }

    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", message)
    }

    /// An error with its own gRPC code, as `kiterrors.NewBuilder(grpcCode, httpCode, ...)`.
    pub fn kit(
        grpc: Code,
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            grpc: Some(grpc),
            ..ApiError::new(status, code, message)
        }
    }

    /// Dapr's `apierrors.Basic`: a kit error whose `ErrorInfo` reason is the legacy code.
    pub fn basic(grpc: Code, status: StatusCode, code: &'static str, message: String) -> ApiError {
        ApiError::kit(grpc, status, code, message).reason(code, None)
    }

    pub fn reason(
        mut self,
        reason: &'static str,
        metadata: Option<BTreeMap<String, String>>,
    ) -> ApiError {
        self.details.push(Detail::ErrorInfo { reason, metadata });
        self
    }

    pub fn resource(
        mut self,
        kind: &'static str,
        name: &str,
        description: impl Into<String>,
    ) -> ApiError {
        self.details.push(Detail::ResourceInfo {
            kind,
            name: name.to_string(),
            description: description.into(),
        });
        self
    }

    pub fn field_violation(mut self, field: &str, description: impl Into<String>) -> ApiError {
        self.details.push(Detail::FieldViolation {
            field: field.to_string(),
            description: description.into(),
        });
        self
    }

    /// The gRPC code Dapr answers with: its own, or the one its gRPC API gives for the HTTP
    /// status of a legacy error.
    pub fn grpc_code(&self) -> Code {
        self.grpc.unwrap_or(match self.status {
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND => {
                Code::InvalidArgument
            }
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            StatusCode::CONFLICT => Code::Aborted,
            StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
            _ => Code::Internal,
        })
    }

    /// The `details` list of the HTTP body, field names as dapr/kit writes them.
    fn details_json(&self) -> Vec<Value> {
        self.details.iter().map(Detail::json).collect()
    }

    /// The gRPC status, details included.
    pub fn to_status(&self) -> tonic::Status {
        use tonic_types::StatusExt;
        if self.details.is_empty() {
            return tonic::Status::new(self.grpc_code(), self.message.clone());
        }
        let details = self.details.iter().map(Detail::grpc);
        tonic::Status::with_error_details_vec(self.grpc_code(), self.message.clone(), details)
    }
}

impl Detail {
    fn json(&self) -> Value {
        const TYPE: &str = "type.googleapis.com/google.rpc.";
        match self {
            Detail::ErrorInfo { reason, metadata } => json!({
                "@type": format!("{TYPE}ErrorInfo"), "domain": DOMAIN, "metadata": metadata,
                "reason": reason,
            }),
            Detail::ResourceInfo {
                kind,
                name,
                description,
            } => json!({
                "@type": format!("{TYPE}ResourceInfo"), "description": description, "owner": "",
                "resource_name": name, "resource_type": kind,
            }),
            Detail::FieldViolation { field, description } => json!({
                "@type": format!("{TYPE}BadRequest"),
                "field_violations": [FieldViolation { field, description }],
            }),
        }
    }

    fn grpc(&self) -> tonic_types::ErrorDetail {
        use tonic_types::{BadRequest, ErrorInfo, ResourceInfo};
        match self {
            Detail::ErrorInfo { reason, metadata } => {
                let metadata: std::collections::HashMap<String, String> =
                    metadata.clone().unwrap_or_default().into_iter().collect();
                ErrorInfo::new(*reason, DOMAIN, metadata).into()
            }
            Detail::ResourceInfo {
                kind,
                name,
                description,
            } => ResourceInfo::new(*kind, name.clone(), "", description.clone()).into(),
            Detail::FieldViolation { field, description } => {
                BadRequest::with_violation(field.clone(), description.clone()).into()
            }
        }
    }
}

/// The body's fields in Dapr's order (Go writes a struct's fields in declaration order and a
/// map's keys sorted, as serde_json's maps do).
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(rename = "errorCode")]
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<Value>,
}

#[derive(serde::Serialize)]
struct FieldViolation<'a> {
    field: &'a str,
    description: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
            details: self.details_json(),
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_errors_have_no_details_and_follow_the_http_status() {
        let err = ApiError::new(StatusCode::CONFLICT, "ERR_STATE_SAVE", "etag");
        assert_eq!(err.grpc_code(), Code::Aborted);
        assert!(err.to_status().details().is_empty());
    }

    #[tokio::test]
    async fn kit_errors_carry_their_reason_over_grpc() {
        use tonic_types::StatusExt;
        let err = ApiError::kit(
            Code::FailedPrecondition,
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_STORE_NOT_CONFIGURED",
            "state store s is not configured",
        )
        .resource("state", "s", "")
        .reason("DAPR_STATE_NOT_CONFIGURED", None);
        let status = err.to_status();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("DAPR_STATE_NOT_CONFIGURED", "dapr.io")
        );
        assert_eq!(
            status.get_details_resource_info().unwrap().resource_name,
            "s"
        );
        let json = err.details_json();
        assert_eq!(json[1]["metadata"], Value::Null);
        assert_eq!(json[0]["resource_type"], "state");
        let body = err.into_response().into_body();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        assert!(bytes.starts_with(br#"{"errorCode":"ERR_STATE_STORE_NOT_CONFIGURED","message":"#));
    }
}
