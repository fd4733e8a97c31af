//! Rendering of customers, API tokens and audit events.

use super::{map, opt, text, yes, Render};
use proto::v1::*;

impl Render for CustomerView {
    const HEADERS: &'static [&'static str] = &[
        "name",
        "kind",
        "display name",
        "email",
        "reseller",
        "disabled",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.kind.clone(),
            self.display_name.clone(),
            opt(&self.email),
            opt(&self.reseller),
            yes(self.disabled),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("name", self.name.clone()),
            ("kind", self.kind.clone()),
            ("display name", text(&self.display_name)),
            ("email", opt(&self.email)),
            ("reseller", opt(&self.reseller)),
            ("disabled", yes(self.disabled)),
            ("password login", yes(self.has_password)),
            ("default clusters", map(&self.default_clusters)),
            (
                "plan",
                self.plan.clone().unwrap_or_else(|| "(default)".into()),
            ),
        ];
        if let Some(l) = &self.limits {
            f.extend(crate::commands::plans::limit_fields(l));
        }
        f.push(("created", self.created_at.clone()));
        f
    }
}

impl Render for TokenView {
    const HEADERS: &'static [&'static str] = &["id", "name", "account", "created", "expires"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.account.clone(),
            self.created_at.clone(),
            self.expires_at.clone().unwrap_or_else(|| "never".into()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("name", self.name.clone()),
            ("account", self.account.clone()),
            ("created", self.created_at.clone()),
            (
                "expires",
                self.expires_at.clone().unwrap_or_else(|| "never".into()),
            ),
        ]
    }
}

impl Render for EventView {
    const HEADERS: &'static [&'static str] =
        &["id", "revision", "at", "actor", "action", "kind", "object"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.revision.to_string(),
            self.at.clone(),
            self.actor.clone(),
            self.action.clone(),
            self.kind.clone(),
            self.object.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.to_string()),
            ("revision", self.revision.to_string()),
            ("at", self.at.clone()),
            ("actor", self.actor.clone()),
            ("action", self.action.clone()),
            ("kind", self.kind.clone()),
            ("object", self.object.clone()),
            ("detail", self.detail.to_string()),
        ]
    }
}
