-- hostplane store schema v3 (PostgreSQL): objects per (owner, kind), kept by triggers
-- in the transaction of every insert, delete (cascades included) and change of
-- owner, so plan limits read one row instead of counting an account's objects.

CREATE TABLE object_counts (
    owner BIGINT NOT NULL,
    kind  TEXT   NOT NULL,
    n     BIGINT NOT NULL,
    PRIMARY KEY (owner, kind)
);

INSERT INTO object_counts (owner, kind, n)
    SELECT owner, kind, COUNT(*) FROM objects WHERE owner IS NOT NULL GROUP BY owner, kind;

CREATE FUNCTION object_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.owner IS NOT NULL THEN
        UPDATE object_counts SET n = n - 1 WHERE owner = OLD.owner AND kind = OLD.kind;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.owner IS NOT NULL THEN
        INSERT INTO object_counts (owner, kind, n) VALUES (NEW.owner, NEW.kind, 1)
            ON CONFLICT (owner, kind) DO UPDATE SET n = object_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER objects_count AFTER INSERT OR DELETE ON objects
    FOR EACH ROW EXECUTE FUNCTION object_counts_track();

CREATE TRIGGER objects_count_owner AFTER UPDATE OF owner ON objects
    FOR EACH ROW WHEN (OLD.owner IS DISTINCT FROM NEW.owner)
    EXECUTE FUNCTION object_counts_track();
