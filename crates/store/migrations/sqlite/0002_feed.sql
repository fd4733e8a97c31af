-- hostplane store schema v2 (SQLite): the change feed.
-- Changed objects are found by `updated_rev`; deleted ones (cascaded children
-- included) leave a tombstone with the revision of the deleting transaction, which
-- `Store::begin` bumped as its first statement. Old tombstones are pruned; the
-- highest pruned revision is kept so a reader that far behind reloads fully.

CREATE INDEX objects_updated_rev ON objects (updated_rev);

CREATE TABLE tombstones (
    object_id INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    rev       INTEGER NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX tombstones_rev ON tombstones (rev);

CREATE TABLE feed_horizon (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    pruned INTEGER NOT NULL
);
INSERT INTO feed_horizon (id, pruned) VALUES (1, 0);

CREATE TRIGGER objects_tombstone AFTER DELETE ON objects
BEGIN
    INSERT INTO tombstones (object_id, kind, rev, at)
    VALUES (OLD.id, OLD.kind, (SELECT rev FROM revision WHERE id = 1),
            CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
