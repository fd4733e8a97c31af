//! The bulk functions (`store/src/bulk.rs`) agree with their one-object
//! counterparts: reads return what `get_by_name`, `get`, `children`, `find_key`,
//! `count_owned` and `domains_under` return, own writes included; `create_many`
//! stores what `create` would (self-owned accounts, resellers, unique and
//! registrable keys, counters, events), refuses taken or doubled names and keys all
//! or nothing, and reserved ids are never handed out again.

use super::*;

/// Sorted ids of some rows.
fn sorted_ids<T>(rows: &[Stored<T>]) -> Vec<Id> {
    let mut v = ids(rows);
    v.sort_unstable();
    v
}

pub(super) async fn bulk_reads_match_single_reads(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let reseller = {
        let mut tx = store.begin(system()).await?;
        let r = tx
            .create(new(
                "resell",
                None,
                None,
                account("resell", AccountKind::Reseller, None)?,
            ))
            .await?;
        tx.commit().await?;
        r
    };
    let ann = customer(&store, "ann", Some(reseller.meta.id)).await?;
    let ben = customer(&store, "ben", None).await?;
    let a1 = add_domain(&store, "ann.example", ann.meta.id).await?;
    let a2 = add_domain(&store, "shop.ann.example", ann.meta.id).await?;
    let b1 = add_domain(&store, "ben.example.co.uk", ben.meta.id).await?;
    let mut tx = store.begin(system()).await?;
    tx.create(mailbox(&a1, "info")?).await?;
    tx.create(alias(&a1, "sales", "info@ann.example")?).await?;
    tx.create(mailbox(&a2, "x")?).await?;
    // Written in this transaction, not committed: bulk reads see it.
    let b_mail = tx.create(mailbox(&b1, "own")?).await?;

    let names: Vec<String> = ["ann.example", "ben.example.co.uk", "missing.example"]
        .map(String::from)
        .to_vec();
    let got = tx.get_many_by_name::<Domain>(&names).await?;
    ensure!(sorted_ids(&got) == vec![a1.meta.id, b1.meta.id], "{got:?}");
    for d in &got {
        let one = tx.get_by_name::<Domain>(&d.meta.name).await?;
        ensure!(one.as_ref() == Some(d), "{one:?} vs {d:?}");
    }
    ensure!(
        tx.get_many_by_name::<Site>(&names).await?.is_empty(),
        "kind is part of the name"
    );
    let got = tx
        .get_many::<Account>(&[ann.meta.id, ben.meta.id, a1.meta.id, 999_999])
        .await?;
    ensure!(
        sorted_ids(&got) == vec![ann.meta.id, ben.meta.id],
        "only accounts among the ids: {got:?}"
    );
    ensure!(
        got.iter()
            .any(|a| a.meta.id == ann.meta.id && a.meta.reseller == Some(reseller.meta.id)),
        "metadata decoded: {got:?}"
    );

    let kids = tx
        .children_of_many::<Mailbox>(&[a1.meta.id, a2.meta.id, b1.meta.id])
        .await?;
    let mut single = Vec::new();
    for p in [a1.meta.id, a2.meta.id, b1.meta.id] {
        single.extend(tx.children::<Mailbox>(p).await?);
    }
    ensure!(sorted_ids(&kids) == sorted_ids(&single), "{kids:?}");
    ensure!(
        kids.iter().any(|m| m.meta.id == b_mail.meta.id),
        "own write"
    );

    let keys: Vec<String> = [
        "info@ann.example",
        "sales@ann.example",
        "own@ben.example.co.uk",
        "nobody@ann.example",
    ]
    .map(String::from)
    .to_vec();
    let mut held = tx.find_keys("mail_address", &keys).await?;
    held.sort_by(|a, b| a.0.cmp(&b.0));
    let mut single = Vec::new();
    for k in &keys {
        if let Some((kind, id)) = tx.find_key("mail_address", k).await? {
            single.push((k.clone(), kind, id));
        }
    }
    single.sort_by(|a, b| a.0.cmp(&b.0));
    ensure!(held == single && held.len() == 3, "{held:?} vs {single:?}");
    ensure!(
        held.iter()
            .any(|(k, kind, _)| k == "sales@ann.example" && *kind == Kind::MailAlias),
        "{held:?}"
    );

    let counts = tx
        .counts_owned_many(&[ann.meta.id, ben.meta.id, 424_242])
        .await?;
    for owner in [ann.meta.id, ben.meta.id] {
        for kind in [Kind::Domain, Kind::Mailbox, Kind::MailAlias, Kind::Account] {
            let one = tx.count_owned(kind, owner).await?;
            let many = counts
                .iter()
                .find(|(o, k, _)| *o == owner && *k == kind)
                .map_or(0, |(_, _, n)| *n);
            ensure!(one == many, "{owner} {kind:?}: {one} vs {many}");
        }
    }
    ensure!(
        counts.iter().all(|(o, _, _)| *o != 424_242),
        "no counters for an unknown owner"
    );

    let regs: Vec<String> = [
        "ann.example",
        "example.co.uk",
        "ben.example.co.uk",
        "none.example",
    ]
    .map(String::from)
    .to_vec();
    let under = tx.domains_under_many(&regs).await?;
    for reg in &regs {
        let mut many: Vec<(Id, String, Option<Id>)> = under
            .iter()
            .filter(|(r, ..)| r == reg)
            .map(|(_, id, n, o)| (*id, n.clone(), *o))
            .collect();
        many.sort();
        let one = tx.domains_under(reg).await?;
        ensure!(many == one, "{reg}: {many:?} vs {one:?}");
    }
    ensure!(
        under.iter().filter(|(r, ..)| r == "ann.example").count() == 2,
        "both names under ann.example: {under:?}"
    );
    Ok(())
}

pub(super) async fn create_many_matches_create(env: &Env) -> Result<()> {
    let store = env.open().await?;
    let reseller = {
        let mut tx = store.begin(system()).await?;
        let r = tx
            .create(new(
                "resell",
                None,
                None,
                account("resell", AccountKind::Reseller, None)?,
            ))
            .await?;
        tx.commit().await?;
        r
    };
    let taken = customer(&store, "old", None).await?;
    let old_domain = add_domain(&store, "old.example", taken.meta.id).await?;
    let events_before = store.events(Scope::All, None, 1000).await?.len();

    let mut tx = store.begin(system()).await?;
    let ids = tx.reserve_ids(6).await?;
    ensure!(ids.end - ids.start == 6, "{ids:?}");
    let mut next = ids.clone();
    let (c1, c2) = (next.next().unwrap_or(0), next.next().unwrap_or(0));
    tx.create_many(vec![
        (
            c1,
            new(
                "newa",
                None,
                None,
                account("newa", AccountKind::Customer, Some(reseller.meta.id))?,
            ),
        ),
        (
            c2,
            new(
                "newb",
                None,
                None,
                account("newb", AccountKind::Customer, None)?,
            ),
        ),
    ])
    .await?;
    let (d1, d2) = (next.next().unwrap_or(0), next.next().unwrap_or(0));
    tx.create_many(vec![
        (d1, domain("newa.example", c1)?),
        (d2, domain("www.newa.example", c1)?),
    ])
    .await?;
    let da = tx
        .get::<Domain>(d1)
        .await?
        .context("domain created with its reserved id")?;
    let m1 = next.next().unwrap_or(0);
    tx.create_many(vec![(m1, mailbox(&da, "info")?)]).await?;
    // One object claiming a key the store or the batch holds: refused, nothing of
    // that call written (the caller drops the transaction in practice).
    let spare = next.next().unwrap_or(0);
    expect_conflict(
        tx.create_many(vec![(spare, alias(&da, "info", "x@y.example")?)])
            .await,
        "mail_address",
        "info@newa.example",
    )?;
    tx.commit().await?;

    let a = store
        .get::<Account>(Scope::All, c1)
        .await?
        .context("account")?;
    ensure!(
        a.meta.owner == Some(c1) && a.meta.reseller == Some(reseller.meta.id),
        "an account owns itself, its reseller is kept: {:?}",
        a.meta
    );
    let b = store
        .get::<Account>(Scope::All, c2)
        .await?
        .context("account")?;
    ensure!(
        b.meta.owner == Some(c2) && b.meta.reseller.is_none(),
        "{:?}",
        b.meta
    );
    let d = store
        .get::<Domain>(Scope::All, d2)
        .await?
        .context("domain")?;
    ensure!(
        d.meta.owner == Some(c1) && d.meta.reseller == Some(reseller.meta.id),
        "reseller derived from the owner: {:?}",
        d.meta
    );
    ensure!(
        ids_of(&store.domains_under("newa.example").await?) == vec![d1, d2],
        "registrable keys written"
    );
    ensure!(
        store.find_key("mail_address", "info@newa.example").await? == Some((Kind::Mailbox, m1)),
        "unique keys written"
    );
    let mut tx = store.begin(system()).await?;
    ensure!(
        tx.count_owned(Kind::Domain, c1).await? == 2,
        "counters kept"
    );
    ensure!(
        tx.count_owned(Kind::Mailbox, c1).await? == 1,
        "counters kept"
    );
    ensure!(
        tx.count_owned(Kind::Account, c1).await? == 1,
        "counters kept"
    );
    drop(tx);
    let events = store.events(Scope::All, None, 1000).await?;
    let created: Vec<&str> = events[events_before..]
        .iter()
        .filter(|e| e.action == "create")
        .map(|e| e.object_name.as_str())
        .collect();
    ensure!(
        created
            == [
                "newa",
                "newb",
                "newa.example",
                "www.newa.example",
                "info@newa.example"
            ],
        "one create event each: {created:?}"
    );

    // Ids after the reservation are new; the reserved ones are never reused.
    let later = add_domain(&store, "later.example", c2).await?;
    ensure!(later.meta.id >= ids.end, "{} within {ids:?}", later.meta.id);

    // Taken names, doubled names and doubled keys are refused as a whole.
    let mut tx = store.begin(system()).await?;
    let more = tx.reserve_ids(3).await?;
    ensure!(more.start > later.meta.id, "{more:?}");
    expect_conflict(
        tx.create_many(vec![
            (more.start, domain("fresh.example", c2)?),
            (more.start + 1, domain("old.example", c2)?),
        ])
        .await,
        "domain",
        "old.example",
    )?;
    drop(tx);
    ensure!(
        store
            .get_by_name::<Domain>(Scope::All, "fresh.example")
            .await?
            .is_none(),
        "nothing of a refused call is written"
    );
    let mut tx = store.begin(system()).await?;
    let more = tx.reserve_ids(2).await?;
    expect_conflict(
        tx.create_many(vec![
            (more.start, domain("twice.example", c2)?),
            (more.start + 1, domain("twice.example", c2)?),
        ])
        .await,
        "domain",
        "twice.example",
    )?;
    drop(tx);
    let mut tx = store.begin(system()).await?;
    let more = tx.reserve_ids(2).await?;
    expect_conflict(
        tx.create_many(vec![
            (more.start, mailbox(&old_domain, "dup")?),
            (more.start + 1, {
                let mut m = mailbox(&old_domain, "dup2")?;
                m.name = "dup@old.example".into();
                m
            }),
        ])
        .await,
        "mailbox",
        "dup@old.example",
    )?;
    drop(tx);
    // A missing parent is NotFound, like `create`.
    let mut tx = store.begin(system()).await?;
    let more = tx.reserve_ids(1).await?;
    let mut orphan = mailbox(&old_domain, "orphan")?;
    orphan.parent = Some(more.start + 1_000_000);
    let r = tx.create_many(vec![(more.start, orphan)]).await;
    ensure!(
        matches!(r, Err(StoreError::NotFound { kind: "parent", .. })),
        "{r:?}"
    );
    drop(tx);
    ensure!(
        store
            .get_by_name::<Mailbox>(Scope::All, "orphan@old.example")
            .await?
            .is_none(),
        "not written"
    );
    Ok(())
}

/// Ids of `domains_under` rows.
fn ids_of(rows: &[(Id, String, Option<Id>)]) -> Vec<Id> {
    rows.iter().map(|(id, _, _)| *id).collect()
}

/// Bulk calls large enough to take several statements each (more objects than one
/// multi-row insert holds, more names than one `IN` list, more events than one
/// insert, more registrable domains than one `UNION ALL`): every row lands with its
/// own values. On SQLite these statements bind bare `?` parameters in text order
/// (`sql::param`), so a parameter out of order would show here as a wrong column.
pub(super) async fn bulk_statements_span_chunks(env: &Env) -> Result<()> {
    const N: usize = 1_234;
    let store = env.open().await?;
    let owner = customer(&store, "bulk", None).await?;
    let events_before = store.events(Scope::All, None, 1000).await?.len();
    let names: Vec<String> = (0..N).map(|i| format!("d{i:05}.example")).collect();
    let mut tx = store.begin(system()).await?;
    let ids = tx.reserve_ids(u32::try_from(N)?).await?;
    let objs = ids
        .clone()
        .zip(&names)
        .map(|(id, n)| Ok((id, domain(n, owner.meta.id)?)))
        .collect::<Result<Vec<_>>>()?;
    tx.create_many(objs).await?;
    tx.commit().await?;

    let mut asked = names.clone();
    asked.push("missing.example".into());
    let mut tx = store.begin(system()).await?;
    let got = tx.get_many_by_name::<Domain>(&asked).await?;
    ensure!(got.len() == N, "{} of {N}", got.len());
    for d in &got {
        let i = usize::try_from(d.meta.id - ids.start)?;
        ensure!(
            d.meta.name == names[i]
                && d.data.name.as_str() == names[i]
                && d.meta.owner == Some(owner.meta.id)
                && d.meta.parent.is_none(),
            "row {i}: {d:?}"
        );
    }
    let by_id = tx
        .get_many::<Domain>(&ids.clone().collect::<Vec<_>>())
        .await?;
    ensure!(
        sorted_ids(&by_id) == ids.clone().collect::<Vec<_>>(),
        "by id"
    );
    let under = tx.domains_under_many(&names).await?;
    ensure!(under.len() == N, "{} of {N}", under.len());
    for (reg, id, name, o) in &under {
        ensure!(
            reg == name
                && names[usize::try_from(id - ids.start)?] == *name
                && *o == Some(owner.meta.id),
            "{reg} {id} {name} {o:?}"
        );
    }
    ensure!(
        tx.count_owned(Kind::Domain, owner.meta.id).await? == i64::try_from(N)?,
        "counter"
    );
    drop(tx);
    let mut created = Vec::new();
    let mut after = None;
    loop {
        let page = store.events(Scope::All, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        created.extend(
            page.into_iter()
                .filter(|e| e.action == "create" && e.kind == "domain")
                .map(|e| (e.object_id, e.object_name)),
        );
    }
    let want: Vec<(Option<Id>, String)> = ids.zip(names).map(|(id, n)| (Some(id), n)).collect();
    ensure!(
        created == want,
        "one create event per domain, in order ({} events before)",
        events_before
    );
    Ok(())
}
