//! The gRPC API's messages as an SDK sends them: any bytes as the message of any unary method
//! daca serves, against in-memory state stores and brokers. Every call is answered; a call
//! that made a handler panic (answered INTERNAL by daca's catch) is a finding.
#![no_main]

#[path = "../support/sidecar.rs"]
mod support;

use std::time::Duration;

use support::{RUNTIME, SIDECAR};

/// The unary methods, but those that wait for something to happen (`WaitFor…`) and
/// `Shutdown`. The first byte of an input picks one.
const METHODS: &[&str] = &[
    "GetState",
    "GetBulkState",
    "SaveState",
    "DeleteState",
    "DeleteBulkState",
    "ExecuteStateTransaction",
    "PublishEvent",
    "BulkPublishEventAlpha1",
    "InvokeService",
    "InvokeBinding",
    "ScheduleJobAlpha1",
    "GetJobAlpha1",
    "DeleteJobAlpha1",
    "ListJobsAlpha1",
    "DeleteJobsByPrefixAlpha1",
    "GetSecret",
    "GetBulkSecret",
    "GetMetadata",
    "SetMetadata",
    "InvokeActor",
    "GetActorState",
    "ExecuteActorStateTransaction",
    "RegisterActorTimer",
    "UnregisterActorTimer",
    "RegisterActorReminder",
    "UnregisterActorReminder",
    "GetActorReminder",
    "ListActorReminders",
    "UnregisterActorRemindersByType",
    "StartWorkflowBeta1",
    "GetWorkflowBeta1",
    "TerminateWorkflowBeta1",
    "RaiseEventWorkflowBeta1",
    "PauseWorkflowBeta1",
    "ResumeWorkflowBeta1",
    "PurgeWorkflowBeta1",
    "Hello",
    "StartInstance",
    "GetInstance",
    "RaiseEvent",
    "TerminateInstance",
    "SuspendInstance",
    "ResumeInstance",
    "PurgeInstances",
    "CompleteOrchestratorTask",
    "CompleteActivityTask",
    "ListInstanceIDs",
    "GetInstanceHistory",
];

// An input is a method byte, then the message's bytes; they are framed as gRPC frames them.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, message)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(pick) % METHODS.len()];
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/dapr.proto.runtime.v1.Dapr/{method}"))
        .header("content-type", "application/grpc")
        .body(http_body_util::Full::new(bytes::Bytes::from(framed)))
        .expect("a request");
    RUNTIME.block_on(async {
        // An actor or an invocation with no app behind it is refused at once; a call that
        // still waits is not what is looked for here.
        let Ok(answer) = tokio::time::timeout(
            Duration::from_secs(1),
            daca::sidecar::grpc::call(&SIDECAR, request),
        )
        .await
        else {
            return;
        };
        let message = answer
            .headers()
            .get("grpc-message")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        assert!(
            !message.contains("daca failed serving")
                && !message.contains("daca%20failed%20serving"),
            "{method}: a handler panicked: {message}"
        );
    });
});
