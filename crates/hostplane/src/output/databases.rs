//! Rendering of databases, database users and dropped databases in the trash.

use super::{list, opt, Render};
use proto::v1::*;

impl Render for DatabaseView {
    const HEADERS: &'static [&'static str] =
        &["name", "engine", "customer", "cluster", "domain", "size"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.engine.clone(),
            self.customer.clone(),
            self.cluster.clone(),
            opt(&self.domain),
            opt(&self.size_bytes),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("engine", self.engine.clone()),
            ("customer", self.customer.clone()),
            ("cluster", self.cluster.clone()),
            ("domain", opt(&self.domain)),
            ("size bytes", opt(&self.size_bytes)),
            ("created", self.created_at.clone()),
        ]
    }
}

impl Render for DbUserView {
    const HEADERS: &'static [&'static str] =
        &["name", "engine", "customer", "cluster", "databases"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.engine.clone(),
            self.customer.clone(),
            self.cluster.clone(),
            list(&self.databases),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("engine", self.engine.clone()),
            ("customer", self.customer.clone()),
            ("cluster", self.cluster.clone()),
            ("databases", list(&self.databases)),
            ("created", self.created_at.clone()),
        ]
    }
}

impl Render for proto::v1::DbTrashView {
    const HEADERS: &'static [&'static str] = &[
        "entry", "database", "engine", "customer", "server", "dropped", "size",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.database.clone(),
            self.engine.clone(),
            self.customer.clone(),
            self.server.clone(),
            self.dropped_at.clone(),
            self.size_bytes.to_string(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("entry", self.name.clone()),
            ("database", self.database.clone()),
            ("engine", self.engine.clone()),
            ("customer", self.customer.clone()),
            ("cluster", self.cluster.clone()),
            ("server", self.server.clone()),
            ("dropped", self.dropped_at.clone()),
            ("size bytes", self.size_bytes.to_string()),
        ]
    }
}
