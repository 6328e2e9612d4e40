//! A job as the API spells it: the HTTP body (protojson of `JobHTTPRequest`, camelCase or
//! snake_case), the gRPC `Job`, and how a stored job reads back.

use std::collections::BTreeMap;

use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use prost::Message;
use serde_json::{Value, json};

use super::{JobError, Words};
use crate::scheduler::{FailurePolicy, Job};

/// `google.protobuf.Value`'s type URL: the data of a job scheduled over HTTP.
pub const VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.Value";

/// What a job is made of, as its caller wrote it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSpec {
    pub schedule: Option<String>,
    pub repeats: Option<u32>,
    pub due_time: Option<String>,
    pub ttl: Option<String>,
    pub data: Option<prost_types::Any>,
    pub failure: Option<FailurePolicy>,
}

/// An HTTP body: the job and its `overwrite`.
pub fn from_http(body: &[u8]) -> Result<(JobSpec, bool), JobError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(JobError::Empty);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| JobError::Malformed(format!("failed deserializing HTTP body: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(JobError::Malformed(
            "failed deserializing HTTP body: the job is not a JSON object".into(),
        ));
    };
    let field = |camel: &str, snake: &str| fields.get(camel).or_else(|| fields.get(snake));
    if fields.contains_key("name") {
        return Err(JobError::NameInBody);
    }
    let text = |camel: &str, snake: &str| -> Result<Option<String>, JobError> {
        match field(camel, snake) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(JobError::Malformed(format!(
                "failed deserializing HTTP body: `{camel}` must be a string, not {other}"
            ))),
        }
    };
    let repeats = match field("repeats", "repeats") {
        None | Some(Value::Null) => None,
        Some(n) => Some(n.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
            JobError::Malformed(format!(
                "failed deserializing HTTP body: `repeats` must be a whole number from 0 to 4294967295, not {n}"
            ))
        })?),
    };
    let spec = JobSpec {
        schedule: text("schedule", "schedule")?,
        repeats,
        due_time: text("dueTime", "due_time")?,
        ttl: text("ttl", "ttl")?,
        data: field("data", "data").map(value_any),
        failure: match field("failurePolicy", "failure_policy") {
            None | Some(Value::Null) => None,
            Some(policy) => Some(failure_of_json(policy)?),
        },
    };
    if spec.schedule.is_none() && spec.due_time.is_none() {
        return Err(JobError::Empty);
    }
    let overwrite = field("overwrite", "overwrite")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((spec, overwrite))
}

/// `{"constant":{"interval":"3s","maxRetries":5}}` or `{"drop":{}}`.
fn failure_of_json(policy: &Value) -> Result<FailurePolicy, JobError> {
    let bad = || {
        JobError::Malformed(format!(
            "failed deserializing HTTP body: failurePolicy {policy} is neither {{\"drop\":{{}}}} nor {{\"constant\":{{\"interval\":\"1s\",\"maxRetries\":3}}}}"
        ))
    };
    if policy.get("drop").is_some() {
        return Ok(FailurePolicy::Drop);
    }
    let constant = policy.get("constant").ok_or_else(bad)?;
    let interval_ns = match constant.get("interval").and_then(Value::as_str) {
        Some(raw) => {
            crate::timespec::go_duration(raw)
                .ok()
                .filter(|d| d.0 >= 0)
                .ok_or_else(bad)?
                .0 as u64
        }
        None => 0,
    };
    let retries = constant
        .get("maxRetries")
        .or_else(|| constant.get("max_retries"));
    let max_retries = match retries {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)?,
        ),
    };
    Ok(FailurePolicy::Constant {
        interval_ns,
        max_retries,
    })
}

/// A JSON value as the `Any(Value)` daprd stores.
fn value_any(value: &Value) -> prost_types::Any {
    prost_types::Any {
        type_url: VALUE_TYPE.into(),
        value: to_proto_value(value).encode_to_vec(),
    }
}

fn to_proto_value(value: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_proto_value).collect(),
        }),
        Value::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields
                .iter()
                .map(|(k, v)| (k.clone(), to_proto_value(v)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A `google.protobuf.Value` as JSON (numbers as Go's protojson writes them).
pub fn from_proto_value(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => match n.fract() == 0.0 && n.abs() < 1e15 {
            true => json!(*n as i64),
            false => json!(n),
        },
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(from_proto_value).collect())
        }
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), from_proto_value(v)))
                .collect(),
        ),
    }
}

impl JobSpec {
    /// A gRPC `Job`'s fields.
    pub fn from_grpc(job: rt::Job) -> Result<JobSpec, JobError> {
        let failure = match job.failure_policy.and_then(|p| p.policy) {
            None => None,
            Some(common::job_failure_policy::Policy::Drop(_)) => Some(FailurePolicy::Drop),
            Some(common::job_failure_policy::Policy::Constant(c)) => {
                Some(FailurePolicy::Constant {
                    interval_ns: c.interval.map_or(0, |d| {
                        (d.seconds.max(0) as u64) * 1_000_000_000 + d.nanos.max(0) as u64
                    }),
                    max_retries: c.max_retries,
                })
            }
        };
        Ok(JobSpec {
            schedule: job.schedule.filter(|s| !s.is_empty()),
            repeats: job.repeats,
            due_time: job.due_time.filter(|s| !s.is_empty()),
            ttl: job.ttl.filter(|s| !s.is_empty()),
            data: job.data,
            failure,
        })
    }

    /// The gRPC `Job` named `name`.
    pub fn to_grpc(&self, name: &str) -> rt::Job {
        let failure_policy = self.failure.map(|policy| common::JobFailurePolicy {
            policy: Some(match policy {
                FailurePolicy::Drop => {
                    common::job_failure_policy::Policy::Drop(common::JobFailurePolicyDrop {})
                }
                FailurePolicy::Constant {
                    interval_ns,
                    max_retries,
                } => {
                    common::job_failure_policy::Policy::Constant(common::JobFailurePolicyConstant {
                        interval: Some(prost_types::Duration {
                            seconds: (interval_ns / 1_000_000_000) as i64,
                            nanos: (interval_ns % 1_000_000_000) as i32,
                        }),
                        max_retries,
                    })
                }
            }),
        });
        rt::Job {
            name: name.to_string(),
            schedule: self.schedule.clone(),
            repeats: self.repeats,
            due_time: self.due_time.clone(),
            ttl: self.ttl.clone(),
            data: self.data.clone(),
            failure_policy,
        }
    }

    /// How a stored job was asked for.
    pub fn of(job: &Job) -> JobSpec {
        let word = |k: &str| job.spec.get(k).cloned();
        JobSpec {
            schedule: word("schedule"),
            repeats: word("repeats").and_then(|r| r.parse().ok()),
            due_time: word("dueTime"),
            ttl: word("ttl"),
            data: job
                .data
                .as_deref()
                .and_then(|bytes| prost_types::Any::decode(bytes).ok()),
            failure: job.failure,
        }
    }

    pub(super) fn data_bytes(&self) -> Option<Vec<u8>> {
        self.data.as_ref().map(Message::encode_to_vec)
    }

    pub(super) fn words(&self) -> Words {
        let mut words = BTreeMap::new();
        let fields = [
            ("schedule", self.schedule.clone()),
            ("repeats", self.repeats.map(|r| r.to_string())),
            ("dueTime", self.due_time.clone()),
            ("ttl", self.ttl.clone()),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                words.insert(name.to_string(), value);
            }
        }
        words
    }
}

/// `GET /v1.0/jobs/{name}`: protojson of the `Job` (its `data` the `Any`, as daprd writes it).
pub fn http_view(name: &str, spec: &JobSpec) -> Value {
    let mut view = json!({ "name": name });
    let fields = [
        ("schedule", spec.schedule.clone().map(Value::String)),
        ("repeats", spec.repeats.map(|r| json!(r))),
        ("dueTime", spec.due_time.clone().map(Value::String)),
        ("ttl", spec.ttl.clone().map(Value::String)),
    ];
    for (field, value) in fields {
        if let Some(value) = value {
            view[field] = value;
        }
    }
    if let Some(data) = &spec.data {
        view["data"] = match data.type_url.as_str() {
            VALUE_TYPE => {
                let value = prost_types::Value::decode(data.value.as_slice()).unwrap_or_default();
                json!({ "@type": VALUE_TYPE, "value": from_proto_value(&value) })
            }
            other => json!({ "@type": other }),
        };
    }
    if let Some(policy) = spec.failure {
        view["failurePolicy"] = match policy {
            FailurePolicy::Drop => json!({ "drop": {} }),
            FailurePolicy::Constant {
                interval_ns,
                max_retries,
            } => {
                let mut constant = json!({ "interval": protojson_duration(interval_ns) });
                if let Some(n) = max_retries {
                    constant["maxRetries"] = json!(n);
                }
                json!({ "constant": constant })
            }
        };
    }
    view
}

/// protojson's Duration: seconds with up to 9 fractional digits and an `s` (`3s`, `1.500s`).
fn protojson_duration(interval_ns: u64) -> String {
    let (secs, nanos) = (interval_ns / 1_000_000_000, interval_ns % 1_000_000_000);
    match nanos {
        0 => format!("{secs}s"),
        n if n % 1_000_000 == 0 => format!("{secs}.{:03}s", n / 1_000_000),
        n if n % 1_000 == 0 => format!("{secs}.{:06}s", n / 1_000),
        n => format!("{secs}.{n:09}s"),
    }
}
