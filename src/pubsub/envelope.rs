//! The CloudEvents envelope Dapr wraps around a published payload
//! (components-contrib `pubsub/envelope.go`), byte for byte: Go marshals a map, so keys come
//! out sorted, nested objects too, and `<`, `>`, `&` are escaped as `\u003c`, `\u003e`, `\u0026`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

/// What a publish call gives the envelope.
pub struct Publish<'a> {
    pub app_id: &'a str,
    pub pubsub: &'a str,
    pub topic: &'a str,
    pub body: &'a [u8],
    /// The request's `Content-Type`, if any.
    pub content_type: Option<&'a str>,
    /// The request's `metadata.*` query parameters.
    pub metadata: &'a BTreeMap<String, String>,
    /// W3C trace context of the publish call.
    pub traceparent: &'a str,
    pub tracestate: &'a str,
}

/// Why no envelope could be made.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("cannot parse the CloudEvent payload: {0}")]
    CloudEvent(String),
    #[error("{0}")]
    Metadata(String),
}

/// Whether `metadata.rawPayload` asks for no envelope; a value that is not a boolean is an error.
pub fn raw_payload(metadata: &BTreeMap<String, String>) -> Result<bool, EnvelopeError> {
    match metadata.get("rawPayload") {
        None => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| {
            EnvelopeError::Metadata(format!(
                "rawPayload value must be a valid boolean: actual is '{v}'"
            ))
        }),
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The media type without parameters, lower-cased.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The envelope's bytes, as Dapr would store them in the broker.
pub fn envelope(p: &Publish) -> Result<Vec<u8>, EnvelopeError> {
    let now = SystemTime::now();
    let content_type = p.content_type.filter(|c| !c.is_empty());
    let mut event = match content_type.map(media_type).as_deref() {
        Some("application/cloudevents+json") => {
            let parsed: Value = serde_json::from_slice(p.body)
                .map_err(|e| EnvelopeError::CloudEvent(e.to_string()))?;
            let Value::Object(mut event) = parsed else {
                return Err(EnvelopeError::CloudEvent("it is not a JSON object".into()));
            };
            // A complete event from the publisher: only what is missing is filled in, and a
            // missing source is "Dapr" here, not the app-id.
            event.entry("source").or_insert_with(|| "Dapr".into());
            let defaults = base_fields(p, now, content_type);
            for (key, value) in defaults {
                if key != "id" && key != "datacontenttype" {
                    event.entry(key).or_insert(value);
                }
            }
            event.insert("topic".into(), p.topic.into());
            event.insert("pubsubname".into(), p.pubsub.into());
            event
        }
        media => {
            let mut event = base_fields(p, now, content_type);
            match media {
                Some("application/json") => {
                    let data = serde_json::from_slice::<Value>(p.body)
                        .unwrap_or_else(|_| Value::String(lossy(p.body)));
                    event.insert("data".into(), data);
                }
                Some(
                    "application/octet-stream"
                    | "application/cloudevents+protobuf"
                    | "application/protobuf"
                    | "application/x-protobuf",
                ) => {
                    event.insert("data_base64".into(), base64(p.body).into());
                }
                _ => {
                    event.insert("data".into(), Value::String(lossy(p.body)));
                }
            }
            event
        }
    };
    apply_overrides(&mut event, p.metadata);
    if let Some(ttl) = ttl(p.metadata)? {
        // RFC 3339 ends with year 9999; past it the expiration could not be written (and the
        // clock could overflow): found by `scripts/fuzz cloudevents`.
        let last = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        let expires = now
            .checked_add(ttl)
            .filter(|at| *at <= last)
            .ok_or_else(|| {
                EnvelopeError::Metadata(format!(
                    "incorrect value for metadata 'ttlInSeconds': {} is past the year 9999",
                    ttl.as_secs()
                ))
            })?;
        event.insert(
            "expiration".into(),
            humantime::format_rfc3339_seconds(expires)
                .to_string()
                .into(),
        );
    }
    Ok(go_json(&Value::Object(event)))
}

/// The fields every envelope has, before overrides.
fn base_fields(p: &Publish, now: SystemTime, content_type: Option<&str>) -> Map<String, Value> {
    let mut event = Map::new();
    event.insert("id".into(), uuid_v4().into());
    event.insert("specversion".into(), "1.0".into());
    let source = if p.app_id.is_empty() {
        "Dapr"
    } else {
        p.app_id
    };
    event.insert("source".into(), source.into());
    event.insert("type".into(), "com.dapr.event.sent".into());
    event.insert(
        "datacontenttype".into(),
        content_type.unwrap_or("text/plain").into(),
    );
    event.insert("topic".into(), p.topic.into());
    event.insert("pubsubname".into(), p.pubsub.into());
    event.insert("traceid".into(), p.traceparent.into());
    event.insert("traceparent".into(), p.traceparent.into());
    event.insert("tracestate".into(), p.tracestate.into());
    event.insert(
        "time".into(),
        humantime::format_rfc3339_seconds(now).to_string().into(),
    );
    event
}

/// `metadata.cloudevent.*` overrides; a traceparent override also sets `traceid`.
fn apply_overrides(event: &mut Map<String, Value>, metadata: &BTreeMap<String, String>) {
    for field in ["id", "source", "type", "subject", "tracestate"] {
        if let Some(value) = metadata.get(&format!("cloudevent.{field}")) {
            event.insert(field.into(), value.as_str().into());
        }
    }
    if let Some(value) = metadata
        .get("cloudevent.traceparent")
        .or_else(|| metadata.get("cloudevent.traceid"))
    {
        event.insert("traceparent".into(), value.as_str().into());
        event.insert("traceid".into(), value.as_str().into());
    }
}

/// `metadata.ttlInSeconds` (or `metadata.ttl`): whole seconds or a Go duration such as `30s`.
pub fn ttl(metadata: &BTreeMap<String, String>) -> Result<Option<Duration>, EnvelopeError> {
    let Some(raw) = metadata.get("ttlInSeconds").or_else(|| metadata.get("ttl")) else {
        return Ok(None);
    };
    if let Ok(seconds) = raw.parse::<i64>() {
        return Ok((seconds > 0).then(|| Duration::from_secs(seconds as u64)));
    }
    humantime::parse_duration(raw).map(Some).map_err(|_| {
        EnvelopeError::Metadata(format!(
            "incorrect value for metadata 'ttlInSeconds': {raw}"
        ))
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// JSON as Go's `json.Marshal` writes it: compact, sorted keys, HTML characters escaped.
pub fn go_json(value: &Value) -> Vec<u8> {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// Standard base64 with padding, as Go's `base64.StdEncoding`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); None when the text is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.trim_end_matches('=').bytes().collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + produced]);
    }
    Some(out)
}

/// A random (version 4) UUID. Event ids must be unique, not secret: a splitmix64 stream seeded
/// once from the clock and the pid is enough, and needs no dependency.
pub fn uuid_v4() -> String {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = STATE.load(Ordering::Relaxed);
    if seed == 0 {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let _ = STATE.compare_exchange(
            0,
            nanos ^ (u64::from(std::process::id()) << 40) | 1,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    let next = || {
        let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let (a, b) = (next(), next());
    let a = (a & !0xF000) | 0x4000; // version 4
    let b = (b & !(0xC << 60)) | (0x8 << 60); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish<'a>(
        body: &'a [u8],
        content_type: Option<&'a str>,
        metadata: &'a BTreeMap<String, String>,
    ) -> Value {
        let p = Publish {
            app_id: "checkout",
            pubsub: "pubsub",
            topic: "orders",
            body,
            content_type,
            metadata,
            traceparent: "00-aa-bb-01",
            tracestate: "",
        };
        serde_json::from_slice(&envelope(&p).unwrap()).unwrap()
    }

    #[test]
    fn json_payload_is_embedded_with_sorted_keys_and_go_escaping() {
        let none = BTreeMap::new();
        let p = Publish {
            app_id: "checkout",
            pubsub: "pubsub",
            topic: "orders",
            body: br#"{"z":1,"a":"<b>&","n":12345678901234567890.10}"#,
            content_type: Some("application/json; charset=utf-8"),
            metadata: &none,
            traceparent: "00-aa-bb-01",
            tracestate: "",
        };
        let text = String::from_utf8(envelope(&p).unwrap()).unwrap();
        assert!(
            text.starts_with(r#"{"data":{"a":"\u003cb\u003e\u0026","n":12345678901234567890.10,"z":1},"datacontenttype":"application/json; charset=utf-8","id":""#),
            "{text}"
        );
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&text)
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "data",
                "datacontenttype",
                "id",
                "pubsubname",
                "source",
                "specversion",
                "time",
                "topic",
                "traceid",
                "traceparent",
                "tracestate",
                "type"
            ]
        );
    }

    #[test]
    fn content_types_follow_dapr() {
        let none = BTreeMap::new();
        let e = publish(b"hello", None, &none);
        assert_eq!(e["datacontenttype"], "text/plain");
        assert_eq!(e["data"], "hello");
        let e = publish(b"not json", Some("application/json"), &none);
        assert_eq!(e["data"], "not json");
        let e = publish(b"\x00\x01\xff", Some("application/octet-stream"), &none);
        assert_eq!(e["data_base64"], "AAH/");
        assert!(e.get("data").is_none());
        let e = publish(br#"{"a":1}"#, Some("application/merge-patch+json"), &none);
        assert_eq!(e["data"], r#"{"a":1}"#, "+json is not JSON to Dapr");
    }

    #[test]
    fn cloudevents_are_passed_through_and_completed() {
        let none = BTreeMap::new();
        let body = br#"{"id":"mine","source":"s","type":"t","specversion":"1.0","data":{"x":1},"topic":"other"}"#;
        let e = publish(body, Some("application/cloudevents+json"), &none);
        assert_eq!(e["id"], "mine");
        assert_eq!(e["type"], "t");
        assert_eq!(e["topic"], "orders");
        assert_eq!(e["pubsubname"], "pubsub");
        assert!(e["time"].is_string());
        let no_id = publish(
            br#"{"data":1}"#,
            Some("application/cloudevents+json"),
            &none,
        );
        assert!(no_id.get("id").is_none(), "Dapr does not make an id here");
    }

    #[test]
    fn overrides_and_ttl() {
        let metadata = BTreeMap::from([
            ("cloudevent.id".to_string(), "fixed".to_string()),
            ("cloudevent.type".to_string(), "my.type".to_string()),
            (
                "cloudevent.traceparent".to_string(),
                "00-cc-dd-01".to_string(),
            ),
            ("ttlInSeconds".to_string(), "30".to_string()),
        ]);
        let e = publish(b"x", None, &metadata);
        assert_eq!(e["id"], "fixed");
        assert_eq!(e["type"], "my.type");
        assert_eq!(e["traceid"], "00-cc-dd-01");
        assert!(e["expiration"].as_str().unwrap().ends_with('Z'));
        let bad = BTreeMap::from([("ttlInSeconds".to_string(), "soon".to_string())]);
        let p = Publish {
            app_id: "a",
            pubsub: "p",
            topic: "t",
            body: b"",
            content_type: None,
            metadata: &bad,
            traceparent: "",
            tracestate: "",
        };
        assert!(envelope(&p).is_err());
    }

    /// `scripts/fuzz cloudevents` found it: a TTL whose expiration is past year 9999 made
    /// the RFC 3339 formatter panic; now it is the publish's 400.
    #[test]
    fn a_ttl_past_the_year_9999_is_refused() {
        for ttl in ["15555555555555550", "9223372036854775807", "300000000000s"] {
            let metadata = BTreeMap::from([("ttlInSeconds".to_string(), ttl.to_string())]);
            let p = Publish {
                app_id: "a",
                pubsub: "p",
                topic: "t",
                body: b"{}",
                content_type: Some("application/json"),
                metadata: &metadata,
                traceparent: "",
                tracestate: "",
            };
            let err = envelope(&p).unwrap_err().to_string();
            assert!(err.contains("past the year 9999"), "{ttl}: {err}");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        for text in [&b""[..], b"M", b"Ma", b"Man", b"\x00\xff\x10hello"] {
            assert_eq!(base64_decode(&base64(text)).unwrap(), text);
        }
        assert!(base64_decode("a?b=").is_none());
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(uuid_v4(), uuid_v4());
        assert!(!raw_payload(&BTreeMap::new()).unwrap());
        let bad = BTreeMap::from([("rawPayload".to_string(), "yes".to_string())]);
        assert!(raw_payload(&bad).is_err());
    }
}
