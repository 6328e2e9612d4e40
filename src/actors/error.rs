//! What an actor call can fail with, as daprd says it: the HTTP status, the error code and the
//! message of `pkg/messages/predefined.go`, and the gRPC code of the same error.

use axum::http::StatusCode;

/// An actor API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub grpc: tonic::Code,
}

impl From<crate::resiliency::Interrupted> for ActorError {
    fn from(why: crate::resiliency::Interrupted) -> ActorError {
        ActorError::invoke(why.to_string())
    }
}

impl ActorError {
    fn new(status: StatusCode, code: &'static str, message: String, grpc: tonic::Code) -> Self {
        ActorError {
            status,
            code,
            message,
            grpc,
        }
    }

    /// `ERR_BAD_REQUEST`, with the whole message.
    pub fn bad_name(message: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ERR_BAD_REQUEST",
            message,
            tonic::Code::InvalidArgument,
        )
    }

    pub fn malformed(message: String) -> Self {
        let message = format!("failed deserializing HTTP body: {message}");
        Self::new(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            message,
            tonic::Code::InvalidArgument,
        )
    }

    pub fn no_store() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_ACTOR_RUNTIME_NOT_FOUND",
            "the state store is not configured to use the actor runtime. Have you set the - name: actorStateStore value: \"true\" in your state store component file?".into(),
            tonic::Code::Internal,
        )
    }

    pub fn reserved(actor_type: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ERR_ACTOR_TYPE_RESERVED",
            format!(
                "actor type \"{actor_type}\" is reserved for the Dapr workflow runtime; direct actor API access is not permitted"
            ),
            tonic::Code::PermissionDenied,
        )
    }

    /// The app answered something other than 200, or could not be reached.
    pub fn invoke(cause: String) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_ACTOR_INVOKE_METHOD",
            format!("error invoke actor method: {cause}"),
            tonic::Code::Internal,
        )
    }

    /// No app hosts the type (after Dapr's five one-second retries).
    pub fn no_host(actor_type: &str, id: &str) -> Self {
        let mut error = Self::invoke(format!(
            "failed to lookup actor: did not find address for actor '{actor_type}/{id}'"
        ));
        error.grpc = tonic::Code::FailedPrecondition;
        error
    }

    pub fn stack_depth() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_ACTOR_STACK_DEPTH",
            "maximum stack depth exceeded".into(),
            tonic::Code::ResourceExhausted,
        )
    }

    pub fn instance_missing() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ERR_ACTOR_INSTANCE_MISSING",
            "actor instance is missing".into(),
            tonic::Code::Internal,
        )
    }

    pub fn state_get(cause: String) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_ACTOR_STATE_GET",
            format!("error getting actor state: {cause}"),
            tonic::Code::Internal,
        )
    }

    pub fn transaction(cause: String) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_ACTOR_STATE_TRANSACTION_SAVE",
            format!("error saving actor transaction state: {cause}"),
            tonic::Code::Internal,
        )
    }

    pub fn timer(cause: String) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_ACTOR_TIMER_CREATE",
            format!("error creating actor timer: {cause}"),
            tonic::Code::Internal,
        )
    }

    pub fn reminder_non_hosted() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ERR_ACTOR_REMINDER_NON_HOSTED",
            "operations on actor reminders are only possible on hosted actor types".into(),
            tonic::Code::PermissionDenied,
        )
    }

    pub fn reminder_create(cause: String) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_ACTOR_REMINDER_CREATE",
            format!("error creating actor reminder: {cause}"),
            tonic::Code::Internal,
        )
    }

    pub fn reminder_exists(name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "ERR_ACTOR_REMINDER_ALREADY_EXISTS",
            format!("actor reminder already exists: {name}"),
            tonic::Code::AlreadyExists,
        )
    }

    pub fn reminder_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ERR_ACTOR_REMINDER_NOT_FOUND",
            format!("actor reminder not found: {name}"),
            tonic::Code::NotFound,
        )
    }

    pub fn reminder_delete(cause: String) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_ACTOR_REMINDER_DELETE",
            format!("error deleting actor reminder: {cause}"),
            tonic::Code::Internal,
        )
    }

    pub fn closed() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR_ACTOR_RUNTIME_CLOSED",
            "actor runtime is closed".into(),
            tonic::Code::Unavailable,
        )
    }
}

/// Dapr's `ValidateName`: no `# ? NUL / \`, no control bytes, not `.` or `..`.
pub fn check_name(what: &str, name: &str) -> Result<(), ActorError> {
    let bad = name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| matches!(b, b'#' | b'?' | b'/' | b'\\') || b < 0x20 || b == 0x7f);
    if bad {
        let why = if name == "." || name == ".." {
            format!("name is a path traversal sequence: {name:?}")
        } else {
            format!("name contains forbidden character: {name:?}")
        };
        return Err(ActorError::bad_name(format!(
            "invalid request: invalid {what}: {why}"
        )));
    }
    Ok(())
}

/// Types Dapr keeps for its workflow engine.
pub fn check_reserved(actor_type: &str) -> Result<(), ActorError> {
    if actor_type.starts_with("dapr.internal.") {
        return Err(ActorError::reserved(actor_type));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_dapr_checks_them() {
        for bad in [
            "bad/name",
            "bad\\name",
            "bad#name",
            "bad?name",
            "bad\0name",
            "bad\nname",
            ".",
            "..",
        ] {
            assert_eq!(
                check_name("reminder", bad).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad:?}"
            );
        }
        assert!(check_name("actor id", "user@example.com").is_ok());
        assert_eq!(
            check_reserved("dapr.internal.default.app.workflow")
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
    }
}
