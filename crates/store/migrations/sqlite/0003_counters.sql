-- hostplane store schema v3 (SQLite): objects per (owner, kind), kept by triggers in
-- the transaction of every insert, delete (cascades included) and change of owner,
-- so plan limits read one row instead of counting an account's objects.

CREATE TABLE object_counts (
    owner INTEGER NOT NULL,
    kind  TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (owner, kind)
) WITHOUT ROWID;

INSERT INTO object_counts (owner, kind, n)
    SELECT owner, kind, COUNT(*) FROM objects WHERE owner IS NOT NULL GROUP BY owner, kind;

CREATE TRIGGER objects_count_insert AFTER INSERT ON objects
WHEN NEW.owner IS NOT NULL
BEGIN
    INSERT INTO object_counts (owner, kind, n) VALUES (NEW.owner, NEW.kind, 1)
        ON CONFLICT (owner, kind) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER objects_count_delete AFTER DELETE ON objects
WHEN OLD.owner IS NOT NULL
BEGIN
    UPDATE object_counts SET n = n - 1 WHERE owner = OLD.owner AND kind = OLD.kind;
END;

CREATE TRIGGER objects_count_owner AFTER UPDATE OF owner ON objects
WHEN OLD.owner IS NOT NEW.owner
BEGIN
    UPDATE object_counts SET n = n - 1 WHERE owner = OLD.owner AND kind = OLD.kind;
    INSERT INTO object_counts (owner, kind, n)
        SELECT NEW.owner, NEW.kind, 1 WHERE NEW.owner IS NOT NULL
        ON CONFLICT (owner, kind) DO UPDATE SET n = n + 1;
END;
