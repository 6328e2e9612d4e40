//! Reading a resources folder: YAML documents → checked components, secrets resolved.
//! Every problem is collected with its position, so one run reports them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::configuration;
use super::metadata::{kind_problems, plain_values, truthy, unsupported, value_of};
use super::wire::{ComponentWire, MetadataItemWire, ResourceHead, SubscriptionWire};
use super::{Component, ComponentKind, ComponentsError, Resources, SUPPORTED, SecretStore};
use crate::manifest::{Diagnostic, ManifestError};
use crate::pubsub::subscription::{self, Kind, Subscription};

mod resiliency;

/// Loads every `*.yaml`/`*.yml` file of `folder` (not recursively, as Dapr does).
pub(super) fn load_folder(
    folder: &Path,
    root: &Path,
    secrets_present: bool,
) -> Result<Resources, ComponentsError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    // Dapr reads the folder non-recursively, only *.yaml and *.yml; sorting keeps errors stable.
    files.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    let mut loader = Loader {
        root,
        components: Vec::new(),
        raw: Vec::new(),
        seen: Vec::new(),
        actor_store: None,
        errors: Vec::new(),
        subscriptions: Vec::new(),
        secret_stores: BTreeMap::new(),
        secrets_present,
        features: Default::default(),
        notices: Vec::new(),
        resiliency: Vec::new(),
    };
    for file in &files {
        loader.read_file(file);
    }
    loader.resolve();
    loader.check_resiliency();
    if loader.errors.is_empty() {
        Ok(Resources {
            components: loader.components,
            subscriptions: loader.subscriptions,
            secret_stores: loader.secret_stores,
            features: loader.features,
            notices: loader.notices,
            resiliency: loader.resiliency,
        })
    } else {
        Err(ComponentsError(loader.errors))
    }
}

/// One parsed Component document, before secrets are resolved.
struct Raw {
    wire: ComponentWire,
    kind: ComponentKind,
    file: PathBuf,
    text: String,
    /// Lines before the document in its file.
    offset: u64,
}

struct Loader<'a> {
    root: &'a Path,
    components: Vec<Component>,
    raw: Vec<Raw>,
    /// Every component name met so far, valid or not, with `file:line`, to report duplicates.
    seen: Vec<(String, String)>,
    /// The actor state store met so far, with `file:line`: Dapr allows one.
    actor_store: Option<(String, String)>,
    errors: Vec<ManifestError>,
    subscriptions: Vec<Subscription>,
    secret_stores: BTreeMap<String, SecretStore>,
    /// Whether a secret a component references must exist now (`daca up`) or may be defined
    /// elsewhere later (`daca export`, where the cluster's store serves it).
    secrets_present: bool,
    /// Preview features a Configuration turns on.
    features: std::collections::BTreeSet<String>,
    notices: Vec<String>,
    resiliency: Vec<crate::resiliency::Document>,
}

/// Splits a multi-document YAML file at `---` lines; each piece comes with its line offset.
fn documents(text: &str) -> Vec<(u64, String)> {
    let mut documents = vec![(0u64, String::new())];
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed.starts_with("---#") {
            documents.push((index as u64 + 1, String::new()));
        } else {
            let current = &mut documents
                .last_mut()
                .expect("UNWRAP: starts with one document")
                .1;
            current.push_str(line);
            current.push('\n');
        }
    }
    documents.retain(|(_, doc)| {
        doc.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    documents
}

/// A YAML error of the document that starts after `offset` lines, positioned in its file.
pub(crate) fn yaml_diagnostic(err: &serde_saphyr::Error, offset: u64) -> Diagnostic {
    let (line, column) = err
        .location()
        .map(|l| (l.line() + offset, l.column()))
        .unwrap_or((offset + 1, 1));
    let text = err.to_string();
    Diagnostic::at(
        line,
        column,
        text.split(" at line ").next().unwrap_or(&text).trim(),
    )
}

pub(crate) fn at<T>(spanned: &Spanned<T>, offset: u64) -> (u64, u64) {
    (
        spanned.referenced.line() + offset,
        spanned.referenced.column(),
    )
}

impl Loader<'_> {
    fn fail(&mut self, file: &Path, text: &str, diagnostics: Vec<Diagnostic>) {
        self.errors
            .push(ManifestError::new(file, text, diagnostics));
    }

    fn read_file(&mut self, file: &Path) {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(err) => {
                return self.fail(
                    file,
                    "",
                    vec![Diagnostic::at(0, 0, format!("cannot read: {err}"))],
                );
            }
        };
        for (offset, document) in documents(&text) {
            let options = serde_saphyr::options! { with_snippet: false };
            let head = match serde_saphyr::from_str_with_options::<ResourceHead>(
                &document,
                options.clone(),
            ) {
                Ok(head) => head,
                Err(err) => {
                    self.fail(file, &text, vec![yaml_diagnostic(&err, offset)]);
                    continue;
                }
            };
            match head.kind.as_ref().map(|k| k.value.as_str()) {
                Some("Component") => {}
                Some("Subscription") => {
                    self.subscription(&document, file, &text, offset);
                    continue;
                }
                Some("Configuration") => {
                    let (features, notice) = configuration::read(&document, file);
                    self.features.extend(features);
                    self.notices.extend(notice);
                    continue;
                }
                Some("Resiliency") => {
                    self.resiliency(&document, file, &text, offset);
                    continue;
                }
                Some(kind) => {
                    // Said, never skipped in silence: the user wrote it for a reason.
                    let line = head.kind.as_ref().map_or(0, |k| at(k, offset).0);
                    self.notices.push(format!(
                        "{}:{line}: `kind: {kind}` is not one daca reads; it is ignored",
                        file.display()
                    ));
                    continue;
                }
                None => continue,
            }
            match serde_saphyr::from_str_with_options::<Option<ComponentWire>>(&document, options) {
                Ok(Some(wire)) => self.check(wire, file, &text, offset),
                Ok(None) => {}
                Err(err) => {
                    let hint = "a Component needs `metadata.name` and `spec.type` (see Dapr's component reference)";
                    self.fail(file, &text, vec![yaml_diagnostic(&err, offset).hint(hint)]);
                }
            }
        }
    }

    /// Checks what can be checked before secrets: the type, the name, required metadata.
    fn check(&mut self, wire: ComponentWire, file: &Path, text: &str, offset: u64) {
        let type_name = &wire.spec.value.kind;
        let Some(kind) = ComponentKind::parse(&type_name.value) else {
            let (line, column) = at(type_name, offset);
            let d = Diagnostic::at(
                line,
                column,
                format!("unknown component type `{}`", type_name.value),
            )
            .hint(format!("daca supports {SUPPORTED}"));
            return self.fail(file, text, vec![d]);
        };
        let Some(name) = &wire.metadata.name else {
            let (line, column) = at(&wire.spec, offset);
            return self.fail(
                file,
                text,
                vec![Diagnostic::at(
                    line,
                    column.saturating_sub(2).max(1),
                    "the component has no `metadata.name`",
                )],
            );
        };
        let mut problems = Vec::new();
        let (line, column) = at(name, offset);
        if let Some((_, first)) = self.seen.iter().find(|(seen, _)| *seen == name.value) {
            let hint = format!("the first is at {first}; component names must be unique");
            problems.push(
                Diagnostic::at(
                    line,
                    column,
                    format!("duplicate component name `{}`", name.value),
                )
                .hint(hint),
            );
        } else {
            self.seen
                .push((name.value.clone(), format!("{}:{line}", file.display())));
        }
        problems.extend(kind_problems(kind, type_name, &wire, offset));
        for item in wire.spec.value.items() {
            if let Some(problem) = unsupported(&item.value) {
                let (line, column) = at(item, offset);
                problems.push(Diagnostic::at(line, column, problem.0).hint(problem.1));
            }
            if kind.is_state() {
                problems.extend(self.actor_store(item, &name.value, file, offset));
            }
        }
        if problems.is_empty() {
            self.raw.push(Raw {
                wire,
                kind,
                file: file.to_path_buf(),
                text: text.to_string(),
                offset,
            });
        } else {
            self.fail(file, text, problems);
        }
    }

    /// Notes the actor state store; a second one is Dapr's start-up error.
    fn actor_store(
        &mut self,
        item: &Spanned<MetadataItemWire>,
        component: &str,
        file: &Path,
        offset: u64,
    ) -> Option<Diagnostic> {
        let flagged = item.value.name.eq_ignore_ascii_case("actorStateStore")
            && item
                .value
                .value
                .as_ref()
                .is_some_and(|v| truthy(&v.to_env_string()));
        if !flagged {
            return None;
        }
        let (line, column) = at(item, offset);
        match &self.actor_store {
            Some((first, place)) => Some(
                Diagnostic::at(
                    line,
                    column,
                    format!("detected duplicate actor state store: {first} and {component}"),
                )
                .hint(format!(
                    "only one state store may be the actor store; {first} is, at {place}"
                )),
            ),
            None => {
                let place = format!("{}:{line}", file.display());
                self.actor_store = Some((component.to_string(), place));
                None
            }
        }
    }

    /// Loads secret stores, then resolves every component's values through them.
    fn resolve(&mut self) {
        let mut stores: BTreeMap<String, SecretStore> = BTreeMap::new();
        let raw = std::mem::take(&mut self.raw);
        for r in raw.iter().filter(|r| {
            matches!(
                r.kind,
                ComponentKind::SecretsEnv | ComponentKind::SecretsFile
            )
        }) {
            let plain = plain_values(r.wire.spec.value.items());
            let store = match r.kind {
                ComponentKind::SecretsFile => SecretStore::file(self.root, &plain),
                _ => Ok(SecretStore::Env {
                    prefix: plain.get("prefix").cloned().unwrap_or_default(),
                }),
            };
            match store {
                Ok(store) => {
                    stores.insert(name_of(&r.wire), store);
                }
                Err(message) => {
                    let (line, column) = at(&r.wire.spec.value.kind, r.offset);
                    self.fail(
                        &r.file,
                        &r.text,
                        vec![Diagnostic::at(line, column, message)],
                    );
                }
            }
        }
        for r in raw {
            if let Some(component) = self.resolve_one(&r, &stores) {
                self.components.push(component);
            }
        }
        self.secret_stores = stores;
    }

    /// A `kind: Subscription` document: its routes checked (CEL included) with positions.
    fn subscription(&mut self, document: &str, file: &Path, text: &str, offset: u64) {
        let options = serde_saphyr::options! { with_snippet: false };
        let wire = match serde_saphyr::from_str_with_options::<SubscriptionWire>(document, options)
        {
            Ok(wire) => wire,
            Err(err) => {
                let hint = "a Subscription needs `spec.pubsubname`, `spec.topic` and `spec.route` or `spec.routes`";
                return self.fail(file, text, vec![yaml_diagnostic(&err, offset).hint(hint)]);
            }
        };
        let spec = &wire.spec.value;
        let mut problems = Vec::new();
        let mut matched = Vec::new();
        let routes = spec.routes.as_ref();
        for rule in routes.and_then(|r| r.rules.as_deref()).unwrap_or_default() {
            let source = rule.value.matched.clone().unwrap_or_default();
            if let Err(err) =
                subscription::rules(&[(source.clone(), rule.value.path.clone())], None, None)
            {
                let (line, column) = at(rule, offset);
                problems.push(
                    Diagnostic::at(line, column, err)
                        .hint("a CEL expression over `event`, e.g. event.type == \"widget\""),
                );
            }
            matched.push((source, rule.value.path.clone()));
        }
        let default = routes.and_then(|r| r.default.as_deref());
        let rules =
            subscription::rules(&matched, default, spec.route.as_deref()).unwrap_or_default();
        if problems.is_empty() && rules.is_empty() {
            let (line, column) = at(&wire.spec, offset);
            problems.push(
                Diagnostic::at(line, column, "the subscription has no route").hint(
                    "add `route: /path` (v1alpha1) or `routes: { default: /path }` (v2alpha1)",
                ),
            );
        }
        if !problems.is_empty() {
            return self.fail(file, text, problems);
        }
        let line = spec.topic.referenced.line() + offset;
        self.subscriptions.push(Subscription {
            pubsub: spec.pubsubname.value.clone(),
            topic: spec.topic.value.clone(),
            rules,
            dead_letter_topic: spec.deadLetterTopic.clone().filter(|t| !t.is_empty()),
            metadata: spec
                .metadata
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.to_env_string()))
                .collect(),
            kind: Kind::Declarative,
            scopes: wire.scopes.clone(),
            origin: Some(format!("{}:{line}", file.display())),
        });
    }

    fn resolve_one(
        &mut self,
        r: &Raw,
        stores: &BTreeMap<String, SecretStore>,
    ) -> Option<Component> {
        let mut metadata = BTreeMap::new();
        let mut secret_items = Vec::new();
        let mut problems = Vec::new();
        for item in r.wire.spec.value.items() {
            let (line, column) = at(item, r.offset);
            match value_of(
                &item.value,
                r.wire.auth.as_ref().map(|a| a.secretStore.value.as_str()),
                stores,
                self.secrets_present,
            ) {
                Ok((value, secret)) => {
                    if secret {
                        secret_items.push(item.value.name.clone());
                    }
                    metadata.insert(item.value.name.clone(), value);
                }
                Err((message, hint)) => {
                    problems.push(Diagnostic::at(line, column, message).hint(hint))
                }
            }
        }
        if !problems.is_empty() {
            self.fail(&r.file, &r.text, problems);
            return None;
        }
        let line = r
            .wire
            .metadata
            .name
            .as_ref()
            .map_or(0, |n| n.referenced.line() + r.offset);
        Some(Component {
            name: name_of(&r.wire),
            type_name: r.wire.spec.value.kind.value.clone(),
            version: r
                .wire
                .spec
                .value
                .version
                .clone()
                .unwrap_or_else(|| "v1".into()),
            kind: r.kind,
            metadata,
            secret_items,
            scopes: r.wire.scopes.clone(),
            origin: Some(format!("{}:{line}", r.file.display())),
            redirect: None,
        })
    }
}

fn name_of(wire: &ComponentWire) -> String {
    wire.metadata
        .name
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_default()
}
