//! Property: any sequence of saves, gets, deletes and transactions, with and without etags,
//! first-write and TTLs, gives the same results on the Redis store and the in-memory store.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use daca::state::{Delete, MemoryStore, Op, RedisStore, StateStore, Write};

use crate::common::RedisServer;

#[derive(Debug, Clone)]
enum Step {
    Get(String),
    Apply(Vec<Op>),
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(String::from)
}

fn etag() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("1")),
        Just(Some("2")),
        Just(Some("3")),
        Just(Some("0")),
        Just(Some("x"))
    ]
    .prop_map(|e| e.map(String::from))
}

fn op() -> impl Strategy<Value = Op> {
    let ttl = prop_oneof![Just(None), Just(Some(100)), Just(Some(-1))];
    let write = (key(), 0..100u32, etag(), any::<bool>(), ttl).prop_map(
        |(key, n, etag, first_write, ttl)| {
            Op::Upsert(Write {
                key,
                value: n.to_string().into_bytes(),
                etag,
                first_write,
                ttl,
            })
        },
    );
    let delete = (key(), etag()).prop_map(|(key, etag)| Op::Delete(Delete { key, etag }));
    prop_oneof![3 => write, 1 => delete]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => key().prop_map(Step::Get),
        4 => op().prop_map(|op| Step::Apply(vec![op])),
        1 => prop::collection::vec(op(), 1..4).prop_map(Step::Apply),
    ]
}

async fn same_results(
    redis: &StateStore,
    memory: &StateStore,
    steps: &[Step],
) -> Result<(), TestCaseError> {
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Get(key) => prop_assert_eq!(
                redis.get(key).await,
                memory.get(key).await,
                "step {}: {:?}",
                index,
                step
            ),
            Step::Apply(ops) => prop_assert_eq!(
                redis.apply(ops).await,
                memory.apply(ops).await,
                "step {}: {:?}",
                index,
                step
            ),
        }
        for key in ["a", "b", "c"] {
            let (r, m) = (
                redis.ttl(key).await.unwrap(),
                memory.ttl(key).await.unwrap(),
            );
            prop_assert_eq!(
                r.is_some(),
                m.is_some(),
                "ttl of {} after step {}: {:?}",
                key,
                index,
                step
            );
            prop_assert_eq!(
                redis.get(key).await,
                memory.get(key).await,
                "{} after step {}",
                key,
                index
            );
        }
    }
    Ok(())
}

#[test]
fn redis_and_memory_stores_agree_on_every_sequence() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(step(), 1..20), |steps| {
        server.query::<String>(&["FLUSHALL"]);
        let info = redis::IntoConnectionInfo::into_connection_info(server.url()).unwrap();
        let redis = StateStore::Redis(RedisStore::new(info));
        let memory = StateStore::Memory(MemoryStore::new());
        runtime.block_on(same_results(&redis, &memory, &steps))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
