-- hostplane store schema v1 (PostgreSQL).
-- Times are integer unix microseconds; documents are JSON text of `model::entity` types.

CREATE TABLE revision (
    id  SMALLINT PRIMARY KEY CHECK (id = 1),
    rev BIGINT   NOT NULL
);
INSERT INTO revision (id, rev) VALUES (1, 0);

CREATE TABLE objects (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    owner       BIGINT,
    reseller    BIGINT,
    parent      BIGINT REFERENCES objects (id) ON DELETE CASCADE,
    data        TEXT   NOT NULL,
    created_rev BIGINT NOT NULL,
    updated_rev BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT objects_kind_name UNIQUE (kind, name)
);
CREATE INDEX objects_kind_id       ON objects (kind, id);
CREATE INDEX objects_kind_owner    ON objects (kind, owner, id);
CREATE INDEX objects_kind_reseller ON objects (kind, reseller, id);
-- children of a parent by kind, and the ON DELETE CASCADE lookup of all children
CREATE INDEX objects_parent_kind   ON objects (parent, kind, id);

CREATE TABLE object_keys (
    ns        TEXT   NOT NULL,
    key       TEXT   NOT NULL,
    object_id BIGINT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    PRIMARY KEY (ns, key)
);
CREATE INDEX object_keys_object ON object_keys (object_id);

CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    revision    BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    actor       BIGINT,
    actor_label TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    object_id   BIGINT,
    object_name TEXT   NOT NULL,
    owner       BIGINT,
    reseller    BIGINT,
    detail      TEXT   NOT NULL
);
CREATE INDEX events_owner    ON events (owner, id);
CREATE INDEX events_reseller ON events (reseller, id);
