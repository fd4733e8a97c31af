//! The role engines this build plugs into the agent's supervisor. Every role has
//! one: DNS (`role-dns`), web (`role-web`), mail (`role-mail`), files (`role-files`)
//! and databases (`role-db`); each binds its role's standard ports on the server's
//! own address (standard + 10000 when the process may not bind privileged ports,
//! like `up`'s port map) and reads its options from the agent config's `[engine]`
//! table.

use agent::supervisor::EngineRegistry;

/// The registry `hostplane agent` runs with.
pub fn registry() -> EngineRegistry {
    let mut reg = EngineRegistry::new();
    reg.register("dns", role_dns::start_engine);
    reg.register("web", role_web::start_engine);
    reg.register("mail", role_mail::start_engine);
    reg.register("files", role_files::start_engine);
    reg.register("db", role_db::start_engine);
    reg
}
