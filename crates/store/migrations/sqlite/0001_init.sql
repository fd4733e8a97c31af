-- hostplane store schema v1 (SQLite).
-- Times are integer unix microseconds; documents are JSON text of `model::entity` types.

CREATE TABLE revision (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    rev INTEGER NOT NULL
);
INSERT INTO revision (id, rev) VALUES (1, 0);

CREATE TABLE objects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    owner       INTEGER,
    reseller    INTEGER,
    parent      INTEGER REFERENCES objects (id) ON DELETE CASCADE,
    data        TEXT    NOT NULL,
    created_rev INTEGER NOT NULL,
    updated_rev INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (kind, name)
);
CREATE INDEX objects_kind_id       ON objects (kind, id);
CREATE INDEX objects_kind_owner    ON objects (kind, owner, id);
CREATE INDEX objects_kind_reseller ON objects (kind, reseller, id);
-- children of a parent by kind, and the ON DELETE CASCADE lookup of all children
CREATE INDEX objects_parent_kind   ON objects (parent, kind, id);

CREATE TABLE object_keys (
    ns        TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    object_id INTEGER NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX object_keys_object ON object_keys (object_id);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    revision    INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       INTEGER,
    actor_label TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    object_id   INTEGER,
    object_name TEXT    NOT NULL,
    owner       INTEGER,
    reseller    INTEGER,
    detail      TEXT    NOT NULL
);
CREATE INDEX events_owner    ON events (owner, id);
CREATE INDEX events_reseller ON events (reseller, id);
