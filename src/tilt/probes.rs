//! Tilt's readiness probes (`probe`, `http_get_action`, `tcp_socket_action`, `exec_action`),
//! which a `local_resource`'s `readiness_probe` takes: each returns its settings as a struct,
//! which the call's record keeps (see `crate::tilt::project`).

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneOr;
use starlark::values::structs::AllocStruct;

/// An action's struct: its port and host (Tilt's default `localhost`), and its other fields.
fn action<'v, const N: usize>(
    heap: &'v starlark::values::Heap,
    port: i32,
    host: NoneOr<&str>,
    more: [(&str, &str); N],
) -> Value<'v> {
    let host = host.into_option().unwrap_or("localhost");
    let mut fields = vec![("port", heap.alloc(port)), ("host", heap.alloc(host))];
    fields.extend(more.into_iter().map(|(k, v)| (k, heap.alloc(v))));
    heap.alloc(AllocStruct(fields))
}

#[starlark_module]
pub(super) fn probes(builder: &mut GlobalsBuilder) {
    #[allow(clippy::too_many_arguments)]
    fn probe<'v>(
        #[starlark(require = named, default = 0)] initial_delay_secs: i32,
        #[starlark(require = named, default = 1)] timeout_secs: i32,
        #[starlark(require = named, default = 10)] period_secs: i32,
        #[starlark(require = named, default = 1)] success_threshold: i32,
        #[starlark(require = named, default = 3)] failure_threshold: i32,
        #[starlark(require = named)] exec: Option<Value<'v>>,
        #[starlark(require = named)] http_get: Option<Value<'v>>,
        #[starlark(require = named)] tcp_socket: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = (initial_delay_secs, timeout_secs, period_secs);
        let _ = (success_threshold, failure_threshold);
        let none = Value::new_none();
        Ok(eval.heap().alloc(AllocStruct([
            ("exec", exec.unwrap_or(none)),
            ("http_get", http_get.unwrap_or(none)),
            ("tcp_socket", tcp_socket.unwrap_or(none)),
        ])))
    }

    fn http_get_action<'v>(
        port: i32,
        #[starlark(require = named, default = NoneOr::None)] host: NoneOr<&str>,
        #[starlark(require = named, default = "http")] scheme: &str,
        #[starlark(require = named, default = "")] path: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let heap = eval.heap();
        Ok(action(
            heap,
            port,
            host,
            [("scheme", scheme), ("path", path)],
        ))
    }

    fn tcp_socket_action<'v>(
        port: i32,
        #[starlark(require = named, default = NoneOr::None)] host: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        Ok(action(eval.heap(), port, host, []))
    }

    fn exec_action<'v>(
        command: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        Ok(eval.heap().alloc(AllocStruct([("command", command)])))
    }
}
