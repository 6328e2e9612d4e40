//! The step rules the SDKs notice (dapr-reference-actors-workflows.md §2.3), checked without
//! a worker: event ids are action ids, `workflowStarted` opens each step, a child's default id,
//! continue-as-new's fresh history, a terminate the SDK did not answer.

use prost_types::Timestamp;

use super::events::{self, event};
use super::pb::history_event::EventType;
use super::pb::workflow_action::WorkflowActionType as Action;
use super::pb::{self, OrchestrationStatus};
use super::state::State;
use super::step::{self, Effect, Step};

fn at(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// A started instance `abc` of app `wf`, its first step not yet run.
fn started() -> State {
    let start = step::start_event(at(1), "wf", "abc", "hello", Some("\"World\"".into()), None);
    State {
        exists: true,
        inbox: vec![start],
        generation: 1,
        ..Default::default()
    }
}

fn action(id: i32, kind: Action) -> pb::WorkflowAction {
    pb::WorkflowAction {
        id,
        router: None,
        workflow_action_type: Some(kind),
    }
}

fn run(state: &mut State, actions: Vec<pb::WorkflowAction>) -> Vec<Effect> {
    let opened = event(at(2), EventType::WorkflowStarted(Default::default()));
    let (request, consumed) = step::request("abc", state, opened.clone(), "wf");
    assert!(matches!(
        request.new_events[0].event_type,
        Some(EventType::WorkflowStarted(_))
    ));
    let response = pb::WorkflowResponse {
        instance_id: "abc".into(),
        actions,
        ..Default::default()
    };
    let step = Step {
        app: "wf",
        instance: "abc",
        now: at(2),
    };
    step.apply(state, opened, consumed, response)
}

#[test]
fn each_actions_event_carries_its_id_and_the_start_names_the_app() {
    let mut state = started();
    let task = Action::ScheduleTask(pb::ScheduleTaskAction {
        name: "greet".into(),
        ..Default::default()
    });
    let timer = Action::CreateTimer(pb::CreateTimerAction {
        fire_at: Some(at(9)),
        ..Default::default()
    });
    let effects = run(&mut state, vec![action(1, task), action(2, timer)]);
    let kinds: Vec<(&str, i32)> = state
        .history
        .iter()
        .map(|e| (events::kind_name(e), e.event_id))
        .collect();
    assert_eq!(
        kinds,
        [
            ("workflowStarted", -1),
            ("executionStarted", -1),
            ("taskScheduled", 1),
            ("timerCreated", 2)
        ]
    );
    let router = state.history[1].router.as_ref().unwrap();
    assert_eq!(router.source_app_id, "wf");
    assert!(state.inbox.is_empty());
    assert!(
        matches!(&effects[0], Effect::Activity { app, request } if app == "wf" && request.task_id == 1)
    );
    assert!(matches!(effects[1], Effect::Timer { id: 2, .. }));
    assert_eq!(state.status(), OrchestrationStatus::Running);
}

#[test]
fn a_child_without_an_id_is_named_after_its_parent_and_action() {
    let mut state = started();
    let child = Action::CreateChildWorkflow(pb::CreateChildWorkflowAction {
        name: "hello".into(),
        ..Default::default()
    });
    let effects = run(&mut state, vec![action(1, child)]);
    let Effect::Create {
        instance, started, ..
    } = &effects[0]
    else {
        panic!("{effects:?}");
    };
    assert_eq!(instance, "abc:0001");
    let Some(EventType::ExecutionStarted(s)) = &started.event_type else {
        panic!("{started:?}");
    };
    let parent = s.parent_instance.as_ref().unwrap();
    assert_eq!(parent.task_scheduled_id, 1);
    assert_eq!(parent.app_id.as_deref(), Some("wf"));
}

#[test]
fn continue_as_new_starts_a_fresh_history_and_keeps_unseen_events() {
    let mut state = started();
    run(&mut state, vec![]);
    let raised = event(
        at(3),
        EventType::EventRaised(pb::EventRaisedEvent {
            name: "later".into(),
            input: None,
        }),
    );
    let done = Action::CompleteWorkflow(pb::CompleteWorkflowAction {
        workflow_status: OrchestrationStatus::ContinuedAsNew as i32,
        result: Some("2".into()),
        ..Default::default()
    });
    let step = Step {
        app: "wf",
        instance: "abc",
        now: at(3),
    };
    let opened = event(at(3), EventType::WorkflowStarted(Default::default()));
    let (_, consumed) = step::request("abc", &state, opened.clone(), "wf");
    // An event that came in during the step: not seen by it.
    state.inbox.push(raised);
    let response = pb::WorkflowResponse {
        actions: vec![action(1, done)],
        ..Default::default()
    };
    let effects = step.apply(&mut state, opened, consumed, response);
    assert!(matches!(effects[..], [Effect::Again]));
    assert!(state.history.is_empty());
    assert_eq!(state.generation, 2);
    let kinds: Vec<&str> = state.inbox.iter().map(events::kind_name).collect();
    assert_eq!(kinds, ["executionStarted", "eventRaised"]);
    assert_eq!(state.started().unwrap().input.as_deref(), Some("2"));
}

#[test]
fn a_terminate_the_sdk_did_not_answer_ends_the_instance_anyway() {
    let mut state = started();
    run(&mut state, vec![]);
    state.inbox.push(event(
        at(4),
        EventType::ExecutionTerminated(pb::ExecutionTerminatedEvent {
            input: Some("\"bye\"".into()),
            recurse: true,
        }),
    ));
    let effects = run(&mut state, vec![]);
    assert_eq!(state.status(), OrchestrationStatus::Terminated);
    assert!(matches!(&effects[..], [Effect::Ended { children }] if children.is_empty()));
}
