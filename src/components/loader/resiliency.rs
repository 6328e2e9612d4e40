//! The loader's part for `kind: Resiliency` documents (read by `crate::resiliency`).

use std::path::Path;

use super::Loader;
use crate::manifest::Diagnostic;

impl Loader<'_> {
    pub(super) fn resiliency(&mut self, document: &str, file: &Path, text: &str, offset: u64) {
        match crate::resiliency::read(document, offset) {
            Ok((mut read, notices)) => {
                read.origin = file.display().to_string();
                let where_ = format!("{}:{}", file.display(), offset + 1);
                self.notices
                    .extend(notices.into_iter().map(|n| format!("{where_}: {n}")));
                self.resiliency.push(read);
            }
            Err(problems) => self.fail(file, text, problems),
        }
    }

    /// Policies a target names must exist in one of the documents (they are merged).
    pub(super) fn check_resiliency(&mut self) {
        for (file, line, column, message) in crate::resiliency::unknown_references(&self.resiliency)
        {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let d = Diagnostic::at(line, column, message)
                .hint("define it under `spec.policies`, or correct the name");
            self.fail(Path::new(&file), &text, vec![d]);
        }
        let names: Vec<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
        for document in &self.resiliency {
            for component in document.components.keys() {
                if !names.contains(&component.as_str()) {
                    self.notices.push(format!(
                        "{}: Resiliency `{}` has a target for component `{component}`, which the resources folder does not define",
                        document.origin, document.name
                    ));
                }
            }
        }
    }
}
