//! Rendering of mailboxes and aliases.

use super::{list, quota, text, yes, Render};
use proto::v1::*;

impl Render for MailboxView {
    const HEADERS: &'static [&'static str] =
        &["address", "customer", "quota", "enabled", "display name"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.address.clone(),
            self.customer.clone(),
            quota(self.quota_mb),
            yes(self.enabled),
            self.display_name.clone(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("address", self.address.clone()),
            ("domain", self.domain.clone()),
            ("customer", self.customer.clone()),
            ("display name", text(&self.display_name)),
            ("quota", quota(self.quota_mb)),
            ("enabled", yes(self.enabled)),
            ("created", self.created_at.clone()),
        ]
    }
}

impl Render for AliasView {
    const HEADERS: &'static [&'static str] = &["address", "customer", "destinations"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.address.clone(),
            self.customer.clone(),
            list(&self.destinations),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("address", self.address.clone()),
            ("domain", self.domain.clone()),
            ("customer", self.customer.clone()),
            ("destinations", list(&self.destinations)),
            ("created", self.created_at.clone()),
        ]
    }
}
