//! The watcher's task under paused time: notify events go in (as notify's thread would send
//! them), batches and counters come out.

use std::time::Duration;

use notify::event::{AccessKind, CreateKind, DataChange, ModifyKind};

use super::*;

fn event(kind: EventKind, path: &Path) -> notify::Event {
    notify::Event::new(kind).add_path(path.to_path_buf())
}

fn app_target(root: &Path, id: &str) -> Watched {
    Watched {
        target: Target::App(AppId::parse(id).unwrap()),
        scope: Scope::Folder(Filter::new(root, root, vec![], &[], &[])),
    }
}

#[tokio::test(start_paused = true)]
async fn a_save_is_one_change_and_ignored_paths_are_counted_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = normalize(dir.path());
    let manifest = root.join("daca.yaml");
    let targets = vec![
        app_target(&root.join("web"), "web"),
        Watched {
            target: Target::Manifest,
            scope: Scope::File(manifest.clone()),
        },
    ];
    let (raw_tx, raw_rx) = mpsc::channel(16);
    let stats = Arc::new(Stats::default());
    let (mut changes, token) = run_detached(targets, raw_rx, stats.clone());
    let main = root.join("web/main.py");
    let write = EventKind::Modify(ModifyKind::Data(DataChange::Content));
    for kind in [EventKind::Create(CreateKind::File), write] {
        raw_tx.send(event(kind, &main)).await.unwrap();
    }
    raw_tx
        .send(event(write, &root.join("web/app.log")))
        .await
        .unwrap();
    let close = EventKind::Access(AccessKind::Close(notify::event::AccessMode::Write));
    raw_tx.send(event(close, &main)).await.unwrap();
    let change = changes.recv().await.unwrap();
    assert_eq!(change.target, Target::App(AppId::parse("web").unwrap()));
    assert_eq!(change.paths, std::slice::from_ref(&main));
    raw_tx.send(event(write, &manifest)).await.unwrap();
    assert_eq!(changes.recv().await.unwrap().target, Target::Manifest);
    let view = stats.view();
    assert_eq!((view.events, view.ignored, view.batches), (4, 1, 2));
    assert_eq!(view.pending, 2, "sent, and not yet routed by the project");
    stats.routed();
    stats.routed();
    assert_eq!(stats.view().pending, 0);
    let log = view
        .recent
        .iter()
        .find(|s| s.path.ends_with("app.log"))
        .unwrap();
    assert_eq!(log.verdict, "ignored by `*.log` in daca's defaults");
    assert_eq!(view.recent[0].verdict, "web");
    token.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_path_two_targets_want_goes_to_both() {
    let dir = tempfile::tempdir().unwrap();
    let root = normalize(dir.path());
    let targets = vec![
        app_target(&root, "outer"),
        app_target(&root.join("inner"), "inner"),
    ];
    let (raw_tx, raw_rx) = mpsc::channel(16);
    let stats = Arc::new(Stats::default());
    let (mut changes, token) = run_detached(targets, raw_rx, stats.clone());
    let file = root.join("inner/x.py");
    raw_tx
        .send(event(EventKind::Create(CreateKind::File), &file))
        .await
        .unwrap();
    let mut got = vec![changes.recv().await.unwrap().target.to_string()];
    got.push(changes.recv().await.unwrap().target.to_string());
    got.sort();
    assert_eq!(got, ["inner", "outer"]);
    assert_eq!(stats.view().recent[0].verdict, "outer, inner");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(changes.try_recv().is_err(), "one batch each");
    token.cancel();
}
