use super::*;

const LAB: &str = r#"apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: myresiliency
scopes: [caller]
spec:
  policies:
    timeouts:
      general: 5s
      fast: 500
    retries:
      threeTimes: { policy: constant, duration: 5s, maxRetries: 3 }
      expo:
        policy: exponential
        maxInterval: 15s
        matching: { httpStatusCodes: "429,500-599", gRPCStatusCodes: "1-4,8-11,13,14" }
      DaprBuiltInServiceRetries: { policy: constant, maxRetries: 1 }
      DefaultComponentInboundRetryPolicy: { duration: 1s, maxRetries: 2 }
    circuitBreakers:
      cb: { maxRequests: 1, interval: 8s, timeout: 45s, trip: consecutiveFailures > 8 }
  targets:
    apps:
      callee: { timeout: general, retry: threeTimes, circuitBreaker: cb }
    actors:
      MyActor: { timeout: general, retry: expo, circuitBreaker: cb, circuitBreakerScope: id }
    components:
      statestore: { outbound: { retry: expo, timeout: fast } }
"#;

fn lab() -> (Document, Vec<String>) {
    read(LAB, 0).unwrap()
}

#[test]
fn the_reference_resource_reads_as_dapr_decodes_it() {
    let (document, notices) = lab();
    assert_eq!(document.name, "myresiliency");
    assert_eq!(document.scopes, vec!["caller"]);
    assert_eq!(document.timeouts["fast"], Duration::from_millis(500));
    let three = &document.retries["threeTimes"];
    assert_eq!(three.max_retries, 3);
    assert_eq!(
        three.backoff,
        retry::Backoff::Constant(Duration::from_secs(5))
    );
    assert_eq!(
        document.retries["expo"].max_retries, -1,
        "Dapr's default: forever"
    );
    assert_eq!(document.breakers["cb"].timeout, Duration::from_secs(45));
    // Test vector 7: a built-in override below 3 retries is raised to 3, with a word.
    assert_eq!(document.retries["DaprBuiltInServiceRetries"].max_retries, 3);
    assert!(
        notices.iter().any(|n| n.contains("reset to 3")),
        "{notices:?}"
    );
    assert_eq!(document.actors["MyActor"].scope, ActorScope::Id);
    assert!(unknown_references(&[document]).is_empty());
}

#[test]
fn targets_get_their_policies_and_others_the_defaults() {
    let (document, _) = lab();
    let resiliency = Resiliency::new(vec![document]);
    let caller = resiliency.for_app("caller");
    let call = caller.endpoint("callee", "work");
    assert_eq!(call.timeout, Some(Duration::from_secs(5)));
    assert_eq!(call.retry.as_ref().map(|r| r.max_retries), Some(3));
    assert_eq!(
        call.breaker.as_ref().map(|b| b.name.as_str()),
        Some("callee:work")
    );
    assert!(
        Arc::ptr_eq(
            call.breaker.as_ref().unwrap(),
            caller.endpoint("callee", "work").breaker.as_ref().unwrap()
        ),
        "one breaker per method, kept"
    );
    assert!(
        caller.endpoint("other", "work").is_empty(),
        "no DefaultAppRetryPolicy"
    );
    let store = caller.component("statestore", ComponentType::Statestore, Direction::Outbound);
    assert_eq!(store.timeout, Some(Duration::from_millis(500)));
    let inbound = caller.component("pubsub", ComponentType::Pubsub, Direction::Inbound);
    assert_eq!(
        inbound.retry.map(|r| r.max_retries),
        Some(2),
        "DefaultComponentInbound…"
    );
    let actor = caller.actor("MyActor", "7");
    assert_eq!(
        actor.breaker.map(|b| b.name.clone()).as_deref(),
        Some("MyActor-7")
    );
    // A built-in retry a target names without defining it is daprd's (1 s × 3).
    let yaml = "kind: Resiliency\nspec:\n  targets:\n    apps:\n      callee: { retry: DaprBuiltInActorRetries }\n";
    let builtin = Resiliency::new(vec![read(yaml, 0).unwrap().0]);
    let retry = builtin.for_app("x").endpoint("callee", "m").retry.unwrap();
    assert_eq!(
        (retry.max_retries, &retry.backoff),
        (3, &retry::Backoff::Constant(Duration::from_secs(1)))
    );
    // Scopes: the callee's sidecar does not load it.
    assert!(
        resiliency
            .for_app("callee")
            .endpoint("callee", "work")
            .is_empty()
    );
}

fn problems(yaml: &str) -> String {
    let errors = read(yaml, 10).unwrap_err();
    errors
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn bad_values_are_refused_where_they_are_written() {
    let head = "kind: Resiliency\nmetadata: { name: r }\nspec:\n  policies:\n";
    let bad_duration = format!("{head}    timeouts:\n      t: soon\n");
    assert_eq!(problems(&bad_duration), "16:10 invalid timeout `soon`");
    let bad_policy = format!("{head}    retries:\n      r: {{ policy: linear }}\n");
    assert!(problems(&bad_policy).contains("unexpected back off policy type `linear`"));
    let bad_codes =
        format!("{head}    retries:\n      r: {{ matching: {{ httpStatusCodes: \"700\" }} }}\n");
    assert!(problems(&bad_codes).contains("outside 100-599"));
    let bad_trip =
        format!("{head}    circuitBreakers:\n      cb: {{ trip: consecutiveFailure > 5 }}\n");
    assert!(problems(&bad_trip).contains("undeclared reference to `consecutiveFailure`"));
    let unknown_key = format!("{head}    retrys: {{}}\n");
    assert!(
        problems(&unknown_key).contains("retrys"),
        "{}",
        problems(&unknown_key)
    );
    let no_scope = "kind: Resiliency\nspec:\n  policies:\n    circuitBreakers: { cb: {} }\n  targets:\n    actors:\n      A: { circuitBreaker: cb }\n";
    assert!(problems(no_scope).contains("no `circuitBreakerScope`"));
}

#[test]
fn a_target_naming_an_undefined_policy_is_found() {
    let yaml = "kind: Resiliency\nspec:\n  targets:\n    apps:\n      callee: { retry: missing }\n";
    let (mut document, _) = read(yaml, 0).unwrap();
    document.origin = "r.yaml".into();
    let unknown = unknown_references(&[document]);
    assert_eq!(
        unknown,
        vec![(
            "r.yaml".to_string(),
            5,
            24,
            "no retry policy is named `missing`".to_string()
        )]
    );
}
