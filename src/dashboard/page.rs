//! The page, rendered on the server: the read-only overview (apps, components, subscriptions)
//! is all there without JavaScript; the script then keeps it live and adds the actions, logs,
//! state browser, pub/sub view and timeline.

use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use crate::logs::now_ms;
use crate::project::ProjectView;

/// Text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub async fn render(State(view): State<ProjectView>) -> Html<String> {
    let mut out = String::with_capacity(16 * 1024);
    let title = format!("{} · daca", esc(&view.name));
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title><link rel="stylesheet" href="/assets/dashboard.css"><script src="/assets/dashboard.js" defer></script></head><body>
<header><h1>{project} <small>daca</small></h1><p id="redis">Redis: {redis}</p>
<nav aria-label="Sections"><a href='#apps'>Apps</a> <a href='#logs'>Logs</a> <a href='#components'>Components</a> <a href='#state'>State</a> <a href='#pubsub'>Pub/sub</a> <a href='#actors'>Actors</a> <a href='#workflows'>Workflows</a> <a href='#jobs'>Jobs</a> <a href='#resiliency'>Resiliency</a> <a href='#events'>Events</a></nav></header><main>
"#,
        project = esc(&view.name),
        redis = esc(&format!(
            "{} {}",
            view.redis.mode,
            view.redis.url.clone().unwrap_or_default()
        )),
    );
    apps(&mut out, &view);
    out.push_str(LOGS_SECTION);
    components(&mut out, &view);
    out.push_str(SECTIONS_FOR_SCRIPT);
    out.push_str("</main></body></html>\n");
    Html(out)
}

fn apps(out: &mut String, view: &ProjectView) {
    out.push_str(r#"<section id="apps" aria-labelledby="apps-h"><h2 id="apps-h">Apps</h2><table><thead><tr><th scope="col">App</th><th scope="col">State</th><th scope="col">Runtime</th><th scope="col">Port</th><th scope="col">Sidecar HTTP / gRPC</th><th scope="col">Restarts</th><th scope="col">Uptime</th><th scope="col">Reload last / median</th><th scope="col">Actions</th></tr></thead><tbody id="apps-body">"#);
    for app in &view.snapshot().apps {
        let status = app.handle.status();
        let (port, sidecar) = (app.spec.process.port, app.sidecar());
        let runtime = match (&status.container, status.pid) {
            (Some(id), _) => format!("container {id}"),
            (None, Some(pid)) => format!("pid {pid}"),
            (None, None) => "-".into(),
        };
        let uptime = match (status.state.is_running(), status.started_at_ms) {
            (true, Some(start)) => format!("{} s", now_ms().saturating_sub(start) / 1000),
            _ => "-".into(),
        };
        let reload = app.reloads.view();
        let reload = match (reload.last_ms, reload.median_ms) {
            (Some(last), Some(median)) => format!("{last} ms / {median} ms"),
            _ => "-".into(),
        };
        let _ = write!(
            out,
            r#"<tr data-app="{name}"><th scope="row">{name}</th><td class="state state-{state}">{state}</td><td class="runtime">{runtime}</td><td>{port}</td><td>{sidecar}</td><td class="restarts">{restarts}</td><td class="uptime">{uptime}</td><td class="reload">{reload}</td><td class="actions"></td></tr>"#,
            name = esc(&status.name),
            state = status.state.as_str(),
            port = match (app.pod_host_port, port) {
                (Some(host), Some(port)) => format!("{}:{port} (pod)", host.unwrap_or(port)),
                (_, port) => port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            },
            sidecar = match sidecar {
                Some(ports) => format!("{} / {}", ports.http, ports.grpc),
                None => "none".into(),
            },
            restarts = status.restarts,
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn components(out: &mut String, view: &ProjectView) {
    out.push_str(r#"<section id="components" aria-labelledby="components-h"><h2 id="components-h">Components</h2><div id="components-body">"#);
    if let Some(error) = view.snapshot().component_error.clone() {
        let _ = write!(
            out,
            r#"<p class="error" role="alert">Not applied: {}</p>"#,
            esc(&error)
        );
    }
    {
        let loaded = view.shared.components();
        out.push_str(r#"<table><thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Version</th><th scope="col">Scopes</th><th scope="col">From</th></tr></thead><tbody>"#);
        let rows = super::all_components(&loaded);
        for c in rows {
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.name),
                esc(&c.type_name),
                esc(&c.version),
                esc(&if c.scopes.is_empty() {
                    "all apps".to_string()
                } else {
                    c.scopes.join(", ")
                }),
                esc(c.origin.as_deref().unwrap_or("daca default")),
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str(r#"<h3>Subscriptions</h3><table><thead><tr><th scope="col">App</th><th scope="col">Pub/sub</th><th scope="col">Topic</th><th scope="col">Routes</th><th scope="col">Dead letters</th><th scope="col">Kind</th></tr></thead><tbody>"#);
    for (app, s) in view.subscriptions() {
        let routes: Vec<String> = s
            .rules
            .iter()
            .map(|r| {
                if r.source.is_empty() {
                    r.path.clone()
                } else {
                    format!("{} → {}", r.source, r.path)
                }
            })
            .collect();
        let kind = match s.kind {
            crate::pubsub::subscription::Kind::Declarative => "declarative",
            crate::pubsub::subscription::Kind::Programmatic => "programmatic",
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{kind}</td></tr>",
            esc(&app),
            esc(&s.pubsub),
            esc(&s.topic),
            esc(&routes.join("; ")),
            esc(s.dead_letter_topic.as_deref().unwrap_or("-")),
        );
    }
    out.push_str("</tbody></table></div></section>\n");
}

/// The live sections: empty shells the script fills (with a note for readers without it).
const LOGS_SECTION: &str = r#"<section id="logs" aria-labelledby="logs-h"><h2 id="logs-h">Logs</h2><noscript><p>Live logs need JavaScript; <code>daca logs -f</code> shows them in a terminal.</p></noscript><div class="controls" hidden><label>App <select id="log-source"><option value="">all</option></select></label> <label>Filter <input id="log-filter" type="search" placeholder="text"></label> <button id="log-pause" type="button" aria-pressed="false">Pause</button></div><ol id="log" aria-live="off"></ol></section>
"#;

const SECTIONS_FOR_SCRIPT: &str = r#"<section id="state" aria-labelledby="state-h"><h2 id="state-h">State</h2><noscript><p>Browsing state needs JavaScript.</p></noscript><form id="state-form" hidden><label>Store <select id="state-store"></select></label> <label>App-id <select id="state-app"></select></label> <button id="state-list" type="submit">List keys</button></form><ul id="state-keys"></ul><div id="state-detail" hidden><h3 id="state-key"></h3><p id="state-meta"></p><pre id="state-value"></pre><button id="state-delete" type="button">Delete key</button></div></section>
<section id="pubsub" aria-labelledby="pubsub-h"><h2 id="pubsub-h">Pub/sub</h2><noscript><p>The pub/sub view needs JavaScript.</p></noscript><table hidden><thead><tr><th scope="col">App</th><th scope="col">Pub/sub</th><th scope="col">Topic</th><th scope="col">Delivered</th><th scope="col">Pending</th><th scope="col">Retried</th><th scope="col">Dead-lettered</th></tr></thead><tbody id="pubsub-counts"></tbody></table><form id="publish-form" hidden><h3>Publish a test message</h3><label>Pub/sub <select id="pub-pubsub"></select></label> <label>Topic <input id="pub-topic" required></label> <label>Data <textarea id="pub-data" rows="3">{"hello": "from the dashboard"}</textarea></label> <button id="pub-send" type="submit">Publish</button> <span id="pub-result" role="status"></span></form><h3>Last messages</h3><ol id="pubsub-recent"></ol></section>
<section id="actors" aria-labelledby="actors-h"><h2 id="actors-h">Actors</h2><noscript><p>The actor view needs JavaScript; <code>daca ps --actors</code> shows it in a terminal.</p></noscript><div id="actors-body" hidden><table><thead><tr><th scope="col">Type</th><th scope="col">Hosts</th><th scope="col">Idle timeout</th><th scope="col">Reentrancy</th></tr></thead><tbody id="actor-types"></tbody></table><h3>Active</h3><table><thead><tr><th scope="col">Actor</th><th scope="col">Host</th><th scope="col">Idle</th><th scope="col">Timers</th><th scope="col">Actions</th></tr></thead><tbody id="actor-active"></tbody></table><h3>Reminders</h3><table><thead><tr><th scope="col">Reminder</th><th scope="col">Actor</th><th scope="col">Next</th><th scope="col">Period</th></tr></thead><tbody id="actor-reminders"></tbody></table><form id="actor-form"><h3>Call a method</h3><label>Type <input id="actor-type" required></label> <label>Id <input id="actor-id" required></label> <label>Method <input id="actor-method" required></label> <label>Body <textarea id="actor-body" rows="2"></textarea></label> <button id="actor-call" type="submit">Call</button> <span id="actor-result" role="status"></span></form><div id="actor-detail" hidden><h3 id="actor-name"></h3><pre id="actor-state"></pre></div></div></section>
<section id="jobs" aria-labelledby="jobs-h"><h2 id="jobs-h">Jobs</h2><noscript><p>The jobs view needs JavaScript; <code>daca jobs</code> shows it in a terminal.</p></noscript><table hidden><thead><tr><th scope="col">App</th><th scope="col">Job</th><th scope="col">Schedule</th><th scope="col">Due time</th><th scope="col">Repeats</th><th scope="col">Next</th><th scope="col"></th></tr></thead><tbody id="job-list"></tbody></table></section>
<section id="resiliency" aria-labelledby="resiliency-h"><h2 id="resiliency-h">Resiliency</h2><noscript><p>The resiliency view needs JavaScript.</p></noscript><div id="resiliency-body" hidden><p id="resiliency-none">No <code>kind: Resiliency</code> resource: Dapr's built-in defaults apply (no retries of app errors).</p><table><thead><tr><th scope="col">Policy</th><th scope="col">Kind</th><th scope="col">What it does</th><th scope="col">Resource</th></tr></thead><tbody id="resiliency-policies"></tbody></table><h3>Targets</h3><table><thead><tr><th scope="col">Target</th><th scope="col">Kind</th><th scope="col">Timeout</th><th scope="col">Retry</th><th scope="col">Circuit breaker</th></tr></thead><tbody id="resiliency-targets"></tbody></table><h3>Circuit breakers</h3><table><thead><tr><th scope="col">Breaker</th><th scope="col">Sidecar</th><th scope="col">Policy</th><th scope="col">State</th><th scope="col">Failures in a row</th><th scope="col">Requests</th></tr></thead><tbody id="resiliency-breakers"></tbody></table></div></section>
<section id="workflows" aria-labelledby="workflows-h"><h2 id="workflows-h">Workflows</h2><noscript><p>The workflow view needs JavaScript; <code>daca workflows</code> shows it in a terminal.</p></noscript><div id="workflows-body" hidden><p id="workflow-workers"></p><table><thead><tr><th scope="col">Instance</th><th scope="col">Workflow</th><th scope="col">App</th><th scope="col">Status</th><th scope="col">Started</th><th scope="col">Updated</th></tr></thead><tbody id="workflow-list"></tbody></table><div id="workflow-detail" hidden><h3 id="workflow-name"></h3><p id="workflow-summary"></p><p class="controls"><button type="button" data-verb="suspend">Suspend</button> <button type="button" data-verb="resume">Resume</button> <button type="button" data-verb="terminate">Terminate</button> <button type="button" data-verb="purge">Purge</button></p><form id="workflow-raise"><label>Event <input id="workflow-event" required></label> <label>Data (JSON) <input id="workflow-data" placeholder='"approved"'></label> <button type="submit">Raise</button> <span id="workflow-result" role="status"></span></form><table><thead><tr><th scope="col">#</th><th scope="col">At</th><th scope="col">Event</th><th scope="col">Name</th><th scope="col">Input</th><th scope="col">Output / failure</th><th scope="col">Took</th></tr></thead><tbody id="workflow-history"></tbody></table></div></div></section>
<section id="events" aria-labelledby="events-h"><h2 id="events-h">Events</h2><noscript><p>The timeline needs JavaScript.</p></noscript><ol id="timeline"></ol></section>
"#;
