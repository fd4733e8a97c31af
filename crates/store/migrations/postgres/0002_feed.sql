-- hostplane store schema v2 (PostgreSQL): the change feed.
-- Changed objects are found by `updated_rev`; deleted ones (cascaded children
-- included) leave a tombstone with the revision of the deleting transaction, which
-- `Store::begin` bumped as its first statement. Old tombstones are pruned; the
-- highest pruned revision is kept so a reader that far behind reloads fully.

CREATE INDEX objects_updated_rev ON objects (updated_rev);

CREATE TABLE tombstones (
    object_id BIGINT NOT NULL,
    kind      TEXT   NOT NULL,
    rev       BIGINT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX tombstones_rev ON tombstones (rev);

CREATE TABLE feed_horizon (
    id     SMALLINT PRIMARY KEY CHECK (id = 1),
    pruned BIGINT   NOT NULL
);
INSERT INTO feed_horizon (id, pruned) VALUES (1, 0);

CREATE FUNCTION objects_tombstone() RETURNS trigger AS $$
BEGIN
    INSERT INTO tombstones (object_id, kind, rev, at)
    VALUES (OLD.id, OLD.kind, (SELECT rev FROM revision WHERE id = 1),
            (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER objects_tombstone AFTER DELETE ON objects
    FOR EACH ROW EXECUTE FUNCTION objects_tombstone();
