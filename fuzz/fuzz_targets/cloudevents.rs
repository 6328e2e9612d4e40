//! Publishing: the CloudEvent daca makes of a body (a CloudEvent of the app's own, JSON, text
//! or bytes) under any content type and `metadata.*`: an envelope or an error.
#![no_main]

use std::collections::BTreeMap;

// An input is the content type, a newline, the metadata as `key=value&...`, a newline, then
// the body (so the seeds in fuzz/seeds/cloudevents are readable).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let content_type = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let content_type = content_type.as_ref();
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let metadata: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let publish = daca::pubsub::envelope::Publish {
        app_id: "app",
        pubsub: "pubsub",
        topic: "orders",
        body,
        content_type: (!content_type.is_empty()).then_some(content_type),
        metadata: &metadata,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate: "",
    };
    let _ = daca::pubsub::envelope::raw_payload(&metadata);
    let _ = daca::pubsub::envelope::ttl(&metadata);
    let _ = daca::pubsub::envelope::envelope(&publish);
});
