//! Dapr's bindings: output bindings the app invokes through its sidecar
//! (`POST /v1.0/bindings/{name}`, gRPC `InvokeBinding`), and input bindings that call the app
//! (`input.rs`). Types: `bindings.cron` (input, `cron.rs` of the crate's schedules),
//! `bindings.http` (output, `http.rs`) and `bindings.postgresql` (output, `postgres/`).

pub mod http;
pub mod input;
pub mod postgres;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::components::{Component, ComponentKind};
use crate::cron::{Fields, Schedule};

/// One call of an output binding, as the sidecar received it.
#[derive(Debug, Clone, Default)]
pub struct OutputRequest {
    pub operation: String,
    /// What reaches the component (over HTTP: the request's `data`, JSON-encoded again).
    pub data: Bytes,
    pub metadata: BTreeMap<String, String>,
}

/// What a binding answered: data and metadata (the caller sees them as `metadata.<key>`
/// headers, on errors too).
#[derive(Debug, Clone, Default)]
pub struct OutputResponse {
    pub data: Bytes,
    pub metadata: BTreeMap<String, String>,
}

/// Why an output binding call failed, with what the binding answered, if anything.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BindingError {
    pub message: String,
    pub response: Option<OutputResponse>,
}

impl From<crate::resiliency::Interrupted> for BindingError {
    fn from(why: crate::resiliency::Interrupted) -> BindingError {
        BindingError::new(why.to_string())
    }
}

impl BindingError {
    pub fn new(message: impl Into<String>) -> BindingError {
        BindingError {
            message: message.into(),
            response: None,
        }
    }
}

/// A binding component made ready to use.
pub enum Binding {
    Cron(Schedule),
    Http(http::HttpBinding),
    /// Boxed: its connection settings are large beside the other variants.
    Postgres(Box<postgres::PostgresBinding>),
}

/// Every binding of the resources, by component name.
#[derive(Default)]
pub struct Bindings(BTreeMap<String, (Component, Arc<Binding>)>);

impl Bindings {
    /// The binding components among `components`; a value that only a secret made
    /// (checked here, not at load) is the error.
    pub fn make(components: &[Component]) -> Result<Bindings, String> {
        let mut made = BTreeMap::new();
        for component in components {
            let binding = match component.kind {
                ComponentKind::BindingsCron => {
                    let schedule = component.get("schedule").unwrap_or_default();
                    Binding::Cron(Schedule::parse(schedule, Fields::FiveOrSix).map_err(|e| {
                        format!("binding `{}`: invalid schedule format: {e}", component.name)
                    })?)
                }
                ComponentKind::BindingsPostgres => Binding::Postgres(Box::new(
                    postgres::PostgresBinding::new(component)
                        .map_err(|e| format!("binding `{}`: {e}", component.name))?,
                )),
                ComponentKind::BindingsHttp => Binding::Http(
                    http::HttpBinding::new(component)
                        .map_err(|e| format!("binding `{}`: {e}", component.name))?,
                ),
                _ => continue,
            };
            made.insert(
                component.name.clone(),
                (component.clone(), Arc::new(binding)),
            );
        }
        Ok(Bindings(made))
    }

    /// Invokes output binding `name` for `app_id`, with Dapr's errors for an unknown binding,
    /// a missing or an unsupported operation.
    pub async fn invoke(
        &self,
        app_id: &str,
        name: &str,
        request: OutputRequest,
        policies: &crate::resiliency::AppPolicies,
    ) -> Result<Option<OutputResponse>, BindingError> {
        if request.operation.is_empty() {
            return Err(BindingError::new("operation field is missing from request"));
        }
        let output = self
            .0
            .get(name)
            .filter(|(c, b)| {
                c.visible_to(app_id)
                    && directions(c).output
                    && !matches!(b.as_ref(), Binding::Cron(_))
            })
            .map(|(_, b)| b.clone())
            .ok_or_else(|| BindingError::new(format!("couldn't find output binding {name}")))?;
        let operations = match output.as_ref() {
            Binding::Postgres(_) => postgres::OPERATIONS,
            _ => &http::OPERATIONS[..],
        };
        if !operations.contains(&request.operation.as_str()) {
            return Err(BindingError::new(format!(
                "binding {name} does not support operation {}. supported operations:{}",
                request.operation,
                operations.join(" ")
            )));
        }
        use crate::resiliency::{ComponentType, Direction};
        let policy = policies.component(name, ComponentType::Binding, Direction::Outbound);
        let what = || format!("{app_id}: output binding {name}");
        let attempt = || {
            let (output, request) = (output.clone(), request.clone());
            async move {
                match output.as_ref() {
                    Binding::Http(http) => http.invoke(request).await.map(Some),
                    Binding::Postgres(postgres) => postgres.invoke(request).await,
                    Binding::Cron(_) => Err(BindingError::new("a cron binding has no output")),
                }
            }
        };
        crate::resiliency::run(&policy, what, crate::resiliency::ok_or_retry, attempt).await
    }

    /// The input bindings `app_id` may read, with their route.
    pub fn inputs(&self, app_id: &str) -> Vec<input::Input> {
        self.0
            .values()
            .filter(|(c, _)| c.visible_to(app_id) && directions(c).input)
            .filter_map(|(component, binding)| match binding.as_ref() {
                Binding::Cron(schedule) => Some(input::Input {
                    name: component.name.clone(),
                    route: component
                        .get("route")
                        .map(|r| r.trim_start_matches('/').to_string())
                        .unwrap_or_else(|| component.name.clone()),
                    // `direction: input` says the app reads it: no OPTIONS probe.
                    probe: !directions(component).said_input,
                    schedule: schedule.clone(),
                }),
                Binding::Http(_) | Binding::Postgres(_) => None,
            })
            .collect()
    }
}

/// What a component's `direction` metadata allows.
struct Directions {
    input: bool,
    output: bool,
    /// `direction` names `input`.
    said_input: bool,
}

/// `direction`: a comma list of `input`/`output`; absent, what the type implements.
fn directions(component: &Component) -> Directions {
    let implements_input = component.kind == ComponentKind::BindingsCron;
    let implements_output = matches!(
        component.kind,
        ComponentKind::BindingsHttp | ComponentKind::BindingsPostgres
    );
    let Some(said) = component.get("direction") else {
        return Directions {
            input: implements_input,
            output: implements_output,
            said_input: false,
        };
    };
    let has = |d: &str| said.split(',').any(|p| p.trim().eq_ignore_ascii_case(d));
    Directions {
        input: implements_input && has("input"),
        output: implements_output && has("output"),
        said_input: has("input"),
    }
}

/// What is wrong with one metadata value of a binding component, checked where it is written
/// (message, hint).
pub fn check_item(kind: ComponentKind, name: &str, value: &str) -> Option<(String, String)> {
    match (kind, name.to_ascii_lowercase().as_str()) {
        (ComponentKind::BindingsCron, "schedule") => {
            Schedule::parse(value, Fields::FiveOrSix).err().map(|e| {
                let message = format!("invalid schedule format '{value}': {e}");
                (
                    message,
                    "write 5 fields (`*/5 * * * *`), 6 with seconds first, or `@every 15s`".into(),
                )
            })
        }
        (ComponentKind::BindingsHttp, _) => http::check_item(name, value),
        (kind, "direction") if kind.is_binding() => value
            .split(',')
            .map(str::trim)
            .find(|d| !d.eq_ignore_ascii_case("input") && !d.eq_ignore_ascii_case("output"))
            .map(|d| {
                let message = format!("unknown direction `{d}`");
                (message, "write `input`, `output` or `input, output`".into())
            }),
        _ => None,
    }
}

/// The metadata items a binding type cannot do without (name, hint).
pub fn required(kind: ComponentKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        ComponentKind::BindingsCron => &[(
            "schedule",
            "add `- name: schedule` with `value: \"@every 15s\"`",
        )],
        ComponentKind::BindingsHttp => &[(
            "url",
            "add `- name: url` with `value: http://localhost:8080/base`",
        )],
        _ => &[],
    }
}
