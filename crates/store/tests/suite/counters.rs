//! `object_counts` (migration 3): after random creates, deletes (with cascades),
//! transfers and rolled-back transactions, every (owner, kind) counter equals the
//! number of rows; a store migrated from before the counters is backfilled.

use super::*;

/// Deterministic xorshift64, so a failure replays (the seed is printed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n.max(1) as u64).unwrap_or(0)
    }
}

/// `count_owned` equals the rows of each kind for each owner.
async fn check_counts(store: &Store, owners: &[Id]) -> Result<()> {
    let mut tx = store.begin(system()).await?;
    for &o in owners {
        let rows = [
            (Kind::Account, tx.owned::<Account>(o).await?.len()),
            (Kind::Domain, tx.owned::<Domain>(o).await?.len()),
            (Kind::Site, tx.owned::<Site>(o).await?.len()),
            (Kind::Mailbox, tx.owned::<Mailbox>(o).await?.len()),
            (Kind::MailAlias, tx.owned::<MailAlias>(o).await?.len()),
        ];
        for (kind, n) in rows {
            let counted = tx.count_owned(kind, o).await?;
            ensure!(
                counted == i64::try_from(n)?,
                "owner {o} {}: counter {counted}, rows {n}",
                kind.as_str()
            );
        }
    }
    Ok(())
}

/// Pick one of `items`, if any.
fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> Option<&'a T> {
    items.get(rng.below(items.len()))
}

pub(super) async fn counters_match_rows(env: &Env) -> Result<()> {
    let seed = 0x9e37_79b9_7f4a_7c15_u64;
    eprintln!("counters_match_rows seed {seed:#x}");
    let mut rng = Rng(seed);
    let store = env.open().await?;
    let mut owners = Vec::new();
    for name in ["ann", "ben", "cat"] {
        owners.push(customer(&store, name, None).await?.meta.id);
    }
    let mut next = 0;
    for _ in 0..150 {
        next += 1;
        let domains = store.all::<Domain>().await?;
        let mut tx = store.begin(system()).await?;
        match rng.below(8) {
            0..=2 => {
                let owner = *pick(&mut rng, &owners).context("owners")?;
                tx.create(domain(&format!("d{next}.example"), owner)?)
                    .await?;
            }
            3 => {
                if let Some(d) = pick(&mut rng, &domains) {
                    tx.create(mailbox(d, &format!("m{next}"))?).await?;
                    tx.create(alias(d, &format!("a{next}"), "x@y.example")?)
                        .await?;
                }
            }
            4 => {
                if let Some(d) = pick(&mut rng, &domains) {
                    if tx.children::<Site>(d.meta.id).await?.is_empty() {
                        tx.create(site(d, &[&d.meta.name])?).await?;
                    }
                }
            }
            5 => {
                // Deletes the domain's site, mailboxes and aliases by cascade.
                if let Some(d) = pick(&mut rng, &domains) {
                    tx.delete(Kind::Domain, d.meta.id).await?;
                }
            }
            6 => {
                let boxes = store.all::<Mailbox>().await?;
                if let Some(m) = pick(&mut rng, &boxes) {
                    tx.delete(Kind::Mailbox, m.meta.id).await?;
                }
            }
            _ => {
                // A transfer moves the domain and everything below it.
                if let Some(d) = pick(&mut rng, &domains) {
                    let to = *pick(&mut rng, &owners).context("owners")?;
                    tx.reassign(Kind::Domain, d.meta.id, to, None).await?;
                }
            }
        }
        if rng.below(6) == 0 {
            // Rolled back: its counter changes go with it.
            drop(tx);
        } else {
            tx.commit().await?;
        }
    }
    ensure!(
        store.count(Kind::Domain, Scope::All).await? > 0,
        "the random run left no domains; the check below would prove little"
    );
    check_counts(&store, &owners).await?;

    // A store from before migration 3: the migration backfills the counters.
    store.close().await;
    let undo = match env {
        Env::Sqlite { .. } => {
            "DROP TRIGGER objects_count_insert; DROP TRIGGER objects_count_delete; \
             DROP TRIGGER objects_count_owner; DROP TABLE object_counts; \
             DELETE FROM _sqlx_migrations WHERE version = 3;"
        }
        Env::Postgres(_) => {
            "DROP TRIGGER objects_count ON objects; DROP TRIGGER objects_count_owner ON objects; \
             DROP FUNCTION object_counts_track(); DROP TABLE object_counts; \
             DELETE FROM _sqlx_migrations WHERE version = 3;"
        }
    };
    env.raw(undo.to_owned()).await?;
    let store = env.open().await?;
    check_counts(&store, &owners).await?;
    let mut tx = store.begin(system()).await?;
    ensure!(
        tx.count_owned(Kind::Account, owners[0]).await? == 1,
        "an account counts itself"
    );
    Ok(())
}
