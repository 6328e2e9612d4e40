//! State API throughput and latency: daca's sidecar vs the same Redis directly.
//!
//! Starts a redis-server and `daca up` (release build) on a throwaway project whose statestore
//! is that Redis, then, with 1 KiB values:
//! - throughput, closed loop: CONCURRENCY workers for a few seconds each, each with its own
//!   keep-alive connection: sidecar GET/SET over HTTP/1.1 vs direct GET/SET with redis-rs;
//! - latency, open loop at 1000 requests/s: median and p99 of sidecar GET vs direct GET, plus
//!   the sidecar's health endpoint (the HTTP round trip alone, no store).
//!
//! The load generator, daca and Redis share the machine's cores. Only 127.0.0.1 is contacted.
//! Run through `scripts/bench/state`.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::disallowed_types,
    reason = "a benchmark unwraps its setup and reads as one sequence of measurements"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;

use common::*;

const PHASE: Duration = Duration::from_secs(2);
const ROUNDS: usize = 5;
const LATENCY_PHASE: Duration = Duration::from_secs(4);

/// CPU time (user + system) a process has used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: utime is field 12, stime 13 (0-based), in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

type Grpc = dapr::dapr::proto::runtime::v1::dapr_client::DaprClient<tonic::transport::Channel>;

/// One HTTP/2 connection to the sidecar's gRPC API.
async fn grpc(port: u16) -> Grpc {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap();
    Grpc::new(channel)
}

fn get_request() -> dapr::dapr::proto::runtime::v1::GetStateRequest {
    dapr::dapr::proto::runtime::v1::GetStateRequest {
        store_name: "statestore".into(),
        key: "bench-key".into(),
        ..Default::default()
    }
}

fn save_request(value: &str) -> dapr::dapr::proto::runtime::v1::SaveStateRequest {
    dapr::dapr::proto::runtime::v1::SaveStateRequest {
        store_name: "statestore".into(),
        states: vec![dapr::dapr::proto::common::v1::StateItem {
            key: "bench-key".into(),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        }],
    }
}

#[tokio::main]
async fn main() {
    let (redis_port, sidecar, grpc_port) = (free_port(), free_port(), free_port());
    let project = tempfile::tempdir().unwrap();
    let redis = redis_server(redis_port);
    let manifest = format!(
        "name: bench\nnetwork: host\nredis: {{ url: redis://127.0.0.1:{redis_port} }}\napps:\n  - id: bench-app\n    command: [\"sleep\", \"3600\"]\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {grpc_port}\n"
    );
    let daca = daca_up(project.path(), &manifest);
    let daca_pid = daca.id();
    let _processes = Processes(vec![daca, redis]);

    let value = "x".repeat(1024);
    let body = Bytes::from(format!(r#"[{{"key":"bench-key","value":"{value}"}}]"#));
    wait_for(sidecar, "/v1.0/healthz/outbound", |s, _| s == 204).await;
    assert_eq!(
        send(
            &mut connect(sidecar).await,
            "POST",
            "/v1.0/state/statestore",
            body.clone()
        )
        .await
        .0,
        204
    );
    let client = redis::Client::open(format!("redis://127.0.0.1:{redis_port}")).unwrap();
    let direct = Arc::new(
        futures_util::future::join_all(
            (0..CONCURRENCY).map(|_| client.get_multiplexed_async_connection()),
        )
        .await,
    );
    let mut first = direct[0].as_ref().unwrap().clone();
    let _: () = redis::cmd("SET")
        .arg("direct-key")
        .arg(&value)
        .query_async(&mut first)
        .await
        .unwrap();

    let script = redis::Script::new(daca::state::WRITE_SCRIPT);
    let quoted = format!("\"{value}\"");
    let grpc_clients: Vec<Grpc> =
        futures_util::future::join_all((0..CONCURRENCY).map(|_| grpc(grpc_port))).await;
    let grpc_clients = Arc::new(grpc_clients);
    let mut rows: [Vec<(f64, f64)>; 6] = Default::default();
    // daca's own CPU per request (µs), per row: separates the sidecar's cost from the load
    // generator's, which shares the cores.
    let mut cost: [Vec<f64>; 6] = Default::default();
    for _ in 0..ROUNDS {
        let before = cpu_seconds(daca_pid);
        let sidecar_get = throughput(PHASE, |_, deadline| async move {
            let mut sender = connect(sidecar).await;
            let mut n = 0;
            while Instant::now() < deadline {
                let path = "/v1.0/state/statestore/bench-key";
                assert_eq!(
                    send(&mut sender, "GET", path, Bytes::new()).await,
                    (200, 1026)
                );
                n += 1;
            }
            n
        })
        .await;
        let get_cost = (cpu_seconds(daca_pid) - before) * 1e6 / (sidecar_get * PHASE.as_secs_f64());
        let direct_get = throughput(PHASE, |i, deadline| {
            let mut connection = direct[i].as_ref().unwrap().clone();
            async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let data: Vec<u8> = redis::cmd("GET")
                        .arg("direct-key")
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                    assert_eq!(data.len(), 1024);
                    n += 1;
                }
                n
            }
        })
        .await;
        let before = cpu_seconds(daca_pid);
        let sidecar_set = throughput(PHASE, |_, deadline| {
            let body = body.clone();
            async move {
                let mut sender = connect(sidecar).await;
                let mut n = 0;
                while Instant::now() < deadline {
                    let path = "/v1.0/state/statestore";
                    assert_eq!(send(&mut sender, "POST", path, body.clone()).await.0, 204);
                    n += 1;
                }
                n
            }
        })
        .await;
        let set_cost = (cpu_seconds(daca_pid) - before) * 1e6 / (sidecar_set * PHASE.as_secs_f64());
        let direct_set = throughput(PHASE, |i, deadline| {
            let (mut connection, value) = (direct[i].as_ref().unwrap().clone(), value.clone());
            async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let _: () = redis::cmd("SET")
                        .arg("direct-key")
                        .arg(&value)
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            }
        })
        .await;
        // The same etag/version script a sidecar SET runs, called directly: what a Dapr-layout
        // write costs Redis before any HTTP is involved.
        let direct_script = throughput(PHASE, |i, deadline| {
            let mut connection = direct[i].as_ref().unwrap().clone();
            let (script, quoted) = (script.clone(), quoted.clone());
            async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let _: i64 = script
                        .key("direct-hash")
                        .arg("set")
                        .arg("0")
                        .arg(&quoted)
                        .arg("1")
                        .arg("")
                        .invoke_async(&mut connection)
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            }
        })
        .await;
        let before = cpu_seconds(daca_pid);
        let grpc_get = throughput(PHASE, |i, deadline| {
            let mut client = grpc_clients[i].clone();
            async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let got = client.get_state(get_request()).await.unwrap().into_inner();
                    assert_eq!(got.data.len(), 1026);
                    n += 1;
                }
                n
            }
        })
        .await;
        let grpc_get_cost =
            (cpu_seconds(daca_pid) - before) * 1e6 / (grpc_get * PHASE.as_secs_f64());
        let before = cpu_seconds(daca_pid);
        let grpc_set = throughput(PHASE, |i, deadline| {
            let (mut client, quoted) = (grpc_clients[i].clone(), quoted.clone());
            async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    client.save_state(save_request(&quoted)).await.unwrap();
                    n += 1;
                }
                n
            }
        })
        .await;
        let grpc_set_cost =
            (cpu_seconds(daca_pid) - before) * 1e6 / (grpc_set * PHASE.as_secs_f64());
        rows[0].push((sidecar_get, direct_get));
        rows[1].push((sidecar_set, direct_set));
        rows[2].push((sidecar_set, direct_script));
        rows[3].push((grpc_get, direct_get));
        rows[4].push((grpc_set, direct_set));
        rows[5].push((grpc_get, sidecar_get));
        cost[0].push(get_cost);
        cost[1].push(set_cost);
        cost[2].push(set_cost);
        cost[3].push(grpc_get_cost);
        cost[4].push(grpc_set_cost);
        cost[5].push(grpc_get_cost);
    }

    let same_client = same_client_rows(daca_pid, sidecar, grpc_port, project.path());

    let pool = Pool(Arc::new(std::sync::Mutex::new(
        futures_util::future::join_all((0..64).map(|_| connect(sidecar))).await,
    )));
    let p = pool.clone();
    let sidecar_latency = latencies(LATENCY_PHASE, move || {
        let p = p.clone();
        async move { p.get("/v1.0/state/statestore/bench-key").await }
    })
    .await;
    let health_latency = latencies(LATENCY_PHASE, move || {
        let p = pool.clone();
        async move { p.get("/v1.0/healthz").await }
    })
    .await;
    let grpc_one = grpc_clients[0].clone();
    let grpc_latency = latencies(LATENCY_PHASE, move || {
        let mut client = grpc_one.clone();
        async move {
            client.get_state(get_request()).await.unwrap();
        }
    })
    .await;
    let direct_latency = latencies(LATENCY_PHASE, move || {
        let mut connection = first.clone();
        async move {
            let _: Vec<u8> = redis::cmd("GET")
                .arg("direct-key")
                .query_async(&mut connection)
                .await
                .unwrap();
        }
    })
    .await;

    println!(
        "state API, 1 KiB values, {CONCURRENCY} concurrent workers on keep-alive connections, \
         {ROUNDS} interleaved rounds of {} s per measurement",
        PHASE.as_secs()
    );
    println!(
        "{:<34}{:>14}{:>14}{:>8}{:>13}   per round",
        "", "sidecar req/s", "direct req/s", "median", "daca µs/req"
    );
    let names = [
        "GET  vs Redis GET",
        "SET  vs Redis SET",
        "SET  vs the same write script",
        "gRPC GetState vs Redis GET",
        "gRPC SaveState vs Redis SET",
        "gRPC GetState vs HTTP GET (sidecar)",
    ];
    for ((name, row), cost) in names.iter().zip(&rows).zip(&cost) {
        let mut cost = cost.clone();
        cost.sort_by(f64::total_cmp);
        let mut ratios: Vec<f64> = row.iter().map(|(s, d)| s / d * 100.0).collect();
        ratios.sort_by(f64::total_cmp);
        let median = |f: fn(&(f64, f64)) -> f64| {
            let mut v: Vec<f64> = row.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let each: Vec<String> = row
            .iter()
            .map(|(s, d)| format!("{:.0}%", s / d * 100.0))
            .collect();
        println!(
            "{name:<34}{:>14.0}{:>14.0}{:>7.0}%{:>13.1}   {}",
            median(|r| r.0),
            median(|r| r.1),
            ratios[ratios.len() / 2],
            cost[cost.len() / 2],
            each.join(" ")
        );
    }
    print_same_client(&same_client);
    println!(
        "latency at {RATE} req/s, open loop, {} requests each (median / p99):",
        sidecar_latency.len()
    );
    let (sm, dm, hm) = (
        ms(&sidecar_latency, 0.5),
        ms(&direct_latency, 0.5),
        ms(&health_latency, 0.5),
    );
    println!(
        "  sidecar state GET   {sm:.3} / {:.3} ms",
        ms(&sidecar_latency, 0.99)
    );
    let gm = ms(&grpc_latency, 0.5);
    println!(
        "  gRPC GetState       {gm:.3} / {:.3} ms   (added {:.3} ms)",
        ms(&grpc_latency, 0.99),
        gm - dm
    );
    println!(
        "  direct Redis GET    {dm:.3} / {:.3} ms",
        ms(&direct_latency, 0.99)
    );
    println!(
        "  sidecar healthz     {hm:.3} / {:.3} ms   (the HTTP round trip alone)",
        ms(&health_latency, 0.99)
    );
    println!(
        "  added by the sidecar at the median: {:.3} ms (goal <= 0.15 ms; Dapr 1.17 publishes ~0.28 ms)",
        sm - dm
    );
}

/// Per round: (requests/s, daca µs per request) for HTTP/1.1 GET on 32 connections, gRPC
/// GetState on 32 connections with one call each, and on 4 connections with 8 calls each (as
/// a gRPC channel multiplexes): the same 32 requests in flight, the same load generator; then
/// one request at a time over HTTP and over gRPC (the rate is the inverse of the latency).
type SameClient = Vec<[(f64, f64); 5]>;

fn same_client_rows(daca_pid: u32, http: u16, grpc: u16, scratch: &std::path::Path) -> SameClient {
    if !h2load::available() {
        println!("(h2load not installed: apt-get install nghttp2-client for the same-client rows)");
        return Vec::new();
    }
    let body = scratch.join("get-state.bin");
    std::fs::write(&body, h2load::grpc_frame(&get_request())).unwrap();
    let http_get = h2load::Load {
        url: format!("http://127.0.0.1:{http}/v1.0/state/statestore/bench-key"),
        connections: CONCURRENCY,
        streams: 1,
        http1: true,
        body: None,
        headers: &[],
    };
    let grpc_url = format!("http://127.0.0.1:{grpc}/dapr.proto.runtime.v1.Dapr/GetState");
    let grpc_load = |connections: usize, streams: usize| h2load::Load {
        url: grpc_url.clone(),
        connections,
        streams,
        http1: false,
        body: Some(&body),
        headers: h2load::GRPC_HEADERS,
    };
    let one_by_one = h2load::Load {
        connections: 1,
        ..http_get.clone()
    };
    let loads = [
        http_get,
        grpc_load(CONCURRENCY, 1),
        grpc_load(4, CONCURRENCY / 4),
        one_by_one,
        grpc_load(1, 1),
    ];
    (0..ROUNDS)
        .map(|_| {
            loads.each_ref().map(|load| {
                let before = cpu_seconds(daca_pid);
                let outcome = h2load::run(load, PHASE);
                let cost = (cpu_seconds(daca_pid) - before) * 1e6 / outcome.succeeded as f64;
                // A gRPC error is a 200 too: a whole answer has the 1 KiB value in it.
                let size = outcome.data_bytes_per_answer;
                assert!(size >= 1026.0, "answers hold the value: {size} bytes each");
                (outcome.per_second, cost)
            })
        })
        .collect()
}

fn print_same_client(rounds: &SameClient) {
    if rounds.is_empty() {
        return;
    }
    println!(
        "same load generator (h2load), 32 requests in flight, then 1, {ROUNDS} interleaved rounds:"
    );
    println!(
        "{:<34}{:>14}{:>14}{:>8}{:>13}   per round",
        "", "req/s", "HTTP req/s", "ratio", "daca µs/req"
    );
    let names = [
        "HTTP/1.1 GET, 32 connections",
        "gRPC GetState, 32 conns x 1",
        "gRPC GetState, 4 conns x 8",
        "HTTP/1.1 GET, 1 at a time",
        "gRPC GetState, 1 at a time",
    ];
    for (i, name) in names.iter().enumerate() {
        // Each row against the HTTP row with as many requests in flight.
        let base = if i < 3 { 0 } else { 3 };
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let ratios: Vec<f64> = rounds.iter().map(|r| r[i].0 / r[base].0 * 100.0).collect();
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.0}%")).collect();
        println!(
            "{name:<34}{:>14.0}{:>14.0}{:>7.0}%{:>13.1}   {}",
            median(rounds.iter().map(|r| r[i].0).collect()),
            median(rounds.iter().map(|r| r[base].0).collect()),
            median(ratios.clone()),
            median(rounds.iter().map(|r| r[i].1).collect()),
            each.join(" ")
        );
    }
}
